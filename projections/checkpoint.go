package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
type Checkpoints struct {
	db      *sql.DB
	timeout time.Duration
	// applied is the prepared statement of Applied, which every read with
	// Engram-Min-Position runs.
	applied *sqlstmt.Cache

	mu    sync.Mutex
	moved chan struct{} // closed when a local batch commits
}

// NewCheckpoints returns Checkpoints over db; WaitFor waits at most timeout.
func NewCheckpoints(db *sql.DB, timeout time.Duration) *Checkpoints {
	return &Checkpoints{db: db, timeout: timeout, applied: sqlstmt.New(db, 1), moved: make(chan struct{})}
}

// Moved tells waiters that checkpoints have just moved (a batch of this
// instance committed), so that they look again at once instead of at their
// next poll.
func (c *Checkpoints) Moved() {
	c.mu.Lock()
	close(c.moved)
	c.moved = make(chan struct{})
	c.mu.Unlock()
}

func (c *Checkpoints) movedChan() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.moved
}

// Applied reports whether projector has applied the event at position.
// Consumers go in commit order, (tx_id, global_position), so "applied" means
// the projector's checkpoint is at or beyond that event in this order.
func (c *Checkpoints) Applied(ctx context.Context, projector string, position int64) (bool, error) {
	const query = `SELECT (
			SELECT (o.last_processed_transaction_id, o.offset_acked) >= (e.tx_id, e.global_position)
			FROM consumer_offsets o WHERE o.consumer_group = $1)
		FROM events e WHERE e.global_position = $2`
	var applied sql.NullBool
	err := c.applied.QueryRowContext(ctx, query, projector, position).Scan(&applied)
	if errors.Is(err, sql.ErrNoRows) {
		return false, ErrUnknownPosition
	}
	if err != nil {
		return false, fmt.Errorf("checkpoint of %s: %w", projector, err)
	}
	return applied.Valid && applied.Bool, nil
}

// WaitFor waits until projector has applied position, or the timeout passes
// (ErrNotCaughtUp), or ctx ends. Position 0 returns at once.
func (c *Checkpoints) WaitFor(ctx context.Context, projector string, position int64) error {
	if position <= 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	delay := 2 * time.Millisecond
	for {
		moved := c.movedChan()
		ok, err := c.Applied(ctx, projector, position)
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
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ErrNotCaughtUp
		case <-t.C:
		case <-moved:
			t.Stop()
		}
		if delay < 25*time.Millisecond {
			delay *= 2
		}
	}
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
