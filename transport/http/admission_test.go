package http

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
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
	waitUntil(t, func() bool { return adm.queued() == 1 })

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
	if n := adm.queued(); n != 0 {
		t.Fatalf("%d still counted as waiting", n)
	}
}

// A burst may wait up to the queue timeout; once the queue has stood for
// longer than standingAfter, a queued command waits no longer than the
// target, and one whose expected wait is longer is refused at the door.
func TestAdmissionStandingQueue(t *testing.T) {
	var elapsed atomic.Int64 // the clock moves only when told
	start := time.Unix(1_700_000_000, 0)
	adm := newAdmission(Admission{Concurrency: 1, Queue: 8, QueueTimeout: 5 * time.Second, QueueTarget: 25 * time.Millisecond})
	adm.now = func() time.Time { return start.Add(time.Duration(elapsed.Load())) }
	adm.slots <- struct{}{} // the only slot is taken, free when taken
	adm.sawFree()
	adm.held(5 * time.Millisecond)
	e := echo.New()
	e.Use(adm.admit)
	e.POST("/cmd", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	post := func() (int, time.Duration) {
		rec := httptest.NewRecorder()
		start := time.Now()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/cmd", nil))
		return rec.Code, time.Since(start)
	}

	// A burst: a slot was free just now, the first command may wait 5 s.
	burst := make(chan int, 1)
	go func() { code, _ := post(); burst <- code }()
	waitUntil(t, func() bool { return adm.queued() == 1 })

	// No slot has been free for a while: the queue stands. The next
	// command expects to wait 2 × 5 ms, within half the target: it joins
	// the queue, and waits for its turn however long that takes.
	elapsed.Add(int64(2 * standingAfter))
	second := make(chan int, 1)
	go func() { code, _ := post(); second <- code }()
	waitUntil(t, func() bool { return adm.queued() == 2 })
	time.Sleep(50 * time.Millisecond) // past the target: still waiting
	if n := adm.queued(); n != 2 {
		t.Fatalf("%d waiting after the target, want 2: a command let in waits for its turn", n)
	}

	// The next expects 3 × 5 ms, more than half the target: refused at
	// the door, at once.
	if code, took := post(); code != http.StatusServiceUnavailable || took >= time.Second {
		t.Fatalf("expected wait beyond half the target: %d after %v, want 503 at once", code, took)
	}

	// Slots are held for long: even the third place would wait 3 × 10 s.
	adm.mu.Lock()
	adm.hold = 10 * time.Second
	adm.target = 3 * time.Second
	adm.mu.Unlock()
	if code, took := post(); code != http.StatusServiceUnavailable || took >= time.Second {
		t.Fatalf("expected wait beyond the target: %d after %v, want 503 at once", code, took)
	}
	if n := adm.refused.Load(); n != 2 {
		t.Fatalf("refused = %d, want 2", n)
	}

	<-adm.slots // the slot frees: the queued commands run in turn
	for _, ch := range []chan int{burst, second} {
		if code := <-ch; code != http.StatusNoContent {
			t.Fatalf("a queued command: %d, want 204", code)
		}
	}
	if n := adm.queued(); n != 0 {
		t.Fatalf("%d still counted as waiting", n)
	}

	// A slot free for a moment does not end a standing queue; a while
	// without queueing does.
	if code, _ := post(); code != http.StatusNoContent {
		t.Fatalf("a command on a free slot: %d, want 204", code)
	}
	if !adm.isStanding() {
		t.Fatal("one free slot ended the standing queue")
	}
	elapsed.Add(int64(2 * standingAfter))
	if code, _ := post(); code != http.StatusNoContent || adm.isStanding() {
		t.Fatalf("after a while without queueing: %d, standing %v; want 204 and a burst again", code, adm.isStanding())
	}
}

// isStanding reports whether the queue counts as standing.
func (a *admission) isStanding() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.standing
}

// queued is how many commands wait for a slot.
func (a *admission) queued() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.waiting
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
