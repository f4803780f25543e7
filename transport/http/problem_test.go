package http

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/lib/pq"

	"github.com/engramhq/engram/app"
	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/platform/security"
	"github.com/engramhq/engram/transport/request"
)

// TestProblemFor holds the one map from errors to HTTP problems: every
// kind of error the API answers, wrapped as handlers return it, becomes its
// status and problem type, and only the unexpected ones are logged.
func TestProblemFor(t *testing.T) {
	field := domain.FieldError{Field: "title", Message: "is required"}
	wrap := func(err error) error { return fmt.Errorf("post message: %w", err) }
	tests := []struct {
		name       string
		err        error
		ifMatch    bool
		status     int
		typ        string
		detail     string // checked when not empty
		fields     int
		unexpected bool
	}{
		{"rule broken", &domain.Error{Code: domain.CodeInvalid, Message: "validation failed", Fields: []domain.FieldError{field}},
			false, http.StatusUnprocessableEntity, problemBase + "validation", "validation failed", 1, false},
		{"malformed body", &domain.Error{Code: domain.CodeInvalid, Message: request.MalformedBody, Fields: []domain.FieldError{field}},
			false, http.StatusBadRequest, problemBase + "validation", request.MalformedBody, 1, false},
		{"body of another media type", &domain.Error{Code: domain.CodeInvalid, Message: request.UnsupportedMediaType},
			false, http.StatusUnsupportedMediaType, problemBase + "validation", "", 0, false},
		{"not found", wrap(domain.Errorf(domain.CodeNotFound, "conversation not found")),
			false, http.StatusNotFound, problemBase + "not-found", "conversation not found", 0, false},
		{"conflict", domain.Errorf(domain.CodeConflict, "workspace is archived"),
			false, http.StatusConflict, problemBase + "conflict", "workspace is archived", 0, false},
		{"forbidden", domain.Errorf(domain.CodeForbidden, "editors only"),
			false, http.StatusForbidden, problemBase + "forbidden", "editors only", 0, false},
		{"unauthorized", domain.Errorf(domain.CodeUnauthorized, "authentication required"),
			false, http.StatusUnauthorized, problemBase + "unauthorized", "authentication required", 0, false},
		{"over a limit", domain.Errorf(request.CodeTooManyRequests, "too many failed logins"),
			false, http.StatusTooManyRequests, problemBase + "rate-limited", "too many failed logins", 0, false},
		{"domain error of an unknown code", domain.Errorf("mystery", "what"),
			false, http.StatusInternalServerError, problemBase + "internal", "", 0, true},
		{"If-Match no longer matches", wrap(commands.ErrPreconditionFailed),
			false, http.StatusPreconditionFailed, problemBase + "precondition-failed", "", 0, false},
		{"concurrent change under If-Match", wrap(app.ErrConcurrency),
			true, http.StatusPreconditionFailed, problemBase + "precondition-failed", "", 0, false},
		{"concurrent change", wrap(app.ErrConcurrency),
			false, http.StatusConflict, problemBase + "concurrent-change", "", 0, false},
		{"no hashing slot", wrap(security.ErrBusy),
			false, http.StatusServiceUnavailable, problemBase + "overloaded", "", 0, false},
		{"revocations unknown", wrap(app.ErrRevocationsUnknown),
			false, http.StatusServiceUnavailable, problemBase + "unavailable", "", 0, false},
		{"read model not caught up", wrap(app.ErrNotCaughtUp),
			false, http.StatusServiceUnavailable, problemBase + "not-caught-up", "post message: " + app.ErrNotCaughtUp.Error(), 0, false},
		{"echo error with a message", echo.NewHTTPError(http.StatusRequestEntityTooLarge, "the body exceeds 10 bytes"),
			false, http.StatusRequestEntityTooLarge, "about:blank", "the body exceeds 10 bytes", 0, false},
		{"echo error without a message", echo.ErrNotFound,
			false, http.StatusNotFound, "about:blank", "", 0, false},
		{"deadline", wrap(context.DeadlineExceeded),
			false, http.StatusServiceUnavailable, problemBase + "unavailable", "the request could not be completed in time; retry later", 0, true},
		{"canceled", wrap(context.Canceled),
			false, http.StatusServiceUnavailable, problemBase + "unavailable", "", 0, true},
		{"database connection lost", wrap(&pq.Error{Code: "08006"}),
			false, http.StatusServiceUnavailable, problemBase + "unavailable", "the database is unavailable; retry later", 0, true},
		{"database shutting down", wrap(&pq.Error{Code: "57P01"}),
			false, http.StatusServiceUnavailable, problemBase + "unavailable", "", 0, true},
		{"database refuses connections", wrap(syscall.ECONNREFUSED),
			false, http.StatusServiceUnavailable, problemBase + "unavailable", "", 0, true},
		{"bad connection", wrap(driver.ErrBadConn),
			false, http.StatusServiceUnavailable, problemBase + "unavailable", "", 0, true},
		{"a query that fails", wrap(&pq.Error{Code: "42P01"}),
			false, http.StatusInternalServerError, problemBase + "internal", "", 0, true},
		{"anything else", errors.New("boom"),
			false, http.StatusInternalServerError, problemBase + "internal",
			"something went wrong on our side; the request id identifies it in our logs", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, unexpected := problemFor(tt.err, tt.ifMatch)
			if p.Status != tt.status || p.Type != tt.typ {
				t.Errorf("status %d, type %q; want %d, %q", p.Status, p.Type, tt.status, tt.typ)
			}
			if p.Title == "" {
				t.Errorf("no title")
			}
			if tt.detail != "" && p.Detail != tt.detail {
				t.Errorf("detail %q, want %q", p.Detail, tt.detail)
			}
			if len(p.Errors) != tt.fields {
				t.Errorf("%d field errors, want %d", len(p.Errors), tt.fields)
			}
			if unexpected != tt.unexpected {
				t.Errorf("unexpected = %v, want %v", unexpected, tt.unexpected)
			}
		})
	}
}

