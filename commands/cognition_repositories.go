package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/engramhq/engram/domain"
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
	// workspaceOfConversation remembers each conversation's workspace,
	// which never changes.
	workspaceOfConversation *aggregateCache[string]
}

func newCognitionRepositories(repos *repositories) *cognitionRepositories {
	return &cognitionRepositories{
		repositories: repos,
		tasks: newRepository(repos.store, task.StreamType, task.StreamID,
			func() *task.Task { return &task.Task{} }, task.Decode),
		whiteboards: newRepository(repos.store, memory.StreamType, memory.StreamID,
			func() *memory.Whiteboard { return &memory.Whiteboard{} }, memory.Decode).waiting(),
		workspaceOfConversation: newAggregateCache[string](10_000),
	}
}

// boardAttempts bounds how often a memory change is retried when another
// writer appended to the workspace's memory stream first.
const boardAttempts = 5

// changeBoard is load → decide → append for a workspace's whiteboard, which
// is empty before its first item. One stream holds a whole workspace's
// memory, so concurrent writers are common: on a concurrency clash the
// change is decided again on the fresh state.
func (r *cognitionRepositories) changeBoard(ctx context.Context, workspaceID string,
	decide func(*memory.Whiteboard) error) (Written, error) {
	for attempt := 1; ; attempt++ {
		w, err := r.whiteboards.load(ctx, workspaceID)
		if domain.ErrorCode(err) == domain.CodeNotFound {
			w, err = &memory.Whiteboard{}, nil
		}
		if err != nil {
			return Written{}, err
		}
		if err := decide(w); err != nil {
			r.whiteboards.release(workspaceID, w)
			return Written{}, err
		}
		version := w.Version()
		res, err := r.whiteboards.save(ctx, workspaceID, w)
		if errors.Is(err, eventstore.ErrConcurrency) && attempt < boardAttempts {
			continue
		}
		if err != nil {
			return Written{}, err
		}
		return written(res, version), nil
	}
}

// taskOrigin returns the event that submitted a task: its metadata tells
// which request and which message the task answers.
func (r *cognitionRepositories) taskOrigin(ctx context.Context, taskID string) (eventstore.Event, error) {
	events, err := r.store.ReadStream(ctx, task.StreamID(taskID), 0)
	if err != nil {
		return eventstore.Event{}, fmt.Errorf("read task %s: %w", taskID, err)
	}
	if len(events) == 0 || events[0].Type != task.EventSubmitted {
		return eventstore.Event{}, domain.Errorf(domain.CodeNotFound, "task not found")
	}
	return events[0], nil
}

// appendAttempts bounds how often an append that does not depend on what
// else is in its stream is tried again after a concurrency clash.
const appendAttempts = 5

// retryConcurrent runs fn, and runs it again while it fails with
// eventstore.ErrConcurrency, at most appendAttempts times in all. It is for
// commands whose decision holds whatever was appended meanwhile (posting a
// message, recording a routing decision): a conversation is written both by
// its people and by cognition, and neither should see the other's append as
// a conflict.
func retryConcurrent[T any](fn func() (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		out, err := fn()
		if !errors.Is(err, eventstore.ErrConcurrency) || attempt == appendAttempts {
			return out, err
		}
	}
}
