package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/engramhq/engram/eventstore"
)

// Execer is the part of a transaction that projectors write through.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Projector applies events to a read model.
type Projector interface {
	// Name is the projector's stable identity and consumer group.
	Name() string
	// Apply applies one event. It must be idempotent and must not call the
	// network: it runs inside the consumer group's transaction.
	Apply(ctx context.Context, tx Execer, e eventstore.Event) error
}

// Selective is implemented by projectors that apply only some events. The
// others are acknowledged without a savepoint or any other round trip to the
// database: most projectors care about one or two stream types, and every
// group sees every event.
type Selective interface {
	// Wants reports whether Apply would change anything for e.
	Wants(e eventstore.Event) bool
}

// savepoints runs each event of a consumer group's batch in a savepoint,
// so that a failed statement does not abort the surrounding transaction:
// the event's writes are rolled back and the transaction can go on (to
// retry, to park, to acknowledge).
//
// The savepoint of an event that succeeded is released by the next event's
// round trip ("RELEASE …; SAVEPOINT …") or by the commit, which spares a
// round trip per event. Handlers run one message at a time per consumer
// group; the mutex only makes that assumption safe.
//
// With async, the first round trip of a transaction also turns off waiting
// for its commit to reach the disk (synchronous_commit): a consumer group's
// transaction holds only what the log can rebuild, its read-model rows
// together with its checkpoint, so a crash can lose both at once and the
// events are applied again. It ends sooner, and so holds back less what the
// gap-safe readers may read.
type savepoints struct {
	async bool

	mu   sync.Mutex
	open *sql.Tx // the transaction holding an unreleased savepoint
	seen *sql.Tx // the last transaction seen
}

func (s *savepoints) run(ctx context.Context, tx *sql.Tx, fn func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	begin := `SAVEPOINT projector_apply`
	if s.open == tx {
		begin = `RELEASE SAVEPOINT projector_apply; SAVEPOINT projector_apply`
	}
	if s.async && s.seen != tx {
		begin = `SET LOCAL synchronous_commit = off; ` + begin
	}
	s.open, s.seen = nil, tx
	if _, err := tx.ExecContext(ctx, begin); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	if err := fn(); err != nil {
		if _, rbErr := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT projector_apply`); rbErr != nil {
			return errors.Join(err, fmt.Errorf("rollback to savepoint: %w", rbErr))
		}
		s.open = tx // rolled back, still there
		return err
	}
	s.open = tx
	return nil
}

func park(ctx context.Context, tx *sql.Tx, group string, e eventstore.Event, uuid string, cause error) error {
	if e.EventID == "" {
		e.EventID = uuid
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO parked_events (consumer_group, global_position, event_id, type, error)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (consumer_group, global_position) DO UPDATE SET error = excluded.error, parked_at = now()`,
		group, e.GlobalPosition, e.EventID, e.Type, cause.Error())
	if err != nil {
		return fmt.Errorf("park event %d for %s: %w", e.GlobalPosition, group, err)
	}
	return nil
}

// inSavepoint runs fn in a savepoint of its own, released at once: a failed
// statement rolls back fn's writes without aborting tx.
func inSavepoint(ctx context.Context, tx *sql.Tx, fn func() error) error {
	var s savepoints
	if err := s.run(ctx, tx, fn); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `RELEASE SAVEPOINT projector_apply`); err != nil {
		return fmt.Errorf("release savepoint: %w", err)
	}
	return nil
}