// TestErrorHandler: a problem is sent as application/problem+json with the
// request's path and id; 503 and 429 carry Retry-After (1 s unless the
// handler chose), and a HEAD request gets the status without a body.
func TestErrorHandler(t *testing.T) {
	s := &Server{logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	e := echo.New()
	e.HTTPErrorHandler = s.errorHandler
	e.Use(s.requestID)
	e.GET("/busy", func(echo.Context) error { return security.ErrBusy })
	e.GET("/throttled", func(c echo.Context) error {
		c.Response().Header().Set("Retry-After", "30")
		return domain.Errorf(request.CodeTooManyRequests, "slow down")
	})
	e.HEAD("/gone", func(echo.Context) error { return domain.Errorf(domain.CodeNotFound, "gone") })

	tests := []struct {
		method, path string
		status       int
		retryAfter   string
		body         bool
	}{
		{http.MethodGet, "/busy", http.StatusServiceUnavailable, "1", true},
		{http.MethodGet, "/throttled", http.StatusTooManyRequests, "30", true},
		{http.MethodHead, "/gone", http.StatusNotFound, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path, nil)
			req.Header.Set(echo.HeaderXRequestID, "req-1")
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if rec.Code != tt.status || rec.Header().Get("Retry-After") != tt.retryAfter {
				t.Fatalf("status %d, Retry-After %q; want %d, %q", rec.Code, rec.Header().Get("Retry-After"), tt.status, tt.retryAfter)
			}
			if ct := rec.Header().Get(echo.HeaderContentType); ct != "application/problem+json" {
				t.Fatalf("Content-Type %q", ct)
			}
			if !tt.body {
				if rec.Body.Len() != 0 {
					t.Fatalf("a body for %s: %s", tt.method, rec.Body)
				}
				return
			}
			var p Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			if p.Status != tt.status || p.Instance != tt.path || p.RequestID != "req-1" {
				t.Fatalf("problem %+v", p)
			}
		})
	}
}
