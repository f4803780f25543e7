package http

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/transport/request"
)

const requestIDKey = "engram.request_id"

var safeRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// requestID takes the client's X-Request-ID when it is sane, makes one
// otherwise, echoes it, and records it (and the correlation id) as metadata
// of every event the request causes.
func (s *Server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if !safeRequestID.MatchString(id) {
			id = uuid.NewString()
		}
		c.Set(requestIDKey, id)
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		correlation := c.Request().Header.Get("X-Correlation-ID")
		if !safeRequestID.MatchString(correlation) {
			correlation = id
		}
		c.SetRequest(c.Request().WithContext(commands.WithRequest(c.Request().Context(), id, correlation)))
		return next(c)
	}
}

func requestID(c echo.Context) string {
	id, _ := c.Get(requestIDKey).(string)
	return id
}

// recoverer turns a panic into a logged 500 problem.
func (s *Server) recoverer(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if err, ok := r.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(r)
				}
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		return next(c)
	}
}

// accessLog logs one line per request: method, route, status, latency,
// request id and user id. Never bodies, headers or tokens.
func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err) // writes the problem, so that the status is known
		}
		d := time.Since(start)
		status := c.Response().Status
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		if s.cfg.Observe != nil {
			s.cfg.Observe(c.Request().Method, route, status, d)
		}
		level := s.logLevel(status, route)
		if refused, _ := c.Get(refusedKey).(bool); refused {
			// Overload refusals come by the thousand: the request metrics
			// count them, one line each would only add to the load.
			level = slog.LevelDebug
		}
		if s.logger.Enabled(c.Request().Context(), level) {
			attrs := []any{"method", c.Request().Method, "route", route, "status", status,
				"latency_ms", float64(d.Microseconds()) / 1000, "request_id", requestID(c)}
			if a, ok := request.Actor(c); ok {
				attrs = append(attrs, "user_id", a.UserID)
			}
			s.logger.Log(c.Request().Context(), level, "request", attrs...)
		}
		return nil
	}
}

func (s *Server) logLevel(status int, route string) slog.Level {
	switch {
	case status >= 500:
		return slog.LevelWarn
	case route == "/healthz" || route == "/readyz" || route == "/metrics":
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// bodyLimit refuses bodies over the configured size with 413.
func (s *Server) bodyLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.cfg.BodyLimit > 0 {
			r := c.Request()
			if r.ContentLength > s.cfg.BodyLimit {
				return echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("the body exceeds %d bytes", s.cfg.BodyLimit))
			}
			r.Body = http.MaxBytesReader(c.Response(), r.Body, s.cfg.BodyLimit)
		}
		return next(c)
	}
}

// securityHeaders sets headers every API answer should carry.
func (s *Server) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		if c.Request().Method == http.MethodGet && c.Path() != "/openapi.yaml" {
			h.Set("Cache-Control", "no-store")
		}
		return next(c)
	}
}

// Header size limits. The HTTP server itself reads request lines and headers
// up to maxHeaderReadBytes, and answers anything larger with its own plain
// text 431; between maxHeaderBytes and that, headerLimit answers 431 as
// problem JSON, so that a client sending, say, a 100 KB cursor learns why in
// the API's own format.
const (
	maxHeaderBytes     = 64 << 10
	maxHeaderReadBytes = 256 << 10
)

// headerLimit refuses requests whose request line and headers exceed
// maxHeaderBytes with 431.
func (s *Server) headerLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + len(r.Host) + 4
		for name, values := range r.Header {
			for _, v := range values {
				n += len(name) + len(v) + 4 // ": " and CRLF
			}
		}
		if n > maxHeaderBytes {
			return echo.NewHTTPError(http.StatusRequestHeaderFieldsTooLarge,
				fmt.Sprintf("the request line and headers exceed %d bytes; shorten the URL (a cursor or filter) or the headers", maxHeaderBytes))
		}
		return next(c)
	}
}

// withHashSlot runs fn, which hashes a password (argon2id), in one of the
// instance's hashing slots, so that however many strangers call the routes
// that hash, at most that many hashes (and their memory) are live at once.
// Beyond it the request waits briefly, then gets 503 with Retry-After.
func (s *Server) withHashSlot(c echo.Context, fn func() error) error {
	release, err := s.hashing.Acquire(c.Request().Context())
	if err != nil {
		return fmt.Errorf("%s %s: %w", c.Request().Method, c.Path(), err)
	}
	defer release()
	return fn()
}
