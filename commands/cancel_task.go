package commands

import (
	"context"

	"github.com/engramhq/engram/domain/access"
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
	fail := func(err error) (TaskResult, error) {
		h.repos.tasks.release(cmd.TaskID, t)
		return TaskResult{}, err
	}
	if _, err := h.repos.authorizeInWorkspace(ctx, cmd.Actor, access.PostMessage, t.WorkspaceID()); err != nil {
		return fail(err)
	}
	if err := t.Cancel(cmd.Reason); err != nil {
		return fail(err)
	}
	state, version := taskState(t), t.Version()
	res, err := h.repos.tasks.save(withActor(ctx, cmd.Actor.UserID), cmd.TaskID, t)
	if err != nil {
		return TaskResult{}, err
	}
	return TaskResult{Task: state, Written: written(res, version)}, nil
}
