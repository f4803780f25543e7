package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"github.com/lib/pq"

	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/platform/sqlstmt"
)

// ProjectorsName is the name of the consumer that applies the projectors
// (and of its lease).
const ProjectorsName = "projectors"

// DefaultMaxRetries is how many times a batch is tried again after a
// projector failed on one of its events, before the event is parked.
const DefaultMaxRetries = 3

// Projectors is the Consumer that applies every projector of the instance
// to each batch of events in one transaction, which also moves each
// projector's checkpoint in consumer_offsets.
//
// A checkpoint per projector keeps status, rebuild and parking per
// projector: a projector whose checkpoint is past a batch (a rebuild swapped
// it in) skips it; one that is behind (a reset, a new projector) is left out
// of the batch and gets its events from the log. The transaction starts by
// locking the projectors' checkpoint rows, so a rebuild's swap, or another
// instance that believes it holds the lease, waits and then sees where
// every projector really is.
//
// The transaction holds back every gap-safe reader of the log of another
// instance until it ends (this instance's readers pass it: PassedBy), and
// holds row locks that a rebuild waits for, so a batch takes as few round
// trips as it can: the projectors' shares run
// one after the other, with nothing in between. Once a batch has failed,
// the next tries run each projector's share in a savepoint. When it fails,
// the savepoint is rolled back and the batch is tried again (the whole
// transaction, after a pause); after DefaultMaxRetries failures of the same
// event, that event alone is parked for that projector alone, and the
// batch goes on. A batch that succeeds goes back to the short way.
type Projectors struct {
	db         *sql.DB
	projectors []Projector
	names      []string
	// stmts holds the batches' statements, prepared.
	stmts      *sqlstmt.Cache
	logger     *slog.Logger
	maxRetries int
	// committed, when set, is called after every batch that moved a
	// checkpoint commits, with the projectors it moved and where to.
	committed func(moved []string, to eventstore.Cursor)
	// bystanders, when set, is told of each batch's transaction.
	bystanders Bystanders

	mu       sync.Mutex
	failures map[failure]int
	ensured  bool
	// careful is set by a failed batch: the next ones run each projector
	// in a savepoint, until one succeeds.
	careful bool
}

type failure struct {
	projector string
	position  int64
}

var _ Consumer = (*Projectors)(nil)

