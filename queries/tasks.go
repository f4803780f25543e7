package queries

import (
	"context"

	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/projections"
)

const taskColumns = `id, workspace_id, conversation_id, message_id, requested_by, expert, input, priority, status, progress,
	note, attempts, output, reply_message_id, reason, submitted_at, started_at, finished_at, updated_at, version`

// GetTaskHandler returns one task.
type GetTaskHandler struct{ r *reader }

// Handle returns the task, or not found when the caller may not read its
// conversation.
func (h *GetTaskHandler) Handle(ctx context.Context, actor access.Actor, id string, minPosition int64) (Task, error) {
	if !isUUID(id) {
		return Task{}, notFound("task")
	}
	if err := h.r.wait(ctx, projections.TasksProjector, minPosition, projections.WorkspacesProjector); err != nil {
		return Task{}, err
	}
	t, err := getRow[Task](ctx, h.r, "task", `SELECT `+taskColumns+` FROM tasks WHERE id = $1`, id)
	if err != nil {
		return Task{}, err
	}
	if _, err := h.r.authorize(ctx, actor, access.ReadConversation, t.WorkspaceID); err != nil {
		return Task{}, err
	}
	return t, nil
}
