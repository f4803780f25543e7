package queries

import (
	"context"
	"database/sql"
	"time"

	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/projections"
)

// Task is a task handed to a domain expert, as the members of its
// workspace see it.
type Task struct {
	ID             string         `db:"id"`
	WorkspaceID    string         `db:"workspace_id"`
	ConversationID string         `db:"conversation_id"`
	MessageID      string         `db:"message_id"`
	RequestedBy    string         `db:"requested_by"`
	Expert         string         `db:"expert"`
	Input          string         `db:"input"`
	Priority       int            `db:"priority"`
	Status         string         `db:"status"`
	Progress       int            `db:"progress"`
	Note           string         `db:"note"`
	Attempts       int            `db:"attempts"`
	Output         sql.NullString `db:"output"`
	ReplyMessageID sql.NullString `db:"reply_message_id"`
	Reason         sql.NullString `db:"reason"`
	SubmittedAt    time.Time      `db:"submitted_at"`
	StartedAt      *time.Time     `db:"started_at"`
	FinishedAt     *time.Time     `db:"finished_at"`
	UpdatedAt      time.Time      `db:"updated_at"`
	Version        int            `db:"version"`
}

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
