package commands

import (
	"context"

	"github.com/engramhq/engram/domain/task"
)

// ReportTaskProgress records how far a running task has come.
type ReportTaskProgress struct {
	TaskID   string
	Worker   string
	Progress int
	Note     string
}

// ReportTaskProgressHandler handles ReportTaskProgress.
type ReportTaskProgressHandler struct {
	repos *cognitionRepositories
}

// Handle records task.progressed. It fails with CodeConflict when the task
// no longer runs for this worker (cancelled, for instance).
func (h *ReportTaskProgressHandler) Handle(ctx context.Context, cmd ReportTaskProgress) (TaskResult, error) {
	return changeTask(ctx, h.repos, cmd.TaskID, func(t *task.Task) error {
		return t.Progress(cmd.Worker, cmd.Progress, cmd.Note)
	})
}
