package commands

import (
	"context"
	"time"

	"github.com/engramhq/engram/domain/task"
)

// StartTask claims a task for a worker's next attempt, which the worker
// gives up after Timeout.
type StartTask struct {
	TaskID  string
	Worker  string
	Timeout time.Duration
}

// StartTaskHandler handles StartTask.
type StartTaskHandler struct {
	repos *cognitionRepositories
	now   func() time.Time
}

// Handle records task.started (see task.Task.Start). Only one worker wins a
// claim: the others fail with CodeConflict (the task runs for another
// worker or has ended) or eventstore.ErrConcurrency (another claim was
// appended first).
func (h *StartTaskHandler) Handle(ctx context.Context, cmd StartTask) (TaskResult, error) {
	now := h.now()
	return changeTask(ctx, h.repos, cmd.TaskID, func(t *task.Task) error {
		return t.Start(cmd.Worker, now, now.Add(cmd.Timeout))
	})
}
