package commands

import (
	"context"
	"errors"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/catalog"
	"github.com/engramhq/engram/domain/task"
	"github.com/engramhq/engram/eventstore"
)

// SubmitTask hands a message to a domain expert; it carries what the
// task.submitted event it records does. The caller chooses the task's id: a
// deterministic one (derived from the message) makes submitting the same
// message twice submit one task.
type SubmitTask task.Submitted

// SubmitTaskHandler handles SubmitTask.
type SubmitTaskHandler struct {
	repos *cognitionRepositories
}

// Handle records task.submitted in a new task stream. It fails with
// CodeConflict when a task with this id was already submitted.
func (h *SubmitTaskHandler) Handle(ctx context.Context, cmd SubmitTask) (TaskResult, error) {
	t, err := task.Submit(cmd.TaskID, cmd.WorkspaceID, cmd.ConversationID, cmd.MessageID, cmd.RequestedBy, cmd.Expert, cmd.Input, cmd.Priority)
	if err != nil {
		return TaskResult{}, err
	}
	state := catalog.TaskStateOf(t)
	w, err := h.repos.tasks.create(ctx, cmd.TaskID, t)
	if errors.Is(err, eventstore.ErrConcurrency) {
		return TaskResult{}, domain.Errorf(domain.CodeConflict, "task already submitted")
	}
	if err != nil {
		return TaskResult{}, err
	}
	return TaskResult{Task: state, Written: w}, nil
}
