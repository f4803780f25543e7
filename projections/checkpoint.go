package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lib/pq"

	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/platform/sqlstmt"
)

// ErrUnknownPosition means a client waited for a position the log does not
// hold.
var ErrUnknownPosition = errors.New("no event has this position")

// ErrNotCaughtUp means a read model did not reach the awaited position in
// time.
var ErrNotCaughtUp = errors.New("the read model has not caught up with the requested position yet")

// Checkpoints tells how far each projector has come, and lets queries wait
// for their read model to reach a position (read-your-writes).
//
// A waiter asks the database once; after that it mostly listens. The
// batches of this instance report each checkpoint they commit (Moved), so a
// waiter whose projectors this instance advances learns the answer from
// memory. It asks the database again only when a poll finds a projector
// short of the position that no batch of this instance has moved lately
// (within localWindow): the projectors' lease is then held elsewhere
// (another instance, a rebuild's swap), and only the database knows.
type Checkpoints struct {
	db      *sql.DB
	timeout time.Duration
	// applied is the prepared statement of the database's answer, which
	// every read with Engram-Min-Position runs.
	applied *sqlstmt.Cache

	mu    sync.Mutex
	moved chan struct{} // closed when a local batch commits
	// local is, per projector, the checkpoint its last local batch
	// committed, and when.
	local map[string]localMove
}

// localMove is a projector's last move by a batch of this instance.
type localMove struct {
	to eventstore.Cursor
	at time.Time
}

// localWindow is how long after a local batch last moved a projector its
// waiters rely on this instance's reports alone: a batch commits every few
// milliseconds while events come, so a projector not moved for this long is
// advanced elsewhere, if at all (the lease changed hands), and the database
// is asked again. It bounds how much later than necessary a waiter learns
// of a move made by another instance just after a lease changed hands.
const localWindow = 500 * time.Millisecond

// NewCheckpoints returns Checkpoints over db; WaitFor waits at most timeout.
func NewCheckpoints(db *sql.DB, timeout time.Duration) *Checkpoints {
	return &Checkpoints{db: db, timeout: timeout, applied: sqlstmt.New(db, 1),
		moved: make(chan struct{}), local: make(map[string]localMove)}
}

// Moved records that a batch of this instance has committed the projectors'
// checkpoints at cursor, and wakes the waiters. A committed checkpoint is
// what the database holds until the next batch moves it, so it is recorded
// as it is, not as the greater of it and the last one.
func (c *Checkpoints) Moved(projectors []string, cursor eventstore.Cursor) {
	now := time.Now()
	c.mu.Lock()
	for _, p := range projectors {
		c.local[p] = localMove{cursor, now}
	}
	close(c.moved)
	c.moved = make(chan struct{})
	c.mu.Unlock()
}

// watch returns the channel the next Moved closes and the local checkpoints
// of the projectors (the zero cursor for one never moved here).
func (c *Checkpoints) watch(projectors []string, into []eventstore.Cursor) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range projectors {
		into[i] = c.local[p].to
	}
	return c.moved
}

// advancing reports whether every projector whose local checkpoint is short
// of ev has been moved by a batch of this instance within localWindow: this
// instance is advancing them, and its own reports will tell when they
// arrive.
func (c *Checkpoints) advancing(projectors []string, local []eventstore.Cursor, ev eventstore.Cursor) bool {
	since := time.Now().Add(-localWindow)
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range projectors {
		if local[i].Before(ev) && c.local[p].at.Before(since) {
			return false
		}
	}
	return true
}

// appliedAll asks the database whether every projector has applied the event
// at position, and returns that event's cursor. Consumers go in commit
// order, (tx_id, global_position), so "applied" means a checkpoint at or
// beyond the event in this order; a projector with no checkpoint has
// applied nothing.
func (c *Checkpoints) appliedAll(ctx context.Context, projectors []string, position int64) (bool, eventstore.Cursor, error) {
	const query = `SELECT e.tx_id::text, count(o.consumer_group) FILTER (
			WHERE (o.last_processed_transaction_id, coalesce(o.offset_acked, 0)) >= (e.tx_id, e.global_position))
		FROM events e LEFT JOIN consumer_offsets o ON o.consumer_group = ANY($1)
		WHERE e.global_position = $2 GROUP BY e.tx_id`
	var (
		txID string
		done int
	)
	err := c.applied.QueryRowContext(ctx, query, pq.Array(projectors), position).Scan(&txID, &done)
	if errors.Is(err, sql.ErrNoRows) {
		return false, eventstore.Cursor{}, ErrUnknownPosition
	}
	if err != nil {
		return false, eventstore.Cursor{}, fmt.Errorf("checkpoints of %s: %w", strings.Join(projectors, ", "), err)
	}
	ev := eventstore.Cursor{Position: position}
	if ev.TxID, err = strconv.ParseUint(txID, 10, 64); err != nil {
		return false, eventstore.Cursor{}, fmt.Errorf("transaction id %q of event %d: %w", txID, position, err)
	}
	return done == len(projectors), ev, nil
}

