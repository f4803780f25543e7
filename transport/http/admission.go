package http

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
)

// Admission bounds the commands an instance works on. Offered more than it
// can take, a server that lets every request in makes every request slow —
// each waits behind all the others until its client gives up — and serves a
// fraction of its capacity. The admission queue keeps it at capacity
// instead: at most Concurrency commands run at once, at most Queue more wait
// for a turn, each no longer than QueueTimeout, and the rest are answered at
// once with 503 and Retry-After.
type Admission struct {
	// Concurrency is how many commands run at once (≥ 1).
	Concurrency int
	// Queue is how many more commands may wait for a turn (≥ 0).
	Queue int
	// QueueTimeout bounds a command's wait for its turn (> 0).
	QueueTimeout time.Duration
}

// admission is the running admission queue.
type admission struct {
	slots      chan struct{}
	waiting    atomic.Int64
	maxWaiting int64
	timeout    time.Duration
	refused    atomic.Int64
}

func newAdmission(a Admission) *admission {
	return &admission{slots: make(chan struct{}, max(a.Concurrency, 1)),
		maxWaiting: int64(max(a.Queue, 0)), timeout: a.QueueTimeout}
}

// isCommand reports whether a request may change something: the requests
// the admission queue bounds. Reads and live streams are not queued.
func isCommand(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// admit is the middleware: it runs a command when a slot is free, queues it
// for a bounded time when the queue has room, and otherwise refuses it at
// once.
func (a *admission) admit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !isCommand(c.Request().Method) {
			return next(c)
		}
		select {
		case a.slots <- struct{}{}:
		default:
			if !a.wait(c) {
				return a.refuse(c)
			}
		}
		defer func() { <-a.slots }()
		return next(c)
	}
}

// wait waits for a slot, reporting whether it got one.
func (a *admission) wait(c echo.Context) bool {
	if a.waiting.Add(1) > a.maxWaiting {
		a.waiting.Add(-1)
		return false
	}
	defer a.waiting.Add(-1)
	t := time.NewTimer(a.timeout)
	defer t.Stop()
	select {
	case a.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-c.Request().Context().Done():
		return false
	}
}

// refuse answers 503 with Retry-After as problem JSON.
func (a *admission) refuse(c echo.Context) error {
	a.refused.Add(1)
	retry := max(int64(a.timeout/time.Second), 1)
	h := c.Response().Header()
	h.Set("Retry-After", strconv.FormatInt(retry, 10))
	h.Set(echo.HeaderContentType, "application/problem+json")
	c.Response().WriteHeader(http.StatusServiceUnavailable)
	return writeJSON(c.Response(), Problem{Type: problemBase + "overloaded", Title: "Server overloaded",
		Status: http.StatusServiceUnavailable, Detail: "the server is at capacity; retry after the time given in Retry-After",
		Instance: c.Request().URL.Path, RequestID: requestID(c)})
}

// Refused returns how many commands the admission queue refused since the
// server started.
func (s *Server) Refused() int64 {
	if s.admission == nil {
		return 0
	}
	return s.admission.refused.Load()
}
