package projections

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/platform/defaults"
)

// Consumer processes runs of committed events in commit order and keeps its
// own progress in the database. An Agent feeds it.
type Consumer interface {
	// Name identifies the consumer in logs.
	Name() string
	// Checkpoint returns the cursor up to which every event has been
	// handled: the least of the consumer's checkpoints.
	Checkpoint(ctx context.Context) (eventstore.Cursor, error)
	// Handle processes events, which follow from in commit order with no
	// event in between, and returns the cursor up to which every event is
	// now handled: the last event's, or less when part of the consumer was
	// behind from (it then gets those events again, read from the log).
	Handle(ctx context.Context, from eventstore.Cursor, events []eventstore.Event) (eventstore.Cursor, error)
}

// Log is the part of the event store an Agent reads when it catches up.
type Log interface {
	// ReadCommitted returns up to limit events after a cursor in commit
	// order, below the oldest transaction in flight (gap-safe).
	ReadCommitted(ctx context.Context, after eventstore.Cursor, limit int) ([]eventstore.Event, error)
}

// Defaults of AgentConfig.
const (
	DefaultMaxBatch      = 1000
	DefaultRetryInterval = 50 * time.Millisecond
	maxRetryInterval     = 2 * time.Second
	// idleChecks: an idle agent compares its cursor with the database
	// every idleChecks poll intervals (a rebuild or another instance may
	// have moved its checkpoints).
	idleChecks = 10
)

// AgentConfig configures an Agent.
type AgentConfig struct {
	// Log is read when the agent is behind what the tail hands it.
	Log Log
	// Lease, when set, makes the agent work only while this instance holds
	// it: one instance at a time applies a consumer's events.
	Lease *Lease
	// PollInterval is how often a standby agent tries to take the lease,
	// and (times idleChecks) how often an idle one checks its checkpoint.
	PollInterval time.Duration
	// MaxBatch bounds the events handed to one Handle (DefaultMaxBatch).
	MaxBatch int
	// MaxQueue bounds the events queued for the agent; beyond it the queue
	// is dropped and the agent reads the log by itself (default
	// 20 × MaxBatch).
	MaxQueue int
	// HandleTimeout bounds one Handle once the agent is told to stop, so
	// that a batch under way finishes (default 10 s).
	HandleTimeout time.Duration
	Logger        *slog.Logger
	// OnHandled, when set, is called after every successful Handle with
	// the number of events and the batch's duration.
	OnHandled func(consumer string, events int, took time.Duration)
}

// Agent feeds one Consumer with what the instance's tail of the log hands it
// (Pipeline), in batches: the events that queued up while the previous batch
// was handled, so batches are single events at idle and grow with the
// backlog. When the queue does not continue the consumer's checkpoint (at
// start, after a failure or a dropped queue, when another instance or a
// rebuild moved the checkpoint), the agent reads the log from the
// checkpoint by itself until it is caught up.
//
// The queue is trusted only where it is contiguous with the checkpoint, so
// an agent never moves a checkpoint past an event its consumer did not see.
type Agent struct {
	c   Consumer
	cfg AgentConfig

	mu       sync.Mutex
	from     eventstore.Cursor // the event before queue[0]
	fromOK   bool              // from is known
	queue    []eventstore.Event
	overflow bool
	wake     chan struct{}
}

// NewAgent returns an Agent feeding c. Call Run to start it.
func NewAgent(c Consumer, cfg AgentConfig) (*Agent, error) {
	if c == nil || cfg.Log == nil {
		return nil, errors.New("projections: an agent needs a consumer and a log")
	}
	defaults.Positive(&cfg.PollInterval, 100*time.Millisecond)
	defaults.Positive(&cfg.MaxBatch, DefaultMaxBatch)
	defaults.Positive(&cfg.MaxQueue, 20*cfg.MaxBatch)
	defaults.Positive(&cfg.HandleTimeout, 10*time.Second)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Logger = cfg.Logger.With("consumer", c.Name())
	return &Agent{c: c, cfg: cfg, wake: make(chan struct{}, 1)}, nil
}

// Name returns the consumer's name.
func (a *Agent) Name() string { return a.c.Name() }

