package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/lib/pq"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/memory"
	"github.com/engramhq/engram/domain/task"
	"github.com/engramhq/engram/eventstore"
)

// creatingProjector is a stream projector whose rows are each created by one
// event (a task submitted, a memory item stored) and then changed by later
// events of their stream. It applies batches with write: the tasks in one
// statement (writeTasks); the memory items created in one statement, then
// the other events one by one, in order (writeMemory).
//
// That leaves the read model as applying each event in order would: rows of
// different tasks (items) are independent, no event of a row comes before
// the one that creates it, and each later event is guarded by its stream
// version as before. Under load a batch holds hundreds of new tasks and
// items and their later events: a statement or two, where they took one
// round trip each — inside the batch's transaction, which holds back the
// gap-safe readers of other instances until it ends.
type creatingProjector struct {
	streamProjector
	// write applies the batch's events of the projector's streams, in order.
	write func(ctx context.Context, tx Execer, events []decoded) error
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
	if len(ds) == 0 {
		return nil
	}
	return p.write(ctx, tx, ds)
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

// writeTasks applies a batch of task events in one statement. The tasks
// submitted in the batch are inserted as the batch's later events of theirs
// leave them (insertTasksSQL); the other tasks are moved (moveTasks). The
// two parts touch different rows, so they go together as a data-modifying
// WITH and its main statement, one round trip where a batch with new and
// older tasks took two (under load, nearly every batch).
func writeTasks(ctx context.Context, tx Execer, events []decoded) error {
	var ids, ws, conv, msg, by, expert, input, at []string
	var priority, version []int64
	created, rest := split[task.Submitted](events)
	isNew := make(map[string]bool, len(created))
	for _, d := range created {
		ev := d.ev.(task.Submitted)
		isNew[d.id] = true
		ids, ws, conv, msg = append(ids, d.id), append(ws, ev.WorkspaceID), append(conv, ev.ConversationID), append(msg, ev.MessageID)
		by, expert, input = append(by, ev.RequestedBy), append(expert, ev.Expert), append(input, ev.Input)
		priority, at, version = append(priority, int64(ev.Priority)), append(at, timestamp(d.e.RecordedAt)), append(version, int64(d.e.StreamVersion))
	}
	var ofNew, ofOld []decoded
	for _, d := range rest {
		if isNew[d.id] {
			ofNew = append(ofNew, d)
		} else {
			ofOld = append(ofOld, d)
		}
	}
	moved, err := foldTasks(ofOld)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return moved.exec(ctx, tx)
	}
	later, err := foldTasks(ofNew)
	if err != nil {
		return err
	}
	query := insertTasksSQL
	args := []any{pq.Array(ids), pq.Array(ws), pq.Array(conv), pq.Array(msg), pq.Array(by), pq.Array(expert), pq.Array(input),
		pq.Array(priority), pq.Array(at), pq.Array(version), pq.Array(later.ids), pq.Array(later.versions), pq.Array(later.changes)}
	if len(moved.ids) > 0 {
		query = insertAndMoveTasksSQL
		args = append(args, pq.Array(moved.ids), pq.Array(moved.versions), pq.Array(moved.changes))
	}
	if _, err := tx.ExecContext(ctx, query, args...); err != nil {
		return fmt.Errorf("insert %d tasks and move %d: %w", len(ids), len(moved.ids), err)
	}
	return nil
}

// writeMemory inserts the memory items stored in events in one statement,
// then applies the other events one by one, in order.
func writeMemory(ctx context.Context, tx Execer, events []decoded) error {
	rest, err := insertMemory(ctx, tx, events)
	if err != nil {
		return err
	}
	for _, d := range rest {
		if err := applyMemory(ctx, tx, d.e, d.id, d.ev); err != nil {
			return fmt.Errorf("event %d (%s): %w", d.e.GlobalPosition, d.e.Type, err)
		}
	}
	return nil
}

// insertMemory inserts the memory items stored in events, as applyMemory
// does one at a time, and returns the other events, in order.
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

// taskColumns are the columns of a task's row that its events after the
// submission set (besides its version and times), with their SQL types and
// their values in the row of a task just submitted (as applyTask inserts
// it: the table's defaults).
var taskColumns = []struct{ name, sqlType, submitted string }{
	{"status", "text", pq.QuoteLiteral(task.StatusSubmitted)}, {"attempts", "integer", "0"}, {"worker", "text", "NULL"},
	{"deadline", "timestamptz", "NULL"}, {"progress", "integer", "0"}, {"note", "text", "''"}, {"output", "text", "NULL"},
	{"reply_message_id", "uuid", "NULL"}, {"reason", "text", "NULL"}, {"finished_at", "timestamptz", "NULL"},
}

// insertTasksSQL inserts the tasks submitted in a batch ($1–$10), each as
// the batch's later events of its own leave it ($11–$13, as moveTasksSQL
// takes them; a task without any has no such row). A task whose row exists
// already (a batch applied again) is set to that row when it is behind:
// the row is the whole of the task's events up to the batch's last, as
// applying them one by one leaves it, started_at only once.
var insertTasksSQL = func() string {
	var b strings.Builder
	b.WriteString(`INSERT INTO tasks (id, workspace_id, conversation_id, message_id, requested_by, expert, input, priority,
			submitted_at, version, updated_at, started_at`)
	for _, col := range taskColumns {
		b.WriteString(", " + col.name)
	}
	b.WriteString(`)
		SELECT t.id, t.ws, t.conv, t.msg, t.by, t.expert, t.input, t.priority, t.at, coalesce(u.version, t.version),
			coalesce((u.c->>'updated_at')::timestamptz, t.at), (u.c->>'started_at')::timestamptz`)
	for _, col := range taskColumns {
		fmt.Fprintf(&b, ",\n\t\t\tCASE WHEN u.c ? '%[1]s' THEN (u.c->>'%[1]s')::%[2]s ELSE %[3]s END", col.name, col.sqlType, col.submitted)
	}
	b.WriteString(`
		FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::int[],
			$9::timestamptz[], $10::int[]) AS t(id, ws, conv, msg, by, expert, input, priority, at, version)
		LEFT JOIN unnest($11::uuid[], $12::int[], $13::jsonb[]) AS u(id, version, c) ON u.id = t.id
		ON CONFLICT (id) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at,
			started_at = coalesce(tasks.started_at, excluded.started_at)`)
	for _, col := range taskColumns {
		fmt.Fprintf(&b, ", %[1]s = excluded.%[1]s", col.name)
	}
	b.WriteString(`
		WHERE tasks.version < excluded.version`)
	return b.String()
}()

