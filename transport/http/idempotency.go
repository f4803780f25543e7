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
	"github.com/engramhq/engram/eventstore"
)

var validIdempotencyKey = regexp.MustCompile(`^[\x21-\x7E]{1,255}$`)

// answer is a command's answer: status, body and the headers that identify
// what it created. An idempotent retry gets all of it again.
type answer struct {
	Status int
	Body   any
	// ETag and Location, when not empty, are sent as headers.
	ETag     string
	Location string
}

// renderFunc builds a command's answer from what its append wrote. It must be
// deterministic: a retry's answer is the stored one.
type renderFunc func(eventstore.AppendResult) (answer, bool)

// idempotent runs a creating command so that a request carrying an
// Idempotency-Key is applied at most once: the key and the answer are stored
// in the append's transaction; a retry gets the stored answer (status, body,
// ETag and Location) and appends nothing; the same key with another body is
// refused with 422.
//
// run executes the command with the given context and returns the answer it
// would send. Without a key, run is simply called.
func (s *Server) idempotent(c echo.Context, render renderFunc, run func(ctx context.Context) (answer, error)) error {
	key := c.Request().Header.Get("Idempotency-Key")
	ctx := c.Request().Context()
	if key == "" {
		a, err := run(ctx)
		if err != nil {
			return err
		}
		return send(c, a)
	}
	if !validIdempotencyKey.MatchString(key) {
		return invalid(domain.FieldError{Field: "Idempotency-Key", Message: "must be 1 to 255 visible ASCII characters"})
	}
	scope := actor(c).UserID
	hash := requestHash(c)
	if replayed, err := s.replay(c, scope, key, hash); replayed || err != nil {
		return err
	}
	idem := &eventstore.Idempotency{Scope: scope, Key: key, RequestHash: hash,
		Render: func(res eventstore.AppendResult) (int, []byte, error) {
			a, ok := render(res)
			if !ok {
				return 0, nil, errors.New("the command wrote nothing to answer with")
			}
			b, err := encodeStoredAnswer(a)
			return a.Status, b, err
		}}
	a, err := run(eventstore.WithIdempotency(ctx, idem))
	if errors.Is(err, eventstore.ErrIdempotencyKeyUsed) {
		if replayed, err := s.replay(c, scope, key, hash); replayed || err != nil {
			return err
		}
	}
	if err != nil {
		return err
	}
	return send(c, a)
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
	return c.JSON(a.Status, a.Body)
}

// replay answers with the stored response of (scope, key), if there is one.
func (s *Server) replay(c echo.Context, scope, key string, hash []byte) (bool, error) {
	stored, found, err := s.app.Idempotency.IdempotentResponse(c.Request().Context(), scope, key)
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
	h.Write(rawBody(c))
	return h.Sum(nil)
}

// create runs a creating command (idempotently, see idempotent) and answers
// 201 with the resource built from the events the command wrote, its ETag
// (the stream version after the command), Engram-Position and the Location
// that locate gives for the resource ("" for none).
func create[T any](s *Server, c echo.Context, fromEvents func([]eventstore.Event) (T, bool), locate func(T) string,
	run func(ctx context.Context) (commands.Written, error)) error {
	render := func(res eventstore.AppendResult) (answer, bool) {
		body, ok := fromEvents(res.Events)
		if !ok {
			return answer{}, false
		}
		a := answer{Status: http.StatusCreated, Body: body, Location: locate(body)}
		if v := res.LastVersion(); v > 0 {
			a.ETag = versionETag(v)
		}
		return a, true
	}
	return s.idempotent(c, render, func(ctx context.Context) (answer, error) {
		w, err := run(ctx)
		if err != nil {
			return answer{}, err
		}
		positionHeaders(c, w.Version, w.Position)
		a, ok := render(eventstore.AppendResult{Events: w.Events})
		if !ok {
			var none T
			a = answer{Status: http.StatusCreated, Body: none}
		}
		return a, nil
	})
}
