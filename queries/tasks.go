package queries

import (
	"context"
	"time"

	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/projections"
)

// Task is a task handed to a domain expert, as the members of its
// workspace see it.
type Task struct {
	ID             string     `db:"id" json:"id"`
	WorkspaceID    string     `db:"workspace_id" json:"workspace_id"`
	ConversationID string     `db:"conversation_id" json:"conversation_id"`
	MessageID      string     `db:"message_id" json:"message_id"`
	RequestedBy    string     `db:"requested_by" json:"requested_by"`
	Expert         string     `db:"expert" json:"expert"`
	Input          string     `db:"input" json:"input"`
	Priority       int        `db:"priority" json:"priority"`
	Status         string     `db:"status" json:"status"`
	Progress       int        `db:"progress" json:"progress"`
	Note           string     `db:"note" json:"note"`
	Attempts       int        `db:"attempts" json:"attempts"`
	Output         *string    `db:"output" json:"output"`
	ReplyMessageID *string    `db:"reply_message_id" json:"reply_message_id"`
	Reason         *string    `db:"reason" json:"reason"`
	SubmittedAt    time.Time  `db:"submitted_at" json:"submitted_at"`
	StartedAt      *time.Time `db:"started_at" json:"started_at"`
	FinishedAt     *time.Time `db:"finished_at" json:"finished_at"`
	UpdatedAt      time.Time  `db:"updated_at" json:"updated_at"`
	Version        int        `db:"version" json:"version"`
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
