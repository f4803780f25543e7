package eventstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/engramhq/engram/platform/defaults"
)

// ErrUnknownPosition is returned by CursorOf for a position that no stored
// event has.
var ErrUnknownPosition = errors.New("eventstore: no event has this position")

// CursorOf returns the commit-order cursor of the event at position, so that
// a reader that has seen that event can go on with ReadCommitted from it.
// Position 0 is the cursor before every event. It returns
// ErrUnknownPosition when no event has the position.
func (s *Store) CursorOf(ctx context.Context, position int64) (Cursor, error) {
	if position == 0 {
		return Cursor{}, nil
	}
	if position < 0 {
		return Cursor{}, ErrUnknownPosition
	}
	c := Cursor{Position: position}
	err := s.queryRow(ctx, `SELECT tx_id::text FROM events WHERE global_position = $1`, position).Scan(&c.TxID)
	if errors.Is(err, sql.ErrNoRows) {
		return Cursor{}, ErrUnknownPosition
	}
	if err != nil {
		return Cursor{}, fmt.Errorf("eventstore: cursor of %d: %w", position, err)
	}
	return c, nil
}

// FirstEvent returns the first event of a stream, and false when the stream
// does not exist. It tells who a stream belongs to (the workspace of a
// conversation, the user of a session) without reading the whole stream.
// The first events of the streams asked about, or started by this store,
// lately are remembered: they never change. One this store wrote carries
// its data as the append gave it, which is the stored JSON but not
// necessarily in PostgreSQL's normalized form. Callers must not modify the
// event's slices.
func (s *Store) FirstEvent(ctx context.Context, streamID string) (Event, bool, error) {
	if e, ok := s.firsts.get(streamID); ok {
		return e, true, nil
	}
	events, err := s.queryEvents(ctx, `SELECT `+eventColumns+` FROM events
		WHERE stream_id = $1 ORDER BY stream_version LIMIT 1`, streamID)
	if err != nil {
		return Event{}, false, fmt.Errorf("first event of %s: %w", streamID, err)
	}
	if len(events) == 0 {
		return Event{}, false, nil
	}
	s.firsts.add(events[0])
	return events[0], true, nil
}

// After reports whether c comes after d in commit order.
func (c Cursor) After(d Cursor) bool {
	return c.TxID > d.TxID || c.TxID == d.TxID && c.Position > d.Position
}

// hotWindow is how long a reader keeps looking at short intervals after a
// wake-up that found nothing readable yet.
const hotWindow = time.Second

// Defaults of TailerConfig.
const (
	DefaultTailPollInterval  = 200 * time.Millisecond
	DefaultTailBatchSize     = 500
	DefaultTailRetryInterval = time.Second
	DefaultTailHotInterval   = 5 * time.Millisecond
	DefaultTailMinGap        = time.Millisecond
)

// TailerConfig configures a Tailer.
type TailerConfig struct {
	// From is where every subscription starts (exclusive); nil means the
	// head of the log at the time of Subscribe: only events that commit
	// afterwards are delivered.
	From *Cursor
	// PollInterval bounds how long an idle reader waits before reading
	// again when no wake-up arrives (default DefaultTailPollInterval).
	PollInterval time.Duration
	// BatchSize is the number of events read per query (default
	// DefaultTailBatchSize).
	BatchSize int
	// RetryInterval is the wait after a failed read or a Nack (default
	// DefaultTailRetryInterval).
	RetryInterval time.Duration
	// Wake, when set, returns a channel that ends an idle wait early and a
	// function that releases it (Notifier.Subscribe).
	Wake func() (<-chan struct{}, func())
	// Settled, when set, returns a channel that ends early the short waits
	// of a reader whose new events are not readable yet — an older
	// transaction still holds the horizon back — and a function that
	// releases it (Notifier.SubscribeSettled).
	Settled func() (<-chan struct{}, func())
	// HotInterval is how soon such a reader looks again when nothing
	// ends its wait (default DefaultTailHotInterval).
	HotInterval time.Duration
	// MinGap is the least time between the starts of two reads, unless the
	// first one filled a page (default DefaultTailMinGap). Under load
	// appends commit a fraction of a millisecond apart and each wakes the
	// reader: the gap lets one query read what several would have, at a
	// cost of at most MinGap of latency. An idle reader is not held back.
	MinGap time.Duration
}

// Tailer is a Watermill subscriber that follows the events table in commit
// order, for readers that need every event but no shared progress: each
// subscription reads for itself from the head (or TailerConfig.From) with
// Store.ReadCommitted, so it never skips an event that commits late, and its
// polls are plain reads that take no transaction id. It is woken by the
// Notifier and polls as a fallback. There is no consumer group and no
// checkpoint: a subscription ends with the process, and a reader that needs
// to resume does so from the store by itself (as SSE clients do with
// Last-Event-ID).
//
// Messages are built with ToMessage and delivered one at a time: the next
// is sent after the previous one is acked; a nacked message is sent again
// after RetryInterval.
type Tailer struct {
	store  *Store
	cfg    TailerConfig
	logger watermill.LoggerAdapter

	mu      sync.Mutex
	closed  bool
	closing chan struct{}
	wg      sync.WaitGroup
}

var _ message.Subscriber = (*Tailer)(nil)

