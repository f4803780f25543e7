package http

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/platform/security"
)

// TestWithHashSlotIsBounded: with every hashing slot taken, a request that
// hashes waits briefly, then gets 503 with Retry-After as problem
// JSON; once a slot is free it runs.
func TestWithHashSlotIsBounded(t *testing.T) {
	s := &Server{logger: slog.New(slog.NewTextHandler(io.Discard, nil)), hashing: security.NewHashSlots(1, 10*time.Millisecond)}
	e := echo.New()
	e.HTTPErrorHandler = s.errorHandler
	e.POST("/v1/auth/login", func(c echo.Context) error {
		return s.withHashSlot(c, func() error { return c.NoContent(http.StatusNoContent) })
	})

	release, err := s.hashing.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/auth/login", nil))
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q; want 503 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
	var p Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Type != problemBase+"overloaded" {
		t.Fatalf("problem %s (%v)", rec.Body, err)
	}
	if ct := rec.Header().Get(echo.HeaderContentType); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q", ct)
	}
	release()
	rec = httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/auth/login", nil))
	if rec.Code != http.StatusNoContent {
		t.Fatalf("with a free slot: status %d", rec.Code)
	}
}

// TestHeaderLimit: a request line and headers beyond the limit get a 431
// problem, not the HTTP server's plain text.
func TestHeaderLimit(t *testing.T) {
	s := &Server{logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	e := echo.New()
	e.HTTPErrorHandler = s.errorHandler
	e.GET("/v1/workspaces", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }, s.headerLimit)

	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/workspaces?cursor="+strings.Repeat("A", 100<<10), nil))
	if rec.Code != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status = %d, want 431", rec.Code)
	}
	if ct := rec.Header().Get(echo.HeaderContentType); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q", ct)
	}
	var p Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != 431 || p.Detail == "" {
		t.Fatalf("problem = %+v (%v)", p, err)
	}

	rec = httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/workspaces?cursor="+strings.Repeat("A", 1000), nil))
	if rec.Code != http.StatusNoContent {
		t.Fatalf("a short cursor: status = %d, want 204", rec.Code)
	}
}
