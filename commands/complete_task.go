package commands

import (
	"context"

	"github.com/engramhq/engram/domain/task"
)

// CompleteTask records an expert's answer. ReplyMessageID is the id the
// assistant message carrying Output will have (see PostReply).
type CompleteTask struct {
	TaskID         string
	Worker         string
	Output         string
	ReplyMessageID string
}

// CompleteTaskHandler handles CompleteTask.
type CompleteTaskHandler struct {
	repos *cognitionRepositories
}

// Handle records task.completed. It fails with CodeConflict when the task
// no longer runs for this worker (cancelled, for instance): the answer is
// then dropped.
func (h *CompleteTaskHandler) Handle(ctx context.Context, cmd CompleteTask) (TaskResult, error) {
	return changeTask(ctx, h.repos, cmd.TaskID, func(t *task.Task) error {
		return t.Complete(cmd.Worker, cmd.Output, cmd.ReplyMessageID)
	})
}
