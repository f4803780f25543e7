package commands

import (
	"time"

	"github.com/engramhq/engram/domain/task"
)

// ReportTaskProgress records how far a running task has come.
//
// It records task.progressed. It fails with CodeConflict when the task no
// longer runs for this worker (cancelled, for instance).
type ReportTaskProgress struct {
	TaskID   string
	Worker   string
	Progress int
	Note     string
}

func (cmd ReportTaskProgress) taskID() string { return cmd.TaskID }

func (cmd ReportTaskProgress) decide(t *task.Task, _ time.Time) error {
	return t.Progress(cmd.Worker, cmd.Progress, cmd.Note)
}
