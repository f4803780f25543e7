package projections

import (
	"context"
	"database/sql"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/memory"
	"github.com/engramhq/engram/domain/task"
	"github.com/engramhq/engram/eventstore"
)

// Names of the cognition projectors. They are stable identities: renaming
// one replays all history into it.
const (
	TasksProjector  = "tasks"
	MemoryProjector = "memory"
)

// Cognition returns the projectors of the cognition read models: the tasks
// handed to experts and the workspace memory items.
func Cognition() []Projector {
	return []Projector{
		creatingProjector{streamProjector{name: TasksProjector, streamType: task.StreamType, tables: []string{"tasks"},
			description: "tasks handed to domain experts", decode: task.Decode, apply: applyTask}, insertTasks},
		creatingProjector{streamProjector{name: MemoryProjector, streamType: memory.StreamType, tables: []string{"memory_items"},
			description: "workspace memory items", decode: memory.Decode, apply: applyMemory}, insertMemory},
	}
}

// applyTask keeps one row per task, guarded by the task stream's version:
// each event is one statement, which changes nothing when the row is
// already at or past the event.
func applyTask(ctx context.Context, tx Execer, e eventstore.Event, id string, ev domain.Event) error {
	if ev, ok := ev.(task.Submitted); ok {
		_, err := insertNew(ctx, tx, `INSERT INTO tasks (id, workspace_id, conversation_id, message_id, requested_by, expert,
			input, priority, status, submitted_at, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11)`,
			id, ev.WorkspaceID, ev.ConversationID, ev.MessageID, ev.RequestedBy, ev.Expert, ev.Input, ev.Priority,
			task.StatusSubmitted, e.RecordedAt, e.StreamVersion)
		return err
	}
	// $2 is the version and $3 the time of the event; set's own values
	// follow from $4.
	var set string
	var args []any
	switch ev := ev.(type) {
	case task.Started:
		set = `status = $4, attempts = $5, worker = $6, deadline = $7, progress = 0, started_at = coalesce(started_at, $3)`
		args = []any{task.StatusRunning, ev.Attempt, ev.Worker, ev.Deadline}
	case task.Progressed:
		set, args = `progress = $4, note = $5`, []any{ev.Progress, ev.Note}
	case task.Completed:
		set = `status = $4, progress = 100, output = $5, reply_message_id = $6, finished_at = $3`
		args = []any{task.StatusCompleted, ev.Output, nullIfEmpty(ev.ReplyMessageID)}
	case task.Failed:
		set, args = `status = $4, reason = $5, attempts = $6, finished_at = $3`, []any{task.StatusFailed, ev.Reason, ev.Attempts}
	case task.Cancelled:
		set, args = `status = $4, reason = $5, finished_at = $3`, []any{task.StatusCancelled, ev.Reason}
	}
	_, err := advanceSetting(ctx, tx, "tasks", id, `updated_at = $3`+prefixed(", ", set), append([]any{e.StreamVersion, e.RecordedAt}, args...)...)
	return err
}

// prefixed returns s after prefix, or "" when s is empty.
func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

// applyMemory keeps one row per item. Rows are guarded by the memory stream's
// version, so a redelivered event changes nothing; a deleted item keeps its
// row, marked deleted, so that no older event can bring it back.
func applyMemory(ctx context.Context, tx Execer, e eventstore.Event, workspaceID string, ev domain.Event) error {
	var err error
	switch ev := ev.(type) {
	case memory.ItemStored:
		_, err = tx.ExecContext(ctx, `INSERT INTO memory_items (id, workspace_id, type, content, metadata, expires_at,
			source_message_id, created_at, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)
			ON CONFLICT (id) DO NOTHING`, ev.ItemID, workspaceID, ev.Type, ev.Content, jsonOrEmpty(ev.Metadata), ev.ExpiresAt,
			nullIfEmpty(ev.SourceMessageID), e.RecordedAt, e.StreamVersion)
	case memory.ItemUpdated:
		_, err = tx.ExecContext(ctx, `UPDATE memory_items SET content = coalesce($3, content), metadata = coalesce($4::jsonb, metadata),
			expires_at = coalesce($5, expires_at), updated_at = $6, version = $7 WHERE id = $1 AND workspace_id = $2 AND version < $7`,
			ev.ItemID, workspaceID, ev.Content, nullJSON(ev.Metadata), ev.ExpiresAt, e.RecordedAt, e.StreamVersion)
	case memory.ItemDeleted:
		_, err = tx.ExecContext(ctx, `UPDATE memory_items SET deleted_at = $3, updated_at = $3, version = $4
			WHERE id = $1 AND workspace_id = $2 AND version < $4`, ev.ItemID, workspaceID, e.RecordedAt, e.StreamVersion)
	}
	return err
}

func nullIfEmpty(s string) sql.NullString {
	return sql.NullString{String: s, Valid: s != ""}
}
