package commands

import (
	"time"

	"github.com/engramhq/engram/domain/task"
)

// StartTask starts a task's next attempt for a worker, which gives it up
// after Timeout: a claim of a waiting (or abandoned) task, or, with Retry, a
// new attempt of the task the worker runs.
//
// It records task.started (see task.Task.Claim and task.Task.Retry). Only
// one claim wins: the others, decided again on the claim that was appended
// first, fail with CodeConflict (the task runs or has ended).
type StartTask struct {
	TaskID  string
	Worker  string
	Timeout time.Duration
	Retry   bool
}

func (cmd StartTask) taskID() string { return cmd.TaskID }

func (cmd StartTask) decide(t *task.Task, now time.Time) error {
	if cmd.Retry {
		return t.Retry(cmd.Worker, now, now.Add(cmd.Timeout))
	}
	return t.Claim(cmd.Worker, now, now.Add(cmd.Timeout))
}
