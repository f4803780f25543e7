package commands

import (
	"context"
	"time"

	"github.com/engramhq/engram/domain/task"
)

// taskCommand is a command a worker gives about the task it runs: StartTask,
// ReportTaskProgress, CompleteTask or FailTask.
type taskCommand interface {
	// taskID names the task the command is about.
	taskID() string
	// decide runs the command on the task at time now.
	decide(t *task.Task, now time.Time) error
}

// TaskHandler handles a command C of a task's worker. The workers act on
// behalf of the system: no actor is checked.
type TaskHandler[C taskCommand] struct {
	repos *cognitionRepositories
	now   func() time.Time
}

// Handle decides cmd on its task, through the task's writer, and returns the
// task as the decision left it. Each command says which event it records and
// when it fails.
func (h *TaskHandler[C]) Handle(ctx context.Context, cmd C) (TaskResult, error) {
	now := h.now()
	return changeTask(ctx, h.repos, cmd.taskID(), func(t *task.Task) error { return cmd.decide(t, now) })
}
