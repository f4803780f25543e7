package http

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/transport/request"
)

var validIdempotencyKey = regexp.MustCompile(`^[\x21-\x7E]{1,255}$`)

// answer is a command's answer: status, body, the headers that identify
// what it created, and where its events landed. An idempotent retry gets
// the status, the body, ETag and Location again, and the position stored
// with them.
type answer struct {
	Status int
	Body   any
	// ETag and Location, when not empty, are sent as headers.
	ETag     string
	Location string
	// Position, when positive, is sent as Engram-Position.
	Position int64
}

// created is the answer to a creation: 201 with the resource, the ETag of
// its stream version after the command, Engram-Position, and the Location
// of the resource ("" for none).
func created(body any, w commands.Written, location string) answer {
	a := answer{Status: http.StatusCreated, Body: body, Location: location, Position: w.Position}
	if w.Version > 0 {
		a.ETag = versionETag(w.Version)
	}
	return a
}

// create runs a creating command so that a request carrying an
// Idempotency-Key is applied at most once: the key and the answer are
// stored in the transaction of the command's events; a retry gets the
// stored answer (status, body, ETag and Location, and Engram-Position) and
// appends nothing; the same key with another request is refused with 422.
//
// run executes the command, with the request's idempotency (nil without a
// key); answerOf builds the answer to the command's result. answerOf must
// be deterministic: the stored answer is the one it renders inside the
// append's transaction.
func create[R any](s *Server, c echo.Context, run func(context.Context, *commands.Idempotency[R]) (R, error), answerOf func(R) answer) error {
	key := c.Request().Header.Get("Idempotency-Key")
	ctx := c.Request().Context()
	if key == "" {
		r, err := run(ctx, nil)
		if err != nil {
			return err
		}
		return send(c, answerOf(r))
	}
	if !validIdempotencyKey.MatchString(key) {
		return invalid(domain.FieldError{Field: "Idempotency-Key", Message: "must be 1 to 255 visible ASCII characters"})
	}
	scope := actor(c).UserID
	hash := requestHash(c)
	if replayed, err := s.replay(c, scope, key, hash); replayed || err != nil {
		return err
	}
	r, err := run(ctx, &commands.Idempotency[R]{Scope: scope, Key: key, RequestHash: hash,
		Render: func(r R) (int, []byte, error) {
			a := answerOf(r)
			b, err := encodeStoredAnswer(a)
			return a.Status, b, err
		}})
	if errors.Is(err, commands.ErrIdempotencyKeyUsed) {
		if replayed, err := s.replay(c, scope, key, hash); replayed || err != nil {
			return err
		}
	}
	if err != nil {
		return err
	}
	return send(c, answerOf(r))
}

// send writes an answer with its headers.
func send(c echo.Context, a answer) error {
	h := c.Response().Header()
	if a.ETag != "" {
		h.Set("ETag", a.ETag)
	}
	if a.Location != "" {
		h.Set(echo.HeaderLocation, a.Location)
	}
	if a.Position > 0 {
		h.Set("Engram-Position", strconv.FormatInt(a.Position, 10))
	}
	return c.JSON(a.Status, a.Body)
}

// replay answers with the stored response of (scope, key), if there is one.
func (s *Server) replay(c echo.Context, scope, key string, hash []byte) (bool, error) {
	stored, found, err := s.app.Responses.IdempotentResponse(c.Request().Context(), scope, key)
	if err != nil || !found {
		return false, err
	}
	if !stored.SameRequest(hash) {
		return true, invalid(domain.FieldError{Field: "Idempotency-Key",
			Message: "was already used with a different request; use a new key for a new request"})
	}
	headers, body := decodeStoredAnswer(stored.Body)
	h := c.Response().Header()
	for name, value := range headers {
		h.Set(name, value)
	}
	h.Set("Idempotent-Replayed", "true")
	if stored.Position > 0 {
		h.Set("Engram-Position", strconv.FormatInt(stored.Position, 10))
	}
	// c.JSON ends the first answer with a newline: so does every replay.
	return true, c.JSONBlob(stored.Status, append(bytes.TrimRight(body, "\n"), '\n'))
}

// storedHeaders are the headers of a first answer that a replay repeats.
var storedHeaders = []string{"ETag", echo.HeaderLocation}

// encodeStoredAnswer stores an answer as its replayed headers, one
// "Name: value" a line, a blank line, then the JSON body: like an HTTP
// message, and never starting with "{" as the bodies stored before headers
// were kept did.
func encodeStoredAnswer(a answer) ([]byte, error) {
	body, err := json.Marshal(a.Body)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	for _, kv := range [][2]string{{"ETag", a.ETag}, {echo.HeaderLocation, a.Location}} {
		if kv[1] != "" {
			b.WriteString(kv[0] + ": " + kv[1] + "\n")
		}
	}
	b.WriteString("\n")
	b.Write(body)
	return b.Bytes(), nil
}

// decodeStoredAnswer splits a stored answer into its headers and its body.
// A stored JSON body alone (as kept by earlier versions) has no headers.
func decodeStoredAnswer(stored []byte) (map[string]string, []byte) {
	if len(stored) == 0 || stored[0] == '{' || stored[0] == '[' {
		return nil, stored
	}
	if stored[0] == '\n' {
		return nil, stored[1:]
	}
	head, body, ok := bytes.Cut(stored, []byte("\n\n"))
	if !ok {
		return nil, stored
	}
	headers := map[string]string{}
	for line := range strings.SplitSeq(string(head), "\n") {
		name, value, ok := strings.Cut(line, ": ")
		if ok && slices.Contains(storedHeaders, name) {
			headers[name] = value
		}
	}
	return headers, body
}

// requestHash identifies a request: method, path and body.
func requestHash(c echo.Context) []byte {
	h := sha256.New()
	h.Write([]byte(c.Request().Method))
	h.Write([]byte{0})
	h.Write([]byte(c.Request().URL.Path))
	h.Write([]byte{0})
	h.Write(request.RawBody(c))
	return h.Sum(nil)
}
