package postgres_test

import (
	"context"
	"testing"

	"github.com/engramhq/engram/cognition/memorytest"
	"github.com/engramhq/engram/cognition/postgres"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/projections"
	"github.com/engramhq/engram/test/pgtest"
)

// The SQL memory is fed by the memory projector, in a transaction as the
// consumer group runs it.
func TestMemoryContract(t *testing.T) {
	db := pgtest.New(t) // one database: every subtest uses workspaces of its own
	var projector projections.Projector
	for _, p := range projections.Cognition() {
		if p.Name() == projections.MemoryProjector {
			projector = p
		}
	}
	memorytest.Run(t, func(t *testing.T) memorytest.Subject {
		apply := func(ctx context.Context, e eventstore.Event) error {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			if err := projector.Apply(ctx, tx, e); err != nil {
				_ = tx.Rollback()
				return err
			}
			return tx.Commit()
		}
		return memorytest.Subject{Memory: postgres.NewMemory(db), Apply: apply}
	})
}
