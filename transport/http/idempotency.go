package http

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/commands"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/eventstore"
)

var validIdempotencyKey = regexp.MustCompile(`^[\x21-\x7E]{1,255}$`)

// renderFunc builds a command's answer (status and body) from what its append
// wrote. It must be deterministic: a retry's answer is the stored one.
type renderFunc func(eventstore.AppendResult) (int, any, bool)

// idempotent runs a creating command so that a request carrying an
// Idempotency-Key is applied at most once: the key and the answer are stored
// in the append's transaction; a retry gets the stored answer and appends
// nothing; the same key with another body is refused with 422.
//
// run executes the command with the given context and returns the answer it
// would send. Without a key, run is simply called.
func (s *Server) idempotent(c echo.Context, render renderFunc, run func(ctx context.Context) (int, any, error)) error {
	key := c.Request().Header.Get("Idempotency-Key")
	ctx := c.Request().Context()
	if key == "" {
		status, body, err := run(ctx)
		if err != nil {
			return err
		}
		return c.JSON(status, body)
	}
	if !validIdempotencyKey.MatchString(key) {
		return invalid(domain.FieldError{Field: "Idempotency-Key", Message: "must be 1 to 255 visible ASCII characters"})
	}
	a := actor(c)
	scope := a.UserID
	hash := requestHash(c)
	if replayed, err := s.replay(c, scope, key, hash); replayed || err != nil {
		return err
	}
	idem := &eventstore.Idempotency{Scope: scope, Key: key, RequestHash: hash,
		Render: func(res eventstore.AppendResult) (int, []byte, error) {
			status, body, ok := render(res)
			if !ok {
				return 0, nil, errors.New("the command wrote nothing to answer with")
			}
			b, err := json.Marshal(body)
			return status, b, err
		}}
	status, body, err := run(eventstore.WithIdempotency(ctx, idem))
	if errors.Is(err, eventstore.ErrIdempotencyKeyUsed) {
		if replayed, err := s.replay(c, scope, key, hash); replayed || err != nil {
			return err
		}
	}
	if err != nil {
		return err
	}
	return c.JSON(status, body)
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
	h := c.Response().Header()
	h.Set("Idempotent-Replayed", "true")
	if stored.Position > 0 {
		h.Set("Engram-Position", strconv.FormatInt(stored.Position, 10))
	}
	// c.JSON ends the first answer with a newline: so does every replay.
	return true, c.JSONBlob(stored.Status, append(bytes.TrimRight(stored.Body, "\n"), '\n'))
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
// 201 with the resource built from the events the command wrote, its ETag,
// Engram-Position and Location.
func create[T any](s *Server, c echo.Context, fromEvents func([]eventstore.Event) (T, bool),
	run func(ctx context.Context) (written commands.Written, location string, err error)) error {
	render := func(res eventstore.AppendResult) (int, any, bool) {
		body, ok := fromEvents(res.Events)
		return http.StatusCreated, body, ok
	}
	return s.idempotent(c, render, func(ctx context.Context) (int, any, error) {
		w, location, err := run(ctx)
		if err != nil {
			return 0, nil, err
		}
		positionHeaders(c, w.Version, w.Position)
		if location != "" {
			c.Response().Header().Set(echo.HeaderLocation, location)
		}
		status, body, _ := render(eventstore.AppendResult{Events: w.Events})
		return status, body, nil
	})
}
