package http

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

// One command runs, one waits for its turn, the next is refused at once
// with 503, Retry-After and problem JSON; reads are never queued; the one
// waiting runs when the slot frees.
func TestAdmission(t *testing.T) {
	adm := newAdmission(Admission{Concurrency: 1, Queue: 1, QueueTimeout: 5 * time.Second})
	e := echo.New()
	e.Use(adm.admit)
	release := make(chan struct{})
	started := make(chan string, 3)
	e.POST("/cmd/:n", func(c echo.Context) error {
		started <- c.Param("n")
		<-release
		return c.NoContent(http.StatusNoContent)
	})
	e.GET("/read", func(c echo.Context) error { return c.NoContent(http.StatusOK) })

	do := func(method, path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec
	}
	answers := make(chan int, 2)
	go func() { answers <- do(http.MethodPost, "/cmd/1").Code }()
	if n := <-started; n != "1" {
		t.Fatalf("started %s, want 1", n)
	}
	go func() { answers <- do(http.MethodPost, "/cmd/2").Code }()
	waitUntil(t, func() bool { return adm.waiting.Load() == 1 })

	start := time.Now()
	rec := do(http.MethodPost, "/cmd/3")
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("third command: %d, want 503", rec.Code)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("refusal took %v, want an immediate answer", took)
	}
	if rec.Header().Get("Retry-After") == "" || rec.Header().Get(echo.HeaderContentType) != "application/problem+json" {
		t.Fatalf("refusal headers: %v", rec.Header())
	}
	var p Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != http.StatusServiceUnavailable || p.Type != problemBase+"overloaded" {
		t.Fatalf("refusal body %s (%v)", rec.Body, err)
	}
	if adm.refused.Load() != 1 {
		t.Fatalf("refused = %d, want 1", adm.refused.Load())
	}
	if code := do(http.MethodGet, "/read").Code; code != http.StatusOK {
		t.Fatalf("read while commands are full: %d, want 200", code)
	}

	close(release)
	if n := <-started; n != "2" {
		t.Fatalf("started %s, want the queued command 2", n)
	}
	for range 2 {
		if code := <-answers; code != http.StatusNoContent {
			t.Fatalf("admitted command answered %d", code)
		}
	}
}

// A queued command waits no longer than the queue timeout.
func TestAdmissionQueueTimeout(t *testing.T) {
	adm := newAdmission(Admission{Concurrency: 1, Queue: 4, QueueTimeout: 30 * time.Millisecond})
	adm.slots <- struct{}{} // the only slot is taken
	e := echo.New()
	e.Use(adm.admit)
	e.POST("/cmd", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	rec := httptest.NewRecorder()
	start := time.Now()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/cmd", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("queued past its timeout: %d, want 503", rec.Code)
	}
	if took := time.Since(start); took < 30*time.Millisecond || took > 2*time.Second {
		t.Fatalf("waited %v, want about the queue timeout", took)
	}
	if adm.waiting.Load() != 0 {
		t.Fatalf("%d still counted as waiting", adm.waiting.Load())
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
