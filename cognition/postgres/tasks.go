package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Tasks is the tasks read model as workers see it: where to find work.
// What it says may lag behind the log; workers claim a task through its
// stream, which has the last word.
type Tasks struct {
	db *sqlx.DB
}

// NewTasks returns the tasks read model in db.
func NewTasks(db *sqlx.DB) *Tasks { return &Tasks{db: db} }

// Claimable returns up to limit tasks for the given experts that a worker
// may claim at now — submitted, or running past their attempt's deadline —
// and that were submitted after since, most urgent first, then oldest first.
func (t *Tasks) Claimable(ctx context.Context, experts []string, now, since time.Time, limit int) ([]string, error) {
	var ids []string
	err := t.db.SelectContext(ctx, &ids, `SELECT id FROM tasks
		WHERE status IN ('submitted', 'running') AND (status = 'submitted' OR deadline <= $1) AND submitted_at > $2
		  AND expert = ANY($3)
		ORDER BY priority DESC, submitted_at LIMIT $4`, now, since, pq.Array(experts), limit)
	if err != nil {
		return nil, fmt.Errorf("claimable tasks: %w", err)
	}
	return ids, nil
}

// Stale returns up to limit tasks submitted at or before since that nobody
// runs at now: they waited too long and are to be failed, not run.
func (t *Tasks) Stale(ctx context.Context, now, since time.Time, limit int) ([]string, error) {
	var ids []string
	err := t.db.SelectContext(ctx, &ids, `SELECT id FROM tasks
		WHERE status IN ('submitted', 'running') AND (status = 'submitted' OR deadline <= $1) AND submitted_at <= $2
		ORDER BY submitted_at LIMIT $3`, now, since, limit)
	if err != nil {
		return nil, fmt.Errorf("stale tasks: %w", err)
	}
	return ids, nil
}
