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
			description: "tasks handed to domain experts", decode: task.Decode, apply: applyTask}, writeTasks},
		creatingProjector{streamProjector{name: MemoryProjector, streamType: memory.StreamType, tables: []string{"memory_items"},
			description: "workspace memory items", decode: memory.Decode, apply: applyMemory}, writeMemory},
	}
}

// applyTask keeps one row per task, guarded by the task stream's version:
// each event is one statement, which changes nothing when the row is
// already at or past the event. The statement of a later event is the one
// a batch moves its tasks with (moveTasks), for a batch of one.
func applyTask(ctx context.Context, tx Execer, e eventstore.Event, id string, ev domain.Event) error {
	if ev, ok := ev.(task.Submitted); ok {
		_, err := insertNew(ctx, tx, `INSERT INTO tasks (id, workspace_id, conversation_id, message_id, requested_by, expert,
			input, priority, status, submitted_at, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11)`,
			id, ev.WorkspaceID, ev.ConversationID, ev.MessageID, ev.RequestedBy, ev.Expert, ev.Input, ev.Priority,
			task.StatusSubmitted, e.RecordedAt, e.StreamVersion)
		return err
	}
	return moveTasks(ctx, tx, []decoded{{e: e, id: id, ev: ev}})
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
