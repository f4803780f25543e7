package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/catalog"
	"github.com/engramhq/engram/domain/memory"
	"github.com/engramhq/engram/domain/task"
	"github.com/engramhq/engram/eventstore"
)

// cognitionRepositories add the repositories of the cognition aggregates —
// tasks and workspace memories — to the shared ones.
type cognitionRepositories struct {
	*repositories
	tasks       *repository[*task.Task]
	whiteboards *repository[*memory.Whiteboard]
}

func newCognitionRepositories(repos *repositories) *cognitionRepositories {
	return &cognitionRepositories{
		repositories: repos,
		tasks:        repositoryOf(repos.store, catalog.Tasks),
		whiteboards:  repositoryOf(repos.store, catalog.Memories),
	}
}

// changeBoard runs decide on a workspace's whiteboard, which is empty before
// its first item, through the whiteboard's writer.
func (r *cognitionRepositories) changeBoard(ctx context.Context, workspaceID string,
	decide func(*memory.Whiteboard) error, opts ...eventstore.AppendOption) (Written, error) {
	return r.whiteboards.upsert(ctx, workspaceID, decide, opts...)
}

// rememberOnce runs remember, which returns the id of the item it stores or
// changes, on the whiteboard of the conversation's workspace, unless the
// whiteboard already holds what message messageID says: then it writes
// nothing, and the result says AlreadyRemembered.
func (r *cognitionRepositories) rememberOnce(ctx context.Context, conversationID, messageID string,
	remember func(w *memory.Whiteboard) (itemID string, err error)) (MemoryItemResult, error) {
	workspaceID, err := r.workspaceOf(ctx, conversationID)
	if err != nil {
		return MemoryItemResult{}, err
	}
	out := MemoryItemResult{WorkspaceID: workspaceID}
	w, err := r.changeBoard(ctx, workspaceID, func(w *memory.Whiteboard) error {
		if w.Remembered(messageID) {
			return errAlreadyRemembered
		}
		id, err := remember(w)
		out.ItemID = id
		return err
	})
	if errors.Is(err, errAlreadyRemembered) {
		out.AlreadyRemembered = true
		return out, nil
	}
	out.Written = w
	return out, err
}

// errAlreadyRemembered stops a memory change that is already on record.
var errAlreadyRemembered = domain.Errorf(domain.CodeConflict, "message already remembered")

// taskOrigin returns the event that submitted a task: its metadata tells
// which request and which message the task answers.
func (r *cognitionRepositories) taskOrigin(ctx context.Context, taskID string) (eventstore.Event, error) {
	first, ok, err := r.store.FirstEvent(ctx, task.StreamID(taskID))
	if err != nil {
		return eventstore.Event{}, fmt.Errorf("read task %s: %w", taskID, err)
	}
	if !ok || first.Type != task.EventSubmitted {
		return eventstore.Event{}, domain.Errorf(domain.CodeNotFound, "task not found")
	}
	return first, nil
}
