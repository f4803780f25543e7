package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/lib/pq"
)

// swap applies the last events and replaces the live tables, in one
// transaction that first locks the projector's checkpoint row: the live
// consumer group waits for it, then goes on from the new checkpoint. A swap
// that cannot take its locks in time is tried again.
func (b *build) swap(ctx context.Context) error {
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		err = b.trySwap(ctx)
		var pqErr *pq.Error
		if err == nil || !errors.As(err, &pqErr) || pqErr.Code != "55P03" { // lock_not_available
			return err
		}
		b.r.logger.Warn("rebuild: the swap waited too long for its locks; trying again", "projector", b.p.Name(), "attempt", attempt)
	}
	return err
}

func (b *build) trySwap(ctx context.Context) (err error) {
	name := b.p.Name()
	tx, err := b.r.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = '15s'`); err != nil {
		return err
	}
	var acked sql.NullInt64
	var ackedTx sql.NullString
	err = tx.QueryRowContext(ctx, `SELECT offset_acked, last_processed_transaction_id::text FROM consumer_offsets
		WHERE consumer_group = $1 FOR UPDATE`, name).Scan(&acked, &ackedTx)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("lock the checkpoint: %w", err)
	}

	// The live consumer is paused: apply what it may have applied since.
	cursor := b.result.Cursor
	events := b.result.Events
	w := &worker{p: b.p, tx: tx, exec: newPreparedExecer(tx)}
	if _, err := tx.ExecContext(ctx, `SET LOCAL search_path TO `+pq.QuoteIdentifier(b.schema)); err != nil {
		return err
	}
	for {
		page, err := b.r.store.ReadCommitted(ctx, cursor, b.o.PageSize)
		if err != nil {
			return fmt.Errorf("read the log: %w", err)
		}
		if len(page) == 0 {
			break
		}
		if err := w.applyInSwap(ctx, page); err != nil {
			return err
		}
		cursor = page[len(page)-1].Cursor()
		events += int64(len(page))
	}
	if _, err := tx.ExecContext(ctx, `SET LOCAL search_path TO DEFAULT`); err != nil {
		return err
	}

	names := make([]string, len(b.tables))
	for i, t := range b.tables {
		names[i] = t.qualified()
	}
	if _, err := tx.ExecContext(ctx, `LOCK TABLE `+strings.Join(names, ", ")+` IN ACCESS EXCLUSIVE MODE`); err != nil {
		return fmt.Errorf("lock the live tables: %w", err)
	}
	// Indexes and constraints move with their tables, names unchanged.
	shadow := pq.QuoteIdentifier(b.schema)
	replaced := pq.QuoteIdentifier(b.schema + "_replaced")
	if _, err := tx.ExecContext(ctx, `CREATE SCHEMA `+replaced); err != nil {
		return err
	}
	for _, t := range b.tables {
		rebuilt := liveTable{schema: b.schema, name: t.name}
		for _, stmt := range []string{
			`ALTER TABLE ` + t.qualified() + ` SET SCHEMA ` + replaced,
			`ALTER TABLE ` + rebuilt.qualified() + ` SET SCHEMA ` + pq.QuoteIdentifier(t.schema),
		} {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("swap %s: %w", t.qualified(), err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO consumer_offsets (consumer_group, offset_acked, last_processed_transaction_id)
		VALUES ($1, $2, $3::text::xid8) ON CONFLICT (consumer_group) DO UPDATE
		SET offset_acked = excluded.offset_acked, last_processed_transaction_id = excluded.last_processed_transaction_id`,
		name, cursor.Position, strconv.FormatUint(cursor.TxID, 10)); err != nil {
		return fmt.Errorf("set the checkpoint: %w", err)
	}
	parked := append(append([]ParkedEvent(nil), b.result.Parked...), w.parkedEvents...)
	if _, err := tx.ExecContext(ctx, `DELETE FROM parked_events WHERE consumer_group = $1`, name); err != nil {
		return fmt.Errorf("clear the parked events: %w", err)
	}
	for _, p := range parked {
		if _, err := tx.ExecContext(ctx, `INSERT INTO parked_events (consumer_group, global_position, event_id, type, error)
			VALUES ($1, $2, $3, $4, $5)`, name, p.Position, p.EventID, p.Type, p.Err); err != nil {
			return fmt.Errorf("park event %d: %w", p.Position, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DROP SCHEMA `+replaced+` CASCADE; DROP SCHEMA `+shadow); err != nil {
		return fmt.Errorf("drop the replaced tables: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	from := "nothing"
	if acked.Valid {
		from = strconv.FormatInt(acked.Int64, 10)
	}
	b.r.logger.Debug("rebuild swapped in", "projector", name, "checkpoint_before", from, "checkpoint", cursor.Position)
	b.result.Cursor = cursor
	b.result.Events = events
	b.result.Parked = parked
	b.result.Swapped = true
	b.result.Schema = b.tables[0].schema
	b.report()
	return nil
}
