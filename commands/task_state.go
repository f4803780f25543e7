package commands

import (
	"context"
	"time"

	"github.com/engramhq/engram/domain/task"
)

// TaskState is a task right after a command.
type TaskState struct {
	ID             string
	WorkspaceID    string
	ConversationID string
	MessageID      string
	RequestedBy    string
	Expert         string
	Input          string
	Priority       int
	Status         string
	Worker         string
	Attempts       int
	Deadline       time.Time
	Progress       int
	Output         string
	ReplyMessageID string
	Reason         string
}

func taskState(t *task.Task) TaskState {
	return TaskState{ID: t.ID(), WorkspaceID: t.WorkspaceID(), ConversationID: t.ConversationID(), MessageID: t.MessageID(),
		RequestedBy: t.RequestedBy(), Expert: t.Expert(), Input: t.Input(), Priority: t.Priority(), Status: t.Status(),
		Worker: t.Worker(), Attempts: t.Attempts(), Deadline: t.Deadline(), Progress: t.ProgressPercent(), Output: t.Output(),
		ReplyMessageID: t.ReplyMessageID(), Reason: t.Reason()}
}

// TaskResult is a task after a command.
type TaskResult struct {
	Task TaskState
	Written
}

// changeTask runs decide on a task through the task's writer. The task
// commands of workers act on behalf of the system (no actor).
func changeTask(ctx context.Context, repos *cognitionRepositories, id string, decide func(*task.Task) error) (TaskResult, error) {
	if err := validID("task_id", id); err != nil {
		return TaskResult{}, err
	}
	var state TaskState
	w, err := repos.tasks.update(ctx, id, keepingState(decide, taskState, &state))
	if err != nil {
		return TaskResult{}, err
	}
	return TaskResult{Task: state, Written: w}, nil
}

// ExpertAuthor returns the author id of the messages an expert posts, e.g.
// "expert:echo".
func ExpertAuthor(expert string) string { return "expert:" + expert }
