package eventstore

import (
	"context"
	"crypto/rand"
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
// notification lock. A NOTIFY carries the sending process's token, and the
// process ignores its own when they come back: its readers were woken by
// the appends themselves. Polling remains the fallback: a lost notification
// only delays a reader until its next poll.
type Notifier struct {
	db      *sql.DB
	connStr string
	logger  *slog.Logger
	token   string // the payload of this process's NOTIFYs

	appended, settled wakers

	pending chan struct{}
}

// wakers is a set of coalescing wake-up channels.
type wakers struct {
	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

func (w *wakers) subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	if w.subs == nil {
		w.subs = make(map[chan struct{}]struct{})
	}
	w.subs[ch] = struct{}{}
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		delete(w.subs, ch)
		w.mu.Unlock()
	}
}

func (w *wakers) wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// NewNotifier returns a Notifier that sends through db and listens on a
// dedicated connection opened with connStr. Call Run to start it.
func NewNotifier(db *sql.DB, connStr string, logger *slog.Logger) *Notifier {
	return &Notifier{db: db, connStr: connStr, logger: logger, token: "engram-" + rand.Text(), pending: make(chan struct{}, 1)}
}

// Subscribe returns a channel that receives a value (coalesced) whenever new
// events may be available, and a function that stops the subscription.
func (n *Notifier) Subscribe() (<-chan struct{}, func()) { return n.appended.subscribe() }

// SubscribeSettled returns a channel that receives a value (coalesced)
// whenever Settled is called, and a function that stops the subscription.
func (n *Notifier) SubscribeSettled() (<-chan struct{}, func()) { return n.settled.subscribe() }

// Appended wakes local readers and schedules one NOTIFY for other instances.
// It never blocks; use it as a Store append hook.
func (n *Notifier) Appended(AppendResult) {
	n.appended.wake()
	select {
	case n.pending <- struct{}{}:
	default:
	}
}

// Settled tells local readers that a transaction that may have held back the
// log's horizon has ended (a projectors' batch, which holds its transaction
// id while it writes; this process's readers pass it as a bystander, but a
// reader whose query began before it was named did not): events committed
// meanwhile may be readable now. It never blocks.
func (n *Notifier) Settled() { n.settled.wake() }

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
				if _, err := n.db.ExecContext(ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, n.token); err != nil && ctx.Err() == nil {
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
		case note := <-listener.Notify:
			// A nil notification means the connection was re-established:
			// something may have been missed, so wake readers as well.
			if note == nil || note.Extra != n.token {
				n.appended.wake()
			}
		}
	}
}
