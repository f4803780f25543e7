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
	if err := validID("task_id", cmd.TaskID); err != nil {
		return TaskResult{}, err
	}
	t, err := h.repos.tasks.load(ctx, cmd.TaskID)
	if err != nil {
		return TaskResult{}, err
	}
	workspaceID := t.WorkspaceID() // a task never changes workspace
	h.repos.tasks.release(cmd.TaskID, t)
	ws, err := h.repos.authorizeInWorkspace(ctx, cmd.Actor, access.PostMessage, workspaceID)
	if err != nil {
		return TaskResult{}, err
	}
	if err := requireActive(ws); err != nil {
		return TaskResult{}, err
	}
	return changeTask(withActor(ctx, cmd.Actor.UserID), h.repos, cmd.TaskID, func(t *task.Task) error {
		return t.Cancel(cmd.Reason)
	})
}
