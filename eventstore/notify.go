package eventstore

import (
	"context"
	"database/sql"
	"log/slog"
	"sync"
	"time"

	"github.com/lib/pq"
)

// NotifyChannel is the PostgreSQL channel on which instances announce appends.
const NotifyChannel = "engram_events"

// notifyInterval is the least time between two NOTIFYs of one process: under
// load one statement announces many group commits, and other instances
// learn of an append at most this much later.
const notifyInterval = 5 * time.Millisecond

// Notifier wakes tailing readers as soon as events are appended, instead of
// letting them wait for their next poll. Appends made by this process wake
// local readers at once; every instance also LISTENs on NotifyChannel, and
// this process NOTIFYs it after its own appends, coalesced: at most one NOTIFY
// is in flight at a time, at most one every notifyInterval, and it is sent
// outside the append's transaction, so appends never queue on PostgreSQL's
// notification lock. Polling remains the fallback: a lost notification only
// delays a reader until its next poll.
type Notifier struct {
	db      *sql.DB
	connStr string
	logger  *slog.Logger

	mu   sync.Mutex
	subs map[chan struct{}]struct{}

	pending chan struct{}
}

// NewNotifier returns a Notifier that sends through db and listens on a
// dedicated connection opened with connStr. Call Run to start it.
func NewNotifier(db *sql.DB, connStr string, logger *slog.Logger) *Notifier {
	return &Notifier{
		db:      db,
		connStr: connStr,
		logger:  logger,
		subs:    make(map[chan struct{}]struct{}),
		pending: make(chan struct{}, 1),
	}
}

// Subscribe returns a channel that receives a value (coalesced) whenever new
// events may be available, and a function that stops the subscription.
func (n *Notifier) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	n.mu.Lock()
	n.subs[ch] = struct{}{}
	n.mu.Unlock()
	return ch, func() {
		n.mu.Lock()
		delete(n.subs, ch)
		n.mu.Unlock()
	}
}

// Appended wakes local readers and schedules one NOTIFY for other instances.
// It never blocks; use it as a Store append hook.
func (n *Notifier) Appended(AppendResult) {
	n.wake()
	select {
	case n.pending <- struct{}{}:
	default:
	}
}

func (n *Notifier) wake() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for ch := range n.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Run listens and sends notifications until ctx ends.
func (n *Notifier) Run(ctx context.Context) error {
	listener := pq.NewListener(n.connStr, 50*time.Millisecond, 10*time.Second,
		func(ev pq.ListenerEventType, err error) {
			if err != nil {
				n.logger.Warn("event notification listener", "event", int(ev), "err", err)
			}
		})
	defer listener.Close()
	if err := listener.Listen(NotifyChannel); err != nil {
		n.logger.Warn("cannot LISTEN for event notifications; readers fall back to polling", "err", err)
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-n.pending:
				if _, err := n.db.ExecContext(ctx, `SELECT pg_notify($1, '')`, NotifyChannel); err != nil && ctx.Err() == nil {
					n.logger.Debug("event notification not sent", "err", err)
				}
				pause := time.NewTimer(notifyInterval)
				select {
				case <-ctx.Done():
				case <-pause.C:
				}
				pause.Stop()
			}
		}
	}()
	defer wg.Wait()

	for {
		select {
		case <-ctx.Done():
			return nil
		case <-listener.Notify:
			// A nil notification means the connection was re-established:
			// something may have been missed, so wake readers as well.
			n.wake()
		}
	}
}
