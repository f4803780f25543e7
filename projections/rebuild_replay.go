package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/lib/pq"

	"github.com/engramhq/engram/eventstore"
)

// replay applies the log to the build's tables up to the head (or the as-of
// point), reading the next page while the workers apply the current one.
func (b *build) replay(ctx context.Context) error {
	if !b.o.AsOf.IsZero() && b.maxTx == 0 {
		return nil // Nothing happened before that point.
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := make(chan []eventstore.Event, 1)
	readErr := make(chan error, 1)
	go func() {
		defer close(pages)
		readErr <- b.read(ctx, pages)
	}()

	ws := newWorkers(b.r.db, b.p, b.schema, b.o.Workers)
	defer ws.close()
	for page := range pages {
		if err := ws.apply(ctx, page, b.o.AsOf); err != nil {
			cancel()
			for range pages { // let the reader stop
			}
			return err
		}
		b.result.Events += int64(len(page))
		b.result.Cursor = page[len(page)-1].Cursor()
		b.report()
	}
	if err := <-readErr; err != nil {
		return err
	}
	b.result.Parked = append(b.result.Parked, ws.parked()...)
	return nil
}

// read sends pages of events in commit order until the head of the log (or,
// as of a point, until every transaction up to the point's has been read).
// The last page may be shorter; every page it sends is non-empty.
func (b *build) read(ctx context.Context, pages chan<- []eventstore.Event) error {
	cursor := eventstore.Cursor{}
	asOf := !b.o.AsOf.IsZero()
	for {
		page, err := b.r.store.ReadCommitted(ctx, cursor, b.o.PageSize)
		if err != nil {
			return fmt.Errorf("read the log after position %d: %w", cursor.Position, err)
		}
		if asOf {
			for i, e := range page {
				if e.TxID > b.maxTx {
					page = page[:i]
					break
				}
			}
		}
		if len(page) > 0 {
			cursor = page[len(page)-1].Cursor()
			select {
			case pages <- page:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if len(page) == b.o.PageSize {
			continue
		}
		if !asOf || cursor.TxID >= b.maxTx {
			return nil
		}
		// As of a point, a transaction older than the point's may still
		// be in flight: wait for it rather than leave its events out.
		done, err := b.settled(ctx)
		if err != nil || done {
			return err
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// savepointBatch is how many events a rebuild applies per transaction when
// each needs a savepoint of its own: PostgreSQL keeps at most 64
// subtransactions per backend in shared memory.
const savepointBatch = 32

// workers apply pages of events to the build's tables on several
// connections, each event on the worker its stream hashes to.
type workers struct {
	db     *sql.DB
	p      Projector
	schema string
	ws     []*worker
}

func newWorkers(db *sql.DB, p Projector, schema string, n int) *workers {
	ws := &workers{db: db, p: p, schema: schema, ws: make([]*worker, n)}
	for i := range ws.ws {
		ws.ws[i] = &worker{p: p}
	}
	return ws
}

// apply applies page (the events as of asOf), one transaction per worker,
// committed before it returns.
func (ws *workers) apply(ctx context.Context, page []eventstore.Event, asOf AsOf) error {
	parts := make([][]eventstore.Event, len(ws.ws))
	if len(ws.ws) == 1 {
		parts[0] = page
	} else {
		for _, e := range page {
			h := fnv.New32a()
			h.Write([]byte(e.StreamID))
			i := int(h.Sum32() % uint32(len(ws.ws)))
			parts[i] = append(parts[i], e)
		}
	}
	errs := make([]error, len(ws.ws))
	var wg sync.WaitGroup
	for i, w := range ws.ws {
		if len(parts[i]) == 0 {
			continue
		}
		wg.Go(func() { errs[i] = w.page(ctx, ws.db, ws.schema, parts[i], asOf) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (ws *workers) parked() []ParkedEvent {
	var out []ParkedEvent
	for _, w := range ws.ws {
		out = append(out, w.parkedEvents...)
	}
	return out
}

func (ws *workers) close() {
	for _, w := range ws.ws {
		if w.conn != nil {
			_ = w.conn.Close()
		}
	}
}

// worker applies events through one connection.
type worker struct {
	p            Projector
	conn         *sql.Conn
	tx           *sql.Tx
	exec         *preparedExecer
	parkedEvents []ParkedEvent
}

// page applies events in a transaction of its own on the worker's
// connection, with the build's schema as the search path.
func (w *worker) page(ctx context.Context, db *sql.DB, schema string, events []eventstore.Event, asOf AsOf) (err error) {
	if w.conn == nil {
		if w.conn, err = db.Conn(ctx); err != nil {
			return err
		}
	}
	begin := func() error {
		tx, err := w.conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		// Losing the last commits of a rebuild to a crash loses nothing:
		// an interrupted rebuild starts again from scratch.
		if _, err := tx.ExecContext(ctx, `SET LOCAL search_path TO `+pq.QuoteIdentifier(schema)+`; SET LOCAL synchronous_commit TO off`); err != nil {
			_ = tx.Rollback()
			return err
		}
		w.tx, w.exec = tx, newPreparedExecer(tx)
		return nil
	}
	if err := begin(); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = w.tx.Rollback()
		}
		w.tx, w.exec = nil, nil
	}()
	if err := w.applyAll(ctx, events, asOf); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Some event failed: the transaction is lost. Apply the page again,
		// each event in a savepoint, parking those that fail, in short
		// transactions: past 64 subtransactions a transaction slows every
		// snapshot in the cluster ("suboverflow").
		_ = w.tx.Rollback()
		for len(events) > 0 {
			n := min(len(events), savepointBatch)
			if err := begin(); err != nil {
				return err
			}
			if err := w.applyEach(ctx, events[:n], asOf); err != nil {
				return err
			}
			if err := w.tx.Commit(); err != nil {
				return err
			}
			events = events[n:]
		}
		return nil
	}
	return w.tx.Commit()
}

// applyAll applies events in the worker's transaction, stopping at the first
// failure; a BatchProjector gets them all at once.
func (w *worker) applyAll(ctx context.Context, events []eventstore.Event, asOf AsOf) error {
	if bp, ok := w.p.(BatchProjector); ok {
		if !asOf.IsZero() {
			kept := make([]eventstore.Event, 0, len(events))
			for _, e := range events {
				if asOf.includes(e) {
					kept = append(kept, e)
				}
			}
			events = kept
		}
		return bp.ApplyBatch(ctx, w.exec, events)
	}
	for _, e := range events {
		if !asOf.includes(e) {
			continue
		}
		if err := w.p.Apply(ctx, w.exec, e); err != nil {
			return fmt.Errorf("event %d (%s): %w", e.GlobalPosition, e.Type, err)
		}
	}
	return nil
}

// applyInSwap applies the swap's last events in one savepoint; should one
// fail, it applies them again one savepoint each, parking those that fail.
// The swap transaction stays clear of many subtransactions unless an event
// fails.
func (w *worker) applyInSwap(ctx context.Context, events []eventstore.Event) error {
	err := inSavepoint(ctx, w.tx, func() error { return w.applyAll(ctx, events, AsOf{}) })
	if err == nil || ctx.Err() != nil {
		return err
	}
	return w.applyEach(ctx, events, AsOf{})
}

// applyEach applies events one savepoint each, parking those that fail.
func (w *worker) applyEach(ctx context.Context, events []eventstore.Event, asOf AsOf) error {
	for _, e := range events {
		if !asOf.includes(e) {
			continue
		}
		err := inSavepoint(ctx, w.tx, func() error { return w.p.Apply(ctx, w.exec, e) })
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w.parkedEvents = append(w.parkedEvents, ParkedEvent{Position: e.GlobalPosition, EventID: e.EventID, Type: e.Type, Err: err.Error()})
	}
	return nil
}

// preparedExecer runs a projector's statements as prepared statements of
// one transaction: a rebuild sends the same few statements millions of
// times, and a prepared statement costs one round trip instead of two.
type preparedExecer struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

var _ Execer = (*preparedExecer)(nil)

func newPreparedExecer(tx *sql.Tx) *preparedExecer {
	return &preparedExecer{tx: tx, stmts: map[string]*sql.Stmt{}}
}

func (p *preparedExecer) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := p.stmts[query]; ok {
		return s, nil
	}
	s, err := p.tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	p.stmts[query] = s
	return s, nil
}

// ExecContext implements Execer.
func (p *preparedExecer) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	s, err := p.stmt(ctx, query) //nolint:sqlclosecheck // a transaction's statements close with it
	if err != nil {
		return nil, err
	}
	return s.ExecContext(ctx, args...)
}

// QueryRowContext implements Execer.
func (p *preparedExecer) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	s, err := p.stmt(ctx, query) //nolint:sqlclosecheck // a transaction's statements close with it
	if err != nil {
		return p.tx.QueryRowContext(ctx, query, args...) // reports the same error
	}
	return s.QueryRowContext(ctx, args...)
}
