package eventstore

import (
	"context"
	"database/sql"
	"log/slog"
	"sync"
	"time"

	"github.com/lib/pq"
)

// Dispatcher tells each consumer group of this process when it has events to
// read, so that idle groups never poll.
//
// It looks, in one read-only statement for all the groups, which have an
// event readable now, and wakes only those: after every wake-up from the
// Notifier, and every poll interval otherwise. A wake-up can arrive before
// the new event is readable (readers stop below the oldest transaction still
// running: an append in flight, another group's batch), so after one it
// keeps looking for a while, at growing intervals.
//
// This replaces a poll by every group after every append: a poll is a
// repeatable-read transaction that locks the group's checkpoint row, which
// gives it a transaction id, and each transaction id in flight holds back
// what every gap-safe reader (the groups, live streams) may read.
type Dispatcher struct {
	db     *sql.DB
	poll   time.Duration
	logger *slog.Logger

	mu     sync.Mutex
	groups map[string]chan struct{}
}

// After a wake-up the dispatcher keeps looking for hotWindow, first after
// hotFirst, then at intervals doubling up to hotMax.
const (
	hotWindow = time.Second
	hotFirst  = time.Millisecond
	hotMax    = 32 * time.Millisecond
)

// NewDispatcher returns a Dispatcher that looks at least every poll
// interval. Call Run to start it.
func NewDispatcher(db *sql.DB, poll time.Duration, logger *slog.Logger) *Dispatcher {
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	return &Dispatcher{db: db, poll: poll, logger: logger, groups: make(map[string]chan struct{})}
}

// Subscribe returns the channel on which consumerGroup is told that it has
// events to read (coalesced), and a function that ends the subscription.
func (d *Dispatcher) Subscribe(consumerGroup string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	d.mu.Lock()
	d.groups[consumerGroup] = ch
	d.mu.Unlock()
	return ch, func() {
		d.mu.Lock()
		if d.groups[consumerGroup] == ch {
			delete(d.groups, consumerGroup)
		}
		d.mu.Unlock()
	}
}

// Run dispatches until ctx ends. wake receives the Notifier's wake-ups.
func (d *Dispatcher) Run(ctx context.Context, wake <-chan struct{}) {
	timer := time.NewTimer(d.poll)
	defer timer.Stop()
	var hotUntil time.Time
	delay := hotFirst
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
			hotUntil = time.Now().Add(hotWindow)
			delay = hotFirst
		case <-timer.C:
			delay = min(2*delay, hotMax)
		}
		d.dispatch(ctx)
		next := d.poll
		if time.Now().Before(hotUntil) {
			next = min(delay, next)
		}
		timer.Reset(next)
	}
}

// dispatch wakes every subscribed group that has an event to read. A group
// without a checkpoint yet is woken too; on an error every group is, and
// finds out by polling.
func (d *Dispatcher) dispatch(ctx context.Context) {
	d.mu.Lock()
	names := make([]string, 0, len(d.groups))
	for name := range d.groups {
		names = append(names, name)
	}
	d.mu.Unlock()
	if len(names) == 0 {
		return
	}
	// The first readable event after each checkpoint, found by a walk of
	// the (tx_id, global_position) index (a scalar sub-select with
	// ORDER BY … LIMIT 1: an EXISTS is planned as a sequential scan).
	rows, err := d.db.QueryContext(ctx, `SELECT g FROM unnest($1::text[]) AS g
		LEFT JOIN consumer_offsets o ON o.consumer_group = g
		WHERE o.consumer_group IS NULL OR (
			SELECT e.global_position FROM events e
			WHERE (e.tx_id, e.global_position) > (o.last_processed_transaction_id, o.offset_acked)
			AND e.tx_id < pg_snapshot_xmin(pg_current_snapshot())
			ORDER BY e.tx_id, e.global_position LIMIT 1) IS NOT NULL`, pq.Array(names))
	if err != nil {
		if ctx.Err() == nil {
			d.logger.Debug("dispatcher could not look for events; waking every group", "err", err)
			d.wake(names)
		}
		return
	}
	defer rows.Close()
	var ready []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			d.wake(names)
			return
		}
		ready = append(ready, name)
	}
	if rows.Err() != nil {
		ready = names
	}
	d.wake(ready)
}

func (d *Dispatcher) wake(names []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, name := range names {
		if ch, ok := d.groups[name]; ok {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}
