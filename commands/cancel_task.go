package commands

import (
	"context"

	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/task"
)

// CancelTask cancels a task that has not ended; its worker stops.
type CancelTask struct {
	Actor  access.Actor
	TaskID string
	Reason string
}

// CancelTaskHandler handles CancelTask.
type CancelTaskHandler struct {
	repos *cognitionRepositories
}

// Handle records task.cancelled. Those who may post in the task's
// conversation (editors and owners) may cancel it. It fails with
// CodeConflict when the task has already ended.
func (h *CancelTaskHandler) Handle(ctx context.Context, cmd CancelTask) (TaskResult, error) {
	t, err := h.repos.readTask(ctx, cmd.TaskID)
	if err != nil {
		return TaskResult{}, err
	}
	// A task never changes workspace.
	if err := h.repos.authorizeActive(ctx, cmd.Actor, access.PostMessage, t.WorkspaceID); err != nil {
		return TaskResult{}, err
	}
	return changeTask(withActor(ctx, cmd.Actor.UserID), h.repos, cmd.TaskID, func(t *task.Task) error {
		return t.Cancel(cmd.Reason)
	})
}