// NewTailer returns a Tailer over store.
func NewTailer(store *Store, cfg TailerConfig, logger watermill.LoggerAdapter) (*Tailer, error) {
	if store == nil {
		return nil, errors.New("eventstore: tailer needs a store")
	}
	defaults.Positive(&cfg.PollInterval, DefaultTailPollInterval)
	defaults.Positive(&cfg.BatchSize, DefaultTailBatchSize)
	defaults.Positive(&cfg.RetryInterval, DefaultTailRetryInterval)
	defaults.Positive(&cfg.HotInterval, DefaultTailHotInterval)
	defaults.Positive(&cfg.MinGap, DefaultTailMinGap)
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	return &Tailer{store: store, cfg: cfg, logger: logger, closing: make(chan struct{})}, nil
}

// Subscribe starts a reader of topic (which must be Topic) and returns its
// messages. The channel is closed when ctx ends or the Tailer is closed.
func (t *Tailer) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if topic != Topic {
		return nil, fmt.Errorf("eventstore: tailer reads topic %q, not %q", Topic, topic)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, errors.New("eventstore: tailer is closed")
	}
	var from Cursor
	if t.cfg.From != nil {
		from = *t.cfg.From
	} else {
		head, err := t.store.Head(ctx)
		if err != nil {
			return nil, fmt.Errorf("eventstore: tailer start: %w", err)
		}
		from = head
	}
	wake, release := subscribe(t.cfg.Wake)
	settled, releaseSettled := subscribe(t.cfg.Settled)
	out := make(chan *message.Message)
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		defer close(out)
		defer release()
		defer releaseSettled()
		t.run(ctx, from, out, wake, settled)
	}()
	return out, nil
}

// subscribe calls a subscription function when there is one.
func subscribe(fn func() (<-chan struct{}, func())) (<-chan struct{}, func()) {
	if fn == nil {
		return nil, func() {}
	}
	return fn()
}

// Close stops every subscription and waits for their readers to finish.
func (t *Tailer) Close() error {
	t.mu.Lock()
	if !t.closed {
		t.closed = true
		close(t.closing)
	}
	t.mu.Unlock()
	t.wg.Wait()
	return nil
}

// run reads and delivers until ctx ends or the Tailer closes.
func (t *Tailer) run(ctx context.Context, cursor Cursor, out chan<- *message.Message, wake, settled <-chan struct{}) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-t.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	var hotUntil, lastRead time.Time
	full := false
	for {
		if wait := t.cfg.MinGap - time.Since(lastRead); !full && wait > 0 {
			if !sleep(ctx, wait, nil, nil) {
				return
			}
		}
		lastRead = time.Now()
		events, err := t.store.ReadCommitted(ctx, cursor, t.cfg.BatchSize)
		full = false
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			t.logger.Error("event tailer read failed; retrying", err, watermill.LogFields{"retry_in": t.cfg.RetryInterval.String()})
			if !sleep(ctx, t.cfg.RetryInterval, nil, nil) {
				return
			}
			continue
		}
		for i, e := range events {
			if !t.deliver(ctx, e, i < len(events)-1, out) {
				return
			}
			cursor = e.Cursor()
		}
		if len(events) == t.cfg.BatchSize {
			full = true
			continue
		}
		// After a wake-up the new events may not be readable yet (an older
		// transaction still in flight holds the horizon back): keep looking
		// at short intervals for a while, and at once when a local
		// transaction that may have held it ends — one that settled, or an
		// append that committed.
		if len(events) == 0 && time.Now().Before(hotUntil) {
			if !sleep(ctx, t.cfg.HotInterval, settled, wake) {
				return
			}
			continue
		}
		woken, ok := sleepOrWake(ctx, t.cfg.PollInterval, wake)
		if !ok {
			return
		}
		if woken {
			hotUntil = time.Now().Add(hotWindow)
		}
	}
}

// sleepOrWake waits for d, a wake-up or the end of ctx. It reports whether a
// wake-up ended the wait, and false as its second result when ctx ended.
func sleepOrWake(ctx context.Context, d time.Duration, wake <-chan struct{}) (woken, ok bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false, false
	case <-timer.C:
		return false, true
	case <-wake:
		return true, true
	}
}

// deliver sends e until it is acked, marked with MetaMore when more events
// of the same read follow. It returns false when ctx ended first.
func (t *Tailer) deliver(ctx context.Context, e Event, more bool, out chan<- *message.Message) bool {
	for {
		msg := ToMessage(e)
		if more {
			msg.Metadata.Set(MetaMore, "1")
		}
		msgCtx, cancel := context.WithCancel(ctx)
		msg.SetContext(msgCtx)
		select {
		case out <- msg:
		case <-ctx.Done():
			cancel()
			return false
		}
		select {
		case <-msg.Acked():
			cancel()
			return true
		case <-msg.Nacked():
			cancel()
			if !sleep(ctx, t.cfg.RetryInterval, nil, nil) {
				return false
			}
		case <-ctx.Done():
			cancel()
			return false
		}
	}
}

// sleep waits for d, a wake-up on wake or on also (a nil channel never
// ends the wait), or the end of ctx; it returns false in the last case.
func sleep(ctx context.Context, d time.Duration, wake, also <-chan struct{}) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
	case <-wake:
	case <-also:
	}
	return true
}

// Before reports whether c comes before d in commit order.
func (c Cursor) Before(d Cursor) bool { return d.After(c) }
