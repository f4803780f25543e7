package commands

import (
	"context"
	"time"

	"github.com/engramhq/engram/domain/task"
)

// FailTask gives a task up.
type FailTask struct {
	TaskID string
	Worker string
	Reason string
}

// FailTaskHandler handles FailTask.
type FailTaskHandler struct {
	repos *cognitionRepositories
	now   func() time.Time
}

// Handle records task.failed (see task.Task.Fail). It fails with
// CodeConflict when the task has ended or runs for another worker.
func (h *FailTaskHandler) Handle(ctx context.Context, cmd FailTask) (TaskResult, error) {
	now := h.now()
	return changeTask(ctx, h.repos, cmd.TaskID, func(t *task.Task) error {
		return t.Fail(cmd.Worker, cmd.Reason, now)
	})
}