// WaitFor waits until every projector named has applied position, or the
// timeout passes (ErrNotCaughtUp), or ctx ends. Position 0 returns at once.
func (c *Checkpoints) WaitFor(ctx context.Context, position int64, projectors ...string) error {
	if position <= 0 || len(projectors) == 0 {
		return nil
	}
	projectors = slices.Compact(slices.Sorted(slices.Values(projectors)))
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var (
		local = make([]eventstore.Cursor, len(projectors))
		delay = 2 * time.Millisecond
		timer *time.Timer
	)
	moved := c.watch(projectors, local)
	ok, ev, err := c.appliedAll(ctx, projectors, position)
	for {
		switch {
		case ok:
			return nil
		case errors.Is(err, ErrUnknownPosition):
			return err
		case ctx.Err() != nil:
			return ErrNotCaughtUp
		case err != nil:
			return err
		}
		if timer == nil {
			timer = time.NewTimer(delay)
			defer timer.Stop()
		} else {
			timer.Reset(delay)
		}
	listen: // to this instance's batches until the next poll
		for {
			select {
			case <-ctx.Done():
				return ErrNotCaughtUp
			case <-moved:
				moved = c.watch(projectors, local)
				if covers(local, ev) {
					return nil
				}
			case <-timer.C:
				break listen
			}
		}
		if delay < 25*time.Millisecond {
			delay *= 2
		}
		if moved = c.watch(projectors, local); covers(local, ev) {
			return nil
		}
		if !c.advancing(projectors, local, ev) {
			ok, _, err = c.appliedAll(ctx, projectors, position)
		}
	}
}

// covers reports whether every local checkpoint is at or beyond ev.
func covers(local []eventstore.Cursor, ev eventstore.Cursor) bool {
	for _, cp := range local {
		if cp.Before(ev) {
			return false
		}
	}
	return true
}

// Status is how far one projector has come.
type Status struct {
	Name string `json:"name"`
	// Position is the global position of the last event applied.
	Position int64 `json:"position"`
	// LagEvents is the number of committed events not applied yet, counted
	// up to MaxLagCount.
	LagEvents int64 `json:"lag_events"`
	// LagSeconds is the age of the first event not applied yet (in commit
	// order): how long the projector has been behind.
	LagSeconds float64 `json:"lag_seconds"`
	// Parked is the number of events the projector gave up on.
	Parked int64 `json:"parked"`
}

// MaxLagCount bounds the events a status counts: a projector further behind
// shows this many. It keeps /readyz and /metrics cheap however far a
// projector has fallen behind.
const MaxLagCount = 1_000_000

// Status reports the checkpoint and lag of each named projector.
//
// The lag is counted along the commit-order index (tx_id, global_position)
// from the checkpoint on, never by scanning the log: with the checkpoint
// known only at run time, the planner guesses that a third of the log lies
// after it and reads the whole table — every readiness probe and metrics
// scrape then cost a scan of the log, and more as it grew. Sequential and
// bitmap scans are turned off for the status's own read-only transaction.
func (c *Checkpoints) Status(ctx context.Context, names []string) ([]Status, error) {
	tx, err := c.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off`); err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	// One statement for every projector, in the order of names.
	rows, err := tx.QueryContext(ctx, `
		SELECT n.name, o.pos,
		       (SELECT count(*) FROM (SELECT 1 FROM events e WHERE (e.tx_id, e.global_position) > (o.tx, o.pos)
		           ORDER BY e.tx_id, e.global_position LIMIT $2) behind),
		       (SELECT e.recorded_at FROM events e WHERE (e.tx_id, e.global_position) > (o.tx, o.pos)
		           ORDER BY e.tx_id, e.global_position LIMIT 1),
		       (SELECT count(*) FROM parked_events p WHERE p.consumer_group = n.name)
		FROM unnest($1::text[]) WITH ORDINALITY AS n(name, ord)
		CROSS JOIN LATERAL (
			SELECT coalesce((SELECT last_processed_transaction_id FROM consumer_offsets WHERE consumer_group = n.name), '0'::xid8) AS tx,
			       coalesce((SELECT offset_acked FROM consumer_offsets WHERE consumer_group = n.name), 0) AS pos
		) o
		ORDER BY n.ord`, pq.Array(names), MaxLagCount)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	defer rows.Close()
	out := make([]Status, 0, len(names))
	for rows.Next() {
		var (
			s      Status
			oldest sql.NullTime
		)
		if err := rows.Scan(&s.Name, &s.Position, &s.LagEvents, &oldest, &s.Parked); err != nil {
			return nil, fmt.Errorf("status: %w", err)
		}
		if oldest.Valid {
			s.LagSeconds = time.Since(oldest.Time).Seconds()
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	return out, nil
}

// Least returns the least checkpoint of the named projectors, in commit
// order (the start of the log when one has none yet).
func (c *Checkpoints) Least(ctx context.Context, names ...string) (eventstore.Cursor, error) {
	return leastCheckpoint(ctx, c.db, names)
}
