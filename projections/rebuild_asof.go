package projections

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/engramhq/engram/eventstore"
)

// AsOf is a point in the history. The zero AsOf is the head of the log.
type AsOf struct {
	// Position, when positive, keeps the events at or below this global
	// position.
	Position int64
	// Time, when set, keeps the events recorded at or before it.
	Time time.Time
}

// IsZero reports whether a is the head of the log.
func (a AsOf) IsZero() bool { return a.Position <= 0 && a.Time.IsZero() }

// includes reports whether e belongs to the history up to a.
func (a AsOf) includes(e eventstore.Event) bool {
	if a.Position > 0 && e.GlobalPosition > a.Position {
		return false
	}
	if !a.Time.IsZero() && e.RecordedAt.After(a.Time) {
		return false
	}
	return true
}

// String renders a for messages.
func (a AsOf) String() string {
	switch {
	case a.Position > 0 && !a.Time.IsZero():
		return fmt.Sprintf("position %d and %s", a.Position, a.Time.UTC().Format(time.RFC3339Nano))
	case a.Position > 0:
		return fmt.Sprintf("position %d", a.Position)
	case !a.Time.IsZero():
		return a.Time.UTC().Format(time.RFC3339Nano)
	}
	return "the head of the log"
}

// count finds how many events the rebuild will read and, as of a point in
// the history, the last transaction it must read.
func (b *build) count(ctx context.Context) error {
	db := b.r.db
	if b.o.AsOf.IsZero() {
		return db.QueryRowContext(ctx, `SELECT count(*) FROM events`).Scan(&b.total)
	}
	var pos sql.NullInt64
	var at sql.NullTime
	if b.o.AsOf.Position > 0 {
		pos = sql.NullInt64{Int64: b.o.AsOf.Position, Valid: true}
	}
	if !b.o.AsOf.Time.IsZero() {
		at = sql.NullTime{Time: b.o.AsOf.Time, Valid: true}
	}
	var maxTx sql.NullString
	err := db.QueryRowContext(ctx, `SELECT count(*), max(tx_id)::text FROM events
		WHERE ($1::bigint IS NULL OR global_position <= $1) AND ($2::timestamptz IS NULL OR recorded_at <= $2)`,
		pos, at).Scan(&b.total, &maxTx)
	if err != nil {
		return fmt.Errorf("count the events as of %s: %w", b.o.AsOf, err)
	}
	if maxTx.Valid {
		if b.maxTx, err = strconv.ParseUint(maxTx.String, 10, 64); err != nil {
			return fmt.Errorf("transaction id %q: %w", maxTx.String, err)
		}
	}
	return nil
}

// settled reports whether every transaction up to maxTx has ended.
func (b *build) settled(ctx context.Context) (bool, error) {
	var ok bool
	err := b.r.db.QueryRowContext(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot()) > $1::text::xid8`,
		strconv.FormatUint(b.maxTx, 10)).Scan(&ok)
	return ok, err
}
