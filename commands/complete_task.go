package commands

import (
	"time"

	"github.com/engramhq/engram/domain/task"
)

// CompleteTask records an expert's answer. ReplyMessageID is the id the
// assistant message carrying Output will have (see PostReply).
//
// It records task.completed. It fails with CodeConflict when the task no
// longer runs for this worker (cancelled, for instance): the answer is then
// dropped.
type CompleteTask struct {
	TaskID         string
	Worker         string
	Output         string
	ReplyMessageID string
}

func (cmd CompleteTask) taskID() string { return cmd.TaskID }

func (cmd CompleteTask) decide(t *task.Task, _ time.Time) error {
	return t.Complete(cmd.Worker, cmd.Output, cmd.ReplyMessageID)
}