// offer queues e, which follows prev in commit order (prevOK false: the
// event before e is not known). It never blocks.
func (a *Agent) offer(prev eventstore.Cursor, prevOK bool, e eventstore.Event) {
	a.mu.Lock()
	switch {
	case a.overflow:
	case len(a.queue) >= a.cfg.MaxQueue:
		a.overflow, a.queue = true, nil
	default:
		if len(a.queue) == 0 {
			a.from, a.fromOK = prev, prevOK
		}
		a.queue = append(a.queue, e)
	}
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// take removes up to MaxBatch queued events. gap reports that the queue
// lost events (or never knew what came before them).
func (a *Agent) take() (from eventstore.Cursor, events []eventstore.Event, gap bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.overflow {
		a.overflow, a.queue = false, nil
		return eventstore.Cursor{}, nil, true
	}
	if len(a.queue) == 0 {
		return eventstore.Cursor{}, nil, false
	}
	from, gap = a.from, !a.fromOK
	n := min(len(a.queue), a.cfg.MaxBatch)
	events = a.queue[:n:n]
	if n == len(a.queue) {
		a.queue = nil
	} else {
		a.queue = append([]eventstore.Event(nil), a.queue[n:]...)
		a.from, a.fromOK = events[n-1].Cursor(), true
	}
	return from, events, gap
}

// discard drops the queue (a standby agent keeps nothing).
func (a *Agent) discard() {
	a.mu.Lock()
	a.queue, a.overflow = nil, false
	a.mu.Unlock()
}

// Run feeds the consumer until ctx ends. A batch under way when ctx ends is
// finished (within HandleTimeout).
func (a *Agent) Run(ctx context.Context) {
	defer func() {
		if a.cfg.Lease != nil {
			a.cfg.Lease.Release()
		}
	}()
	var (
		cur     eventstore.Cursor
		known   bool
		backoff = DefaultRetryInterval
		idle    int
	)
	fail := func(what string, err error) bool {
		if ctx.Err() != nil {
			return false
		}
		a.cfg.Logger.Warn("consumer "+what+" failed; retrying", "err", err, "retry_in", backoff)
		known = false
		ok := sleep(ctx, backoff)
		backoff = min(2*backoff, maxRetryInterval)
		return ok
	}
	tick := time.NewTicker(a.cfg.PollInterval)
	defer tick.Stop()
	for ctx.Err() == nil {
		if a.cfg.Lease != nil && !a.cfg.Lease.Held() {
			a.discard()
			known = false
			if !a.cfg.Lease.TryAcquire(ctx) {
				select {
				case <-ctx.Done():
				case <-tick.C:
				}
				continue
			}
			a.cfg.Logger.Info("this instance now feeds the consumer")
		}
		if !known {
			var err error
			if cur, err = a.c.Checkpoint(ctx); err != nil {
				if !fail("checkpoint read", err) {
					return
				}
				continue
			}
			known = true
			if err := a.catchUp(ctx, &cur); err != nil {
				if !fail("catch-up", err) {
					return
				}
				continue
			}
		}

		from, events, gap := a.take()
		if !gap && len(events) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-a.wake:
				idle = 0
			case <-tick.C:
				if idle++; idle < idleChecks {
					continue
				}
				idle = 0
				if a.cfg.Lease != nil && !a.cfg.Lease.Check(ctx) {
					a.cfg.Logger.Warn("this instance lost the consumer's lease; standing by")
					continue
				}
				// Whatever the tail said, the checkpoint in the database
				// decides: another instance or a rebuild may have moved it.
				known = false
			}
			continue
		}
		if gap || cur.Before(from) {
			// The queue does not continue the checkpoint: read the log.
			// Everything queued so far was readable before this read
			// starts, so the catch-up covers it.
			if err := a.catchUp(ctx, &cur); err != nil && !fail("catch-up", err) {
				return
			}
			continue
		}
		events = after(events, cur)
		if len(events) == 0 {
			continue
		}
		next, err := a.handle(ctx, cur, events)
		if err != nil {
			if !fail("batch", err) {
				return
			}
			continue
		}
		backoff = DefaultRetryInterval
		cur = next
		if cur.Before(events[len(events)-1].Cursor()) {
			// Part of the consumer was behind: it reads the log for it.
			known = false
		}
	}
}

// handle runs one Handle; once ctx ends, the batch still gets HandleTimeout
// to finish.
func (a *Agent) handle(ctx context.Context, from eventstore.Cursor, events []eventstore.Event) (eventstore.Cursor, error) {
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(a.cfg.HandleTimeout, cancel)
		context.AfterFunc(hctx, func() { t.Stop() })
	})
	defer stop()
	start := time.Now()
	next, err := a.c.Handle(hctx, from, events)
	if err == nil && a.cfg.OnHandled != nil {
		a.cfg.OnHandled(a.c.Name(), len(events), time.Since(start))
	}
	return next, err
}

// catchUp reads the log from *cur and handles it page by page until a page
// comes back short: the consumer has then seen everything readable when
// that page was read.
func (a *Agent) catchUp(ctx context.Context, cur *eventstore.Cursor) error {
	for ctx.Err() == nil {
		page, err := a.cfg.Log.ReadCommitted(ctx, *cur, a.cfg.MaxBatch)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		next, err := a.handle(ctx, *cur, page)
		if err != nil {
			return err
		}
		if !cur.Before(next) {
			// No progress: part of the consumer went back (a reset);
			// start again from the database's checkpoint.
			if *cur, err = a.c.Checkpoint(ctx); err != nil {
				return err
			}
			continue
		}
		*cur = next
		if len(page) < a.cfg.MaxBatch && !next.Before(page[len(page)-1].Cursor()) {
			return nil
		}
	}
	return ctx.Err()
}

// after returns the events that come after c in commit order.
func after(events []eventstore.Event, c eventstore.Cursor) []eventstore.Event {
	for i, e := range events {
		if e.Cursor().After(c) {
			return events[i:]
		}
	}
	return nil
}

// sleep waits d or until ctx ends; it reports false in the second case.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
