package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/platform/defaults"
	"github.com/engramhq/engram/platform/sqlstmt"
)

// Reactor reacts to events with effects of its own (commands that append
// events), outside any transaction of the consumer. A reaction repeated must
// be harmless: after a crash, or a lease that changed hands, a batch may be
// reacted to again.
type Reactor interface {
	Projector
	Selective
	// OrderKey names what a reaction must be ordered within: reactions
	// with the same key run one after the other, in commit order, and
	// reactions with different keys run at the same time.
	OrderKey(e eventstore.Event) string
}

// RunReactor is a Reactor that can react to a run of events of one order
// key at once, with fewer round trips than one event after the other.
// ApplyRun must leave things as reacting to each event in order would; when
// it fails, Reactions reacts to the run's events one at a time (each tried
// again, and parked, on its own), so reactions must be idempotent.
type RunReactor interface {
	Reactor
	ApplyRun(ctx context.Context, events []eventstore.Event) error
}

// ReactionsConfig configures Reactions.
type ReactionsConfig struct {
	// Concurrency bounds the reactions running at once (default 16).
	Concurrency int
	// MaxRetries is how many times a failing reaction is tried before its
	// event is parked (default DefaultMaxRetries).
	MaxRetries int
	// RetryInterval is the first pause before a reaction is tried again,
	// doubled each time (default 20 ms).
	RetryInterval time.Duration
	Logger        *slog.Logger
}

// Reactions is the Consumer that feeds a Reactor: each batch's reactions run
// concurrently (in order within one OrderKey, at most Concurrency at once),
// and the reactor's checkpoint moves past the batch once every reaction is
// done. It writes nothing else: the reactions are commands of their own.
type Reactions struct {
	db *sql.DB
	// move is the prepared statement that moves the checkpoint.
	move *sqlstmt.Cache
	r    Reactor
	run  RunReactor // r, when it reacts to runs; else nil
	cfg  ReactionsConfig
}

var _ Consumer = (*Reactions)(nil)

// NewReactions returns the consumer of r.
func NewReactions(db *sql.DB, r Reactor, cfg ReactionsConfig) (*Reactions, error) {
	if db == nil || r == nil {
		return nil, errors.New("projections: reactions need a database and a reactor")
	}
	defaults.Positive(&cfg.Concurrency, 16)
	defaults.Positive(&cfg.MaxRetries, DefaultMaxRetries)
	defaults.Positive(&cfg.RetryInterval, 20*time.Millisecond)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Logger = cfg.Logger.With("reactor", r.Name())
	run, _ := r.(RunReactor)
	return &Reactions{db: db, move: sqlstmt.New(db, 1), r: r, run: run, cfg: cfg}, nil
}

// Name returns the reactor's name, which is also its checkpoint's.
func (c *Reactions) Name() string { return c.r.Name() }

// Checkpoint returns the reactor's checkpoint.
func (c *Reactions) Checkpoint(ctx context.Context) (eventstore.Cursor, error) {
	return leastCheckpoint(ctx, c.db, []string{c.r.Name()})
}

// Handle reacts to the events the reactor wants, then moves the checkpoint
// past the batch (never back: another instance may have gone further).
func (c *Reactions) Handle(ctx context.Context, from eventstore.Cursor, events []eventstore.Event) (eventstore.Cursor, error) {
	var (
		order  []string
		byKey  = map[string][]eventstore.Event{}
		wanted int
	)
	for _, e := range events {
		if !c.r.Wants(e) {
			continue
		}
		k := c.r.OrderKey(e)
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], e)
		wanted++
	}
	if wanted > 0 {
		sem := make(chan struct{}, c.cfg.Concurrency)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var firstErr error
		for _, k := range order {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if c.run != nil && len(byKey[k]) > 1 {
					if err := c.run.ApplyRun(ctx, byKey[k]); err == nil {
						return
					}
					// Failed: one at a time, each tried again on its own.
				}
				for _, e := range byKey[k] {
					if err := c.react(ctx, e); err != nil {
						mu.Lock()
						firstErr = cmpErr(firstErr, err)
						mu.Unlock()
						return // the rest of this key waits for the batch to be tried again
					}
				}
			})
		}
		wg.Wait()
		if firstErr != nil {
			return from, firstErr
		}
	}
	end := events[len(events)-1].Cursor()
	// The checkpoint's commit does not wait for the disk: lost in a crash,
	// it only makes the batch's reactions run again, which repeats nothing.
	const move = `WITH async AS (SELECT set_config('synchronous_commit', 'off', true))
		INSERT INTO consumer_offsets (consumer_group, offset_acked, last_processed_transaction_id)
		SELECT $1::text, $2::bigint, $3::text::xid8 FROM async ON CONFLICT (consumer_group) DO UPDATE
		SET offset_acked = excluded.offset_acked, last_processed_transaction_id = excluded.last_processed_transaction_id
		WHERE (consumer_offsets.last_processed_transaction_id, coalesce(consumer_offsets.offset_acked, 0))
			< (excluded.last_processed_transaction_id, excluded.offset_acked)`
	if _, err := c.move.ExecContext(ctx, move, c.r.Name(), end.Position, strconv.FormatUint(end.TxID, 10)); err != nil {
		return from, fmt.Errorf("move the checkpoint of %s: %w", c.r.Name(), err)
	}
	return end, nil
}

// react runs one reaction, tries it again after a failure, and parks its
// event once it has failed MaxRetries times. It returns an error only when
// ctx ended or the event could not be parked.
func (c *Reactions) react(ctx context.Context, e eventstore.Event) error {
	wait := c.cfg.RetryInterval
	var err error
	for attempt := 1; attempt <= c.cfg.MaxRetries; attempt++ {
		if err = c.r.Apply(ctx, nil, e); err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if attempt < c.cfg.MaxRetries && !sleep(ctx, wait) {
			return ctx.Err()
		}
		wait *= 2
	}
	c.cfg.Logger.Error("reaction failed; parking its event", "position", e.GlobalPosition, "type", e.Type,
		"stream_id", e.StreamID, "err", err)
	if _, perr := c.db.ExecContext(ctx, `INSERT INTO parked_events (consumer_group, global_position, event_id, type, error)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (consumer_group, global_position) DO UPDATE SET error = excluded.error, parked_at = now()`,
		c.r.Name(), e.GlobalPosition, e.EventID, e.Type, err.Error()); perr != nil {
		return fmt.Errorf("park event %d for %s: %w", e.GlobalPosition, c.r.Name(), perr)
	}
	return nil
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}
