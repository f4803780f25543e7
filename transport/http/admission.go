package http

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
)

// Admission bounds the commands an instance works on. Offered more than it
// can take, a server that lets every request in makes every request slow —
// each waits behind all the others until its client gives up — and serves a
// fraction of its capacity. The admission queue keeps it at capacity
// instead: at most Concurrency commands run at once, at most Queue more wait
// for a turn, and the rest are answered at once with 503 and Retry-After.
//
// Which commands may wait adapts to the load, in the manner of CoDel
// (controlled delay): in a burst, after which slots come free again, a
// command expected to wait up to half of QueueTimeout joins the queue; once
// the queue stands — no command has found a slot free for standingAfter:
// the instance is offered more than it serves — only a command expected to
// wait up to half of QueueTarget does, until no command has had to queue
// for standingAfter. The expected wait comes from the command's place in
// the queue and the time recent commands held their slot. The excess is
// refused at the door, at once; a command let in waits for its turn (at
// most QueueTimeout), so that the time a refused client waited for its
// answer is never spent in a queue that then turns it away.
type Admission struct {
	// Concurrency is how many commands run at once (≥ 1).
	Concurrency int
	// Queue is how many more commands may wait for a turn (≥ 0).
	Queue int
	// QueueTimeout bounds a command's wait for its turn (> 0).
	QueueTimeout time.Duration
	// QueueTarget is the wait a standing queue lets commands in for (0:
	// the lesser of QueueTimeout and DefaultQueueTarget).
	QueueTarget time.Duration
}

// DefaultQueueTarget is the wait a standing queue lets commands in for
// unless Admission.QueueTarget says otherwise.
const DefaultQueueTarget = 50 * time.Millisecond

// standingAfter is how long every slot must have stayed taken for the queue
// to count as standing (CoDel's interval): shorter waits are bursts,
// absorbed.
const standingAfter = 100 * time.Millisecond

// holdWeight is the weight of the latest command in the running average of
// the time a command holds its slot.
const holdWeight = 1.0 / 16

// admission is the running admission queue.
type admission struct {
	slots      chan struct{}
	maxWaiting int
	timeout    time.Duration
	target     time.Duration
	now        func() time.Time

	mu      sync.Mutex
	waiting int
	// freeAt is when a command last found a slot free, queuedAt when one
	// last found none; standing tells a standing queue from a burst.
	freeAt, queuedAt time.Time
	standing         bool
	// hold is the running average of the time a command holds its slot.
	hold time.Duration

	refused atomic.Int64
}

func newAdmission(a Admission) *admission {
	target := a.QueueTarget
	if target <= 0 {
		target = min(a.QueueTimeout, DefaultQueueTarget)
	}
	return &admission{slots: make(chan struct{}, max(a.Concurrency, 1)),
		maxWaiting: max(a.Queue, 0), timeout: a.QueueTimeout, target: target, now: time.Now}
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

// refusedKey marks a request the admission queue refused, for the access
// log: under overload refusals are counted, not logged one by one.
const refusedKey = "engram.admission_refused"

// admit is the middleware: it runs a command when a slot is free, queues it
// when it may wait for one, and otherwise refuses it at once.
func (a *admission) admit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !isCommand(c.Request().Method) {
			return next(c)
		}
		select {
		case a.slots <- struct{}{}:
			a.sawFree()
		default:
			if !a.wait(c) {
				return a.refuse(c)
			}
		}
		start := a.now()
		defer func() {
			<-a.slots
			a.held(a.now().Sub(start))
		}()
		return next(c)
	}
}

// sawFree records that a command found a slot free. A queue stops standing
// once no command has had to queue for standingAfter: one free slot in an
// overload does not make it a burst again.
func (a *admission) sawFree() {
	a.mu.Lock()
	a.freeAt = a.now()
	if a.standing && a.freeAt.Sub(a.queuedAt) > standingAfter {
		a.standing = false
	}
	a.mu.Unlock()
}

// held adds a command's time in its slot to the running average.
func (a *admission) held(d time.Duration) {
	a.mu.Lock()
	if a.hold == 0 {
		a.hold = d
	} else {
		a.hold += time.Duration(holdWeight * float64(d-a.hold))
	}
	a.mu.Unlock()
}

// enqueue decides whether a command that found no free slot may wait for
// one. Commands leave slots at about Concurrency ÷ hold per second, so the
// n-th in the queue expects to wait n × hold ÷ Concurrency.
func (a *admission) enqueue() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	// The queue stands once no command has found a slot free for
	// standingAfter: emptied by refusals, it still stands.
	a.queuedAt = a.now()
	if a.queuedAt.Sub(a.freeAt) > standingAfter {
		a.standing = true
	}
	limit := a.timeout
	if a.standing {
		limit = a.target
	}
	expected := time.Duration(a.waiting+1) * a.hold / time.Duration(cap(a.slots))
	// Half the limit: the estimate is an average, and slots come free in
	// groups (a group commit ends many commands at once).
	if a.waiting >= a.maxWaiting || 2*expected > limit {
		return false
	}
	a.waiting++
	return true
}

// dequeue records that a queued command stopped waiting.
func (a *admission) dequeue() {
	a.mu.Lock()
	a.waiting--
	a.mu.Unlock()
}

// wait waits for a slot, reporting whether it got one.
func (a *admission) wait(c echo.Context) bool {
	if !a.enqueue() {
		return false
	}
	defer a.dequeue()
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
	c.Set(refusedKey, true)
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
