package commands

import (
	"time"

	"github.com/engramhq/engram/domain/task"
)

// FailTask gives a task up.
//
// It records task.failed (see task.Task.Fail). It fails with CodeConflict
// when the task has ended or runs for another worker.
type FailTask struct {
	TaskID string
	Worker string
	Reason string
}

func (cmd FailTask) taskID() string { return cmd.TaskID }

func (cmd FailTask) decide(t *task.Task, now time.Time) error {
	return t.Fail(cmd.Worker, cmd.Reason, now)
}
