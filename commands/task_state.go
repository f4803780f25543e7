package commands

import (
	"context"

	"github.com/engramhq/engram/domain/catalog"
	"github.com/engramhq/engram/domain/task"
)

// TaskState is a task right after a command.
type TaskState = catalog.TaskState

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
	w, err := repos.tasks.update(ctx, id, keepingState(decide, catalog.TaskStateOf, &state))
	if err != nil {
		return TaskResult{}, err
	}
	return TaskResult{Task: state, Written: w}, nil
}

// readTask returns the state of a task, read to decide a command on another
// stream.
func (r *cognitionRepositories) readTask(ctx context.Context, id string) (TaskState, error) {
	if err := validID("task_id", id); err != nil {
		return TaskState{}, err
	}
	t, err := r.tasks.load(ctx, id)
	if err != nil {
		return TaskState{}, err
	}
	defer r.tasks.release(id, t)
	return catalog.TaskStateOf(t), nil
}

// ExpertAuthor returns the author id of the messages an expert posts, e.g.
// "expert:echo".
func ExpertAuthor(expert string) string { return "expert:" + expert }
