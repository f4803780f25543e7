package redis

import (
	"context"
	"fmt"
	"strconv"

	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/projections"
)

// projector is the projector of one Redis read model.
type projector struct{ m *model }

var (
	_ projections.BatchProjector = projector{}
	_ projections.Selective      = projector{}
	_ projections.Describer      = projector{}
)

// Name returns the projector's name (its checkpoint's).
func (p projector) Name() string { return p.m.group }

// Description says what the read model holds.
func (p projector) Description() string { return p.m.description }

// Wants reports whether e may change the read model: its consumer group
// acknowledges the other events without a round trip.
func (p projector) Wants(e eventstore.Event) bool { return p.m.wants(e) }

// Apply hands e to the model's writer, if e changes the model. It first
// records e, in the batch's transaction, as the last event the projector
// sent to Redis, which gives the apply script the previous one's cursor
// (for gap detection). Redis itself is never called here: the writer sends
// the script after, and outside, the transaction (see writer). A Redis
// failure never fails the consumer: the model misses the event, and the
// next event finds the gap. Only an event the projector cannot decode is an
// error (and, as for the SQL projectors, parked).
func (p projector) Apply(ctx context.Context, tx projections.Execer, e eventstore.Event) error {
	return p.ApplyBatch(ctx, tx, []eventstore.Event{e})
}

// ApplyBatch is Apply for a batch: the cursor of the last event sent to
// Redis is read and moved once, and each event's predecessor is the event
// before it in the batch.
func (p projector) ApplyBatch(ctx context.Context, tx projections.Execer, events []eventstore.Event) error {
	m := p.m
	type planned struct {
		e   eventstore.Event
		ops ops
	}
	var writes []planned
	for _, e := range events {
		if !m.wants(e) {
			continue
		}
		ops, err := m.opsOf(e)
		if err != nil {
			return fmt.Errorf("event %d (%s): %w", e.GlobalPosition, e.Type, err)
		}
		if ops.changes() {
			writes = append(writes, planned{e, ops})
		}
	}
	if len(writes) == 0 {
		return nil
	}
	prev, err := advanceCursor(ctx, tx, m.group, writes[len(writes)-1].e)
	if err != nil {
		return err
	}
	if !m.rm.up() {
		return nil // Redis is out: the model will find the gap when it is back.
	}
	log, err := m.rm.log(ctx)
	if err != nil {
		return err
	}
	for _, w := range writes {
		m.writer.add(write{args: m.applyArgs("live", "", log, w.e, prev, w.ops), position: w.e.GlobalPosition})
		prev = w.e.Cursor()
	}
	return nil
}

// advanceCursor records e as the last event the group sent to Redis, in
// the subscriber's transaction, and returns the one recorded before.
func advanceCursor(ctx context.Context, tx projections.Execer, group string, e eventstore.Event) (eventstore.Cursor, error) {
	var prevTx string
	var prev eventstore.Cursor
	err := tx.QueryRowContext(ctx, `WITH old AS (
			SELECT tx_id, global_position FROM redis_read_model_cursors WHERE consumer_group = $1 FOR UPDATE
		), saved AS (
			INSERT INTO redis_read_model_cursors (consumer_group, tx_id, global_position) VALUES ($1, $3::text::xid8, $2)
			ON CONFLICT (consumer_group) DO UPDATE SET tx_id = excluded.tx_id, global_position = excluded.global_position
		)
		SELECT coalesce((SELECT tx_id::text FROM old), '0'), coalesce((SELECT global_position FROM old), 0)`,
		group, e.GlobalPosition, strconv.FormatUint(e.TxID, 10)).Scan(&prevTx, &prev.Position)
	if err != nil {
		return eventstore.Cursor{}, fmt.Errorf("redis cursor of %s: %w", group, err)
	}
	if prev.TxID, err = strconv.ParseUint(prevTx, 10, 64); err != nil {
		return eventstore.Cursor{}, fmt.Errorf("redis cursor of %s: %w", group, err)
	}
	return prev, nil
}
