package projections

import (
	"context"
	"fmt"

	"github.com/lib/pq"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/memory"
	"github.com/engramhq/engram/domain/task"
	"github.com/engramhq/engram/eventstore"
)

// creatingProjector is a stream projector whose rows are each created by one
// event (a task submitted, a memory item stored) and then changed by later
// events of their stream. It applies batches: the rows the batch creates are
// inserted first, by one statement, and the other events are then applied
// one by one, in order.
//
// That leaves the read model as applying each event in order would: rows of
// different tasks (items) are independent, no event of a row comes before
// the one that creates it, and each later event is guarded by its stream
// version as before. Under load a batch holds hundreds of new tasks and
// items: one statement, where they took one round trip each.
type creatingProjector struct {
	streamProjector
	// insert inserts the rows of the events that create one, in one
	// statement, and returns the other events, in order.
	insert func(ctx context.Context, tx Execer, events []decoded) ([]decoded, error)
}

// decoded is an event of a projector's streams with its domain event and
// the id of its stream's aggregate.
type decoded struct {
	e  eventstore.Event
	id string
	ev domain.Event
}

var _ BatchProjector = creatingProjector{}

// ApplyBatch implements BatchProjector.
func (p creatingProjector) ApplyBatch(ctx context.Context, tx Execer, events []eventstore.Event) error {
	ds := make([]decoded, 0, len(events))
	for _, e := range events {
		if e.StreamType != p.streamType {
			continue
		}
		d, err := p.decoded(e)
		if err != nil {
			return fmt.Errorf("event %d (%s): %w", e.GlobalPosition, e.Type, err)
		}
		ds = append(ds, d)
	}
	rest, err := p.insert(ctx, tx, ds)
	if err != nil {
		return err
	}
	for _, d := range rest {
		if err := p.apply(ctx, tx, d.e, d.id, d.ev); err != nil {
			return fmt.Errorf("event %d (%s): %w", d.e.GlobalPosition, d.e.Type, err)
		}
	}
	return nil
}

// split returns the events whose domain event is an E, and the others, each
// in their order.
func split[E domain.Event](events []decoded) (of, rest []decoded) {
	for _, d := range events {
		if _, ok := d.ev.(E); ok {
			of = append(of, d)
		} else {
			rest = append(rest, d)
		}
	}
	return of, rest
}

// insertTasks inserts the tasks submitted in events, as applyTask does one
// at a time.
func insertTasks(ctx context.Context, tx Execer, events []decoded) ([]decoded, error) {
	var ids, ws, conv, msg, by, expert, input, at []string
	var priority, version []int64
	created, rest := split[task.Submitted](events)
	for _, d := range created {
		ev := d.ev.(task.Submitted)
		ids, ws, conv, msg = append(ids, d.id), append(ws, ev.WorkspaceID), append(conv, ev.ConversationID), append(msg, ev.MessageID)
		by, expert, input = append(by, ev.RequestedBy), append(expert, ev.Expert), append(input, ev.Input)
		priority, at, version = append(priority, int64(ev.Priority)), append(at, timestamp(d.e.RecordedAt)), append(version, int64(d.e.StreamVersion))
	}
	if len(ids) == 0 {
		return rest, nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO tasks (id, workspace_id, conversation_id, message_id, requested_by, expert,
			input, priority, status, submitted_at, updated_at, version)
		SELECT id, ws, conv, msg, by, expert, input, priority, $9, at, at, version
		FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::int[],
			$10::timestamptz[], $11::int[]) AS t(id, ws, conv, msg, by, expert, input, priority, at, version)
		ON CONFLICT (id) DO NOTHING`,
		pq.Array(ids), pq.Array(ws), pq.Array(conv), pq.Array(msg), pq.Array(by), pq.Array(expert), pq.Array(input),
		pq.Array(priority), task.StatusSubmitted, pq.Array(at), pq.Array(version))
	if err != nil {
		return nil, fmt.Errorf("insert %d tasks: %w", len(ids), err)
	}
	return rest, nil
}

// insertMemory inserts the memory items stored in events, as applyMemory
// does one at a time.
func insertMemory(ctx context.Context, tx Execer, events []decoded) ([]decoded, error) {
	var ids, ws, typ, content, meta, expires, source, at []string
	var version []int64
	created, rest := split[memory.ItemStored](events)
	for _, d := range created {
		ev := d.ev.(memory.ItemStored)
		exp := ""
		if ev.ExpiresAt != nil {
			exp = timestamp(*ev.ExpiresAt)
		}
		ids, ws, typ, content = append(ids, ev.ItemID), append(ws, d.id), append(typ, ev.Type), append(content, ev.Content)
		meta, expires, source = append(meta, jsonOrEmpty(ev.Metadata)), append(expires, exp), append(source, ev.SourceMessageID)
		at, version = append(at, timestamp(d.e.RecordedAt)), append(version, int64(d.e.StreamVersion))
	}
	if len(ids) == 0 {
		return rest, nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO memory_items (id, workspace_id, type, content, metadata, expires_at,
			source_message_id, created_at, updated_at, version)
		SELECT id, ws, typ, content, meta, nullif(expires, '')::timestamptz, nullif(source, '')::uuid, at, at, version
		FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::jsonb[], $6::text[], $7::text[],
			$8::timestamptz[], $9::int[]) AS m(id, ws, typ, content, meta, expires, source, at, version)
		ON CONFLICT (id) DO NOTHING`,
		pq.Array(ids), pq.Array(ws), pq.Array(typ), pq.Array(content), pq.Array(meta), pq.Array(expires), pq.Array(source),
		pq.Array(at), pq.Array(version))
	if err != nil {
		return nil, fmt.Errorf("insert %d memory items: %w", len(ids), err)
	}
	return rest, nil
}