// insertAndMoveTasksSQL inserts a batch's new tasks and moves the others
// ($14–$16) in one statement.
var insertAndMoveTasksSQL = "WITH created AS (\n" + insertTasksSQL + "\n)\n" + moveTasksSQLFrom(14)

// moveTasksSQL moves every task of a batch to the row its events leave: u.c
// holds the columns they set (a column not in it stays as it is), and the
// row moves only when it is behind the last of them.
var moveTasksSQL = moveTasksSQLFrom(1)

// moveTasksSQLFrom is moveTasksSQL with its parameters numbered from first.
func moveTasksSQLFrom(first int) string {
	var b strings.Builder
	b.WriteString(`UPDATE tasks AS t SET version = u.version, updated_at = (u.c->>'updated_at')::timestamptz,
		started_at = coalesce(t.started_at, (u.c->>'started_at')::timestamptz)`)
	for _, col := range taskColumns {
		fmt.Fprintf(&b, ",\n\t\t%[1]s = CASE WHEN u.c ? '%[1]s' THEN (u.c->>'%[1]s')::%[2]s ELSE t.%[1]s END", col.name, col.sqlType)
	}
	b.WriteString(`
		FROM unnest(`)
	fmt.Fprintf(&b, "$%d::uuid[], $%d::int[], $%d::jsonb[]", first, first+1, first+2)
	b.WriteString(`) AS u(id, version, c)
		WHERE t.id = u.id AND t.version < u.version`)
	return b.String()
}

// moveTasks applies the events after their submission of the batch's tasks
// in one statement. Each task's events are folded in order into the columns
// they set, the later event's value winning, and its row is moved only when
// it is behind the last of them. That is what applying them one by one,
// each guarded by its version, leaves: every event sets its columns to
// values of its own (started_at only once), so an event the row had
// applied already, set again before the later ones, changes nothing they
// do not set again.
func moveTasks(ctx context.Context, tx Execer, events []decoded) error {
	moves, err := foldTasks(events)
	if err != nil {
		return err
	}
	return moves.exec(ctx, tx)
}

// taskMoves are tasks' events folded: per task, its last version and the
// columns its events set (JSON), as moveTasksSQL takes them.
type taskMoves struct {
	ids      []string
	versions []int64
	changes  []string
}

// exec moves the tasks; it does nothing when there are none.
func (m taskMoves) exec(ctx context.Context, tx Execer) error {
	if len(m.ids) == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, moveTasksSQL, pq.Array(m.ids), pq.Array(m.versions), pq.Array(m.changes)); err != nil {
		return fmt.Errorf("move %d tasks: %w", len(m.ids), err)
	}
	return nil
}

// foldTasks folds each task's events, in order, into the columns they set,
// the later event's value winning (started_at only once).
func foldTasks(events []decoded) (taskMoves, error) {
	type move struct {
		version int
		c       map[string]any
	}
	moves := make(map[string]*move)
	var order []string
	for _, d := range events {
		m, ok := moves[d.id]
		if !ok {
			m = &move{c: map[string]any{}}
			moves[d.id] = m
			order = append(order, d.id)
		}
		m.version = d.e.StreamVersion
		at := timestamp(d.e.RecordedAt)
		m.c["updated_at"] = at
		switch ev := d.ev.(type) {
		case task.Started:
			if _, ok := m.c["started_at"]; !ok {
				m.c["started_at"] = at
			}
			setColumns(m.c, "status", task.StatusRunning, "attempts", ev.Attempt, "worker", ev.Worker,
				"deadline", timestamp(ev.Deadline), "progress", 0)
		case task.Progressed:
			setColumns(m.c, "progress", ev.Progress, "note", ev.Note)
		case task.Completed:
			var reply any
			if ev.ReplyMessageID != "" {
				reply = ev.ReplyMessageID
			}
			setColumns(m.c, "status", task.StatusCompleted, "progress", 100, "output", ev.Output,
				"reply_message_id", reply, "finished_at", at)
		case task.Failed:
			setColumns(m.c, "status", task.StatusFailed, "reason", ev.Reason, "attempts", ev.Attempts, "finished_at", at)
		case task.Cancelled:
			setColumns(m.c, "status", task.StatusCancelled, "reason", ev.Reason, "finished_at", at)
		}
	}
	out := taskMoves{ids: order, versions: make([]int64, len(order)), changes: make([]string, len(order))}
	for i, id := range order {
		c, err := json.Marshal(moves[id].c)
		if err != nil {
			return taskMoves{}, fmt.Errorf("task %s: %w", id, err)
		}
		out.versions[i], out.changes[i] = int64(moves[id].version), string(c)
	}
	return out, nil
}

// setColumns sets m's columns from name, value pairs.
func setColumns(m map[string]any, pairs ...any) {
	for i := 0; i+1 < len(pairs); i += 2 {
		m[pairs[i].(string)] = pairs[i+1]
	}
}