// NewProjectors returns the consumer of ps. Their names must be unique.
func NewProjectors(db *sql.DB, logger *slog.Logger, ps ...Projector) (*Projectors, error) {
	if db == nil {
		return nil, errors.New("projections: projectors need a database")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	seen := map[string]bool{}
	for _, p := range ps {
		if seen[p.Name()] {
			return nil, fmt.Errorf("projections: two projectors are called %q", p.Name())
		}
		seen[p.Name()] = true
	}
	return &Projectors{db: db, projectors: ps, names: Names(ps), stmts: sqlstmt.New(db, maxPrepared), logger: logger,
		maxRetries: DefaultMaxRetries, failures: map[failure]int{}}, nil
}

// Bystanders is told of a batch's transaction while it runs: it writes no
// events, so the readers of the log need not wait for it
// (eventstore.Store.Bystander).
type Bystanders interface {
	Bystander(txID uint64) (release func())
}

// PassedBy makes every batch's transaction known to b while it runs. A
// batch holds its transaction for milliseconds to tens of milliseconds under
// load; a tailing reader that waited for it (as it must for a transaction
// that may still write events) would hold every event committed meanwhile
// back until the batch ends, live streams included.
func (c *Projectors) PassedBy(b Bystanders) { c.bystanders = b }

// OnCommitted makes fn be called after every batch that moved a
// checkpoint commits, with the projectors it moved and their new checkpoint
// (e.g. Checkpoints.Moved, which answers read-your-writes waiters at once).
func (c *Projectors) OnCommitted(fn func(moved []string, to eventstore.Cursor)) { c.committed = fn }

// Name returns ProjectorsName.
func (c *Projectors) Name() string { return ProjectorsName }

// Checkpoint returns the least checkpoint of the projectors, creating the
// missing ones (at the start of the log).
func (c *Projectors) Checkpoint(ctx context.Context) (eventstore.Cursor, error) {
	if err := c.ensure(ctx); err != nil {
		return eventstore.Cursor{}, err
	}
	return leastCheckpoint(ctx, c.db, c.names)
}

// leastCheckpoint returns the least of the named checkpoints in
// consumer_offsets, in commit order; none at all is the start of the log.
func leastCheckpoint(ctx context.Context, db *sql.DB, names []string) (eventstore.Cursor, error) {
	var cur eventstore.Cursor
	var tx string
	err := db.QueryRowContext(ctx, `SELECT last_processed_transaction_id::text, coalesce(offset_acked, 0)
		FROM consumer_offsets WHERE consumer_group = ANY($1)
		ORDER BY last_processed_transaction_id, coalesce(offset_acked, 0) LIMIT 1`, pq.Array(names)).Scan(&tx, &cur.Position)
	if errors.Is(err, sql.ErrNoRows) {
		return eventstore.Cursor{}, nil
	}
	if err == nil {
		cur.TxID, err = strconv.ParseUint(tx, 10, 64)
	}
	if err != nil {
		return eventstore.Cursor{}, fmt.Errorf("checkpoint of %s: %w", strings.Join(names, ", "), err)
	}
	return cur, nil
}

// ensure creates a checkpoint row for every projector that has none, so
// that every batch can lock them all.
func (c *Projectors) ensure(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ensured {
		return nil
	}
	if _, err := c.db.ExecContext(ctx, `INSERT INTO consumer_offsets (consumer_group, offset_acked, last_processed_transaction_id)
		SELECT g, 0, '0'::xid8 FROM unnest($1::text[]) AS g ON CONFLICT (consumer_group) DO NOTHING`, pq.Array(c.names)); err != nil {
		return fmt.Errorf("create the projectors' checkpoints: %w", err)
	}
	c.ensured = true
	return nil
}

// Handle applies events to every projector in one transaction.
func (c *Projectors) Handle(ctx context.Context, from eventstore.Cursor, events []eventstore.Event) (_ eventstore.Cursor, err error) {
	if len(events) == 0 {
		return from, nil
	}
	if err := c.ensure(ctx); err != nil {
		return from, err
	}
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return from, fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	checkpoints, txID, err := c.lock(ctx, tx)
	if err != nil {
		return from, err
	}
	if c.bystanders != nil && txID != 0 {
		defer c.bystanders.Bystander(txID)() // after the commit, or before the rollback: either is safe
	}
	end := events[len(events)-1].Cursor()
	next := end
	var moved []string
	c.mu.Lock()
	apply := c.applyAll
	if c.careful {
		apply = c.apply
	}
	c.careful = true // until this batch commits
	c.mu.Unlock()
	for _, p := range c.projectors {
		cp := checkpoints[p.Name()]
		switch {
		case cp.Before(from):
			next = minCursor(next, cp) // behind this batch: it reads the log
			continue
		case !cp.Before(end):
			continue // already past this batch
		}
		if err := apply(ctx, tx, p, wanted(p, after(events, cp))); err != nil {
			return from, err
		}
		moved = append(moved, p.Name())
	}
	if len(moved) > 0 {
		if _, err := c.prepared(tx).ExecContext(ctx, `UPDATE consumer_offsets SET offset_acked = $2, last_processed_transaction_id = $3::text::xid8
			WHERE consumer_group = ANY($1)`, pq.Array(moved), end.Position, strconv.FormatUint(end.TxID, 10)); err != nil {
			return from, fmt.Errorf("move the checkpoints: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return from, fmt.Errorf("commit: %w", err)
	}
	c.mu.Lock()
	c.careful = false
	c.mu.Unlock()
	if c.committed != nil && len(moved) > 0 {
		c.committed(moved, end)
	}
	return next, nil
}

// lock locks every projector's checkpoint row and returns the checkpoints
// and the transaction's id. The same round trip turns off waiting for the
// commit to reach the disk: the transaction holds only what the log can
// rebuild (read models and their checkpoints, together); it ends sooner.
func (c *Projectors) lock(ctx context.Context, tx *sql.Tx) (map[string]eventstore.Cursor, uint64, error) {
	rows, err := c.prepared(tx).QueryContext(ctx, `WITH async AS (
			SELECT set_config('synchronous_commit', 'off', true), pg_current_xact_id()::text AS tx_id)
		SELECT consumer_group, last_processed_transaction_id::text, coalesce(offset_acked, 0), async.tx_id
		FROM consumer_offsets, async WHERE consumer_group = ANY($1)
		ORDER BY consumer_group FOR UPDATE OF consumer_offsets`, pq.Array(c.names))
	if err != nil {
		return nil, 0, fmt.Errorf("lock the checkpoints: %w", err)
	}
	defer rows.Close()
	out := make(map[string]eventstore.Cursor, len(c.names))
	var self string
	for rows.Next() {
		var name, txID string
		var cur eventstore.Cursor
		if err := rows.Scan(&name, &txID, &cur.Position, &self); err != nil {
			return nil, 0, fmt.Errorf("lock the checkpoints: %w", err)
		}
		if cur.TxID, err = strconv.ParseUint(txID, 10, 64); err != nil {
			return nil, 0, fmt.Errorf("checkpoint of %s: %w", name, err)
		}
		out[name] = cur
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("lock the checkpoints: %w", err)
	}
	if len(out) != len(c.names) {
		// A checkpoint row vanished (deleted by hand): create it again.
		c.mu.Lock()
		c.ensured = false
		c.mu.Unlock()
		return nil, 0, errors.New("a projector's checkpoint row is missing")
	}
	if len(out) == 0 {
		return out, 0, nil // no projectors: nothing locked, no id read
	}
	txID, err := strconv.ParseUint(self, 10, 64)
	if err != nil {
		return nil, 0, fmt.Errorf("the batch's transaction id %q: %w", self, err)
	}
	return out, txID, nil
}

// applyAll applies events to p with no savepoint: a failure fails the
// batch, which is then tried again with apply.
func (c *Projectors) applyAll(ctx context.Context, tx *sql.Tx, p Projector, events []eventstore.Event) error {
	if err := applyEvents(ctx, c.prepared(tx), p, events); err != nil {
		return fmt.Errorf("%s: %w", p.Name(), err)
	}
	return nil
}

// apply applies events to p in a savepoint. A failure rolls p's share back
// and fails the batch, unless the failing event has failed maxRetries
// times: it is then parked, and the others are applied.
func (c *Projectors) apply(ctx context.Context, tx *sql.Tx, p Projector, events []eventstore.Event) error {
	if len(events) == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `SAVEPOINT projector`); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	err := applyEvents(ctx, c.prepared(tx), p, events)
	if err == nil {
		return nil
	}
	if _, rbErr := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT projector`); rbErr != nil {
		return errors.Join(fmt.Errorf("%s: %w", p.Name(), err), rbErr)
	}
	if ctx.Err() != nil || transient(err) || !c.exhausted(p, events[0]) {
		return fmt.Errorf("%s: %w", p.Name(), err)
	}
	// The batch has failed maxRetries times in p: apply its events one at a
	// time and park each one that fails.
	for _, e := range events {
		err := inSavepoint(ctx, tx, func() error { return p.Apply(ctx, c.prepared(tx), e) })
		if err == nil {
			continue
		}
		if ctx.Err() != nil || transient(err) {
			return fmt.Errorf("%s, event %d: %w", p.Name(), e.GlobalPosition, err)
		}
		c.logger.Error("projector failed on an event; parking it", "projector", p.Name(), "position", e.GlobalPosition,
			"type", e.Type, "stream_id", e.StreamID, "err", err)
		if err := park(ctx, tx, p.Name(), e, e.EventID, err); err != nil {
			return err
		}
	}
	return nil
}

// exhausted counts a failure of p on the batch starting at first, and
// reports whether it was the last one allowed.
func (c *Projectors) exhausted(p Projector, first eventstore.Event) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := failure{p.Name(), first.GlobalPosition}
	c.failures[k]++
	if c.failures[k] < c.maxRetries {
		return false
	}
	delete(c.failures, k)
	return true
}

// applyEvents applies events to p: in one call when p applies batches,
// one event at a time otherwise.
func applyEvents(ctx context.Context, tx Execer, p Projector, events []eventstore.Event) error {
	if bp, ok := p.(BatchProjector); ok && len(events) > 1 {
		return bp.ApplyBatch(ctx, tx, events)
	}
	for _, e := range events {
		if err := p.Apply(ctx, tx, e); err != nil {
			return fmt.Errorf("event %d (%s): %w", e.GlobalPosition, e.Type, err)
		}
	}
	return nil
}

// wanted returns the events p applies.
func wanted(p Projector, events []eventstore.Event) []eventstore.Event {
	sel, ok := p.(Selective)
	if !ok {
		return events
	}
	var out []eventstore.Event
	for _, e := range events {
		if sel.Wants(e) {
			out = append(out, e)
		}
	}
	return out
}

// transient reports whether err is worth trying again as it is: the
// database could not serialize, ran short of something, or went away.
func transient(err error) bool {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		switch pqErr.Code.Class() {
		case "08", "40", "53", "55", "57", "58":
			return true
		}
		return false
	}
	return errors.Is(err, sql.ErrConnDone) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

func minCursor(a, b eventstore.Cursor) eventstore.Cursor {
	if b.Before(a) {
		return b
	}
	return a
}
