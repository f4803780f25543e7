package commands

import (
	"context"
	"encoding/json"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/domain/task"
	"github.com/engramhq/engram/eventstore"
)

// PostReply carries a completed task's answer into its conversation as an
// assistant message.
type PostReply struct {
	TaskID string
	// Completed, when set, is the task's completion as it was appended (the
	// event a reactor reacts to, or what CompleteTask has just recorded):
	// the task's state need not be read back from its stream.
	Completed *task.Completed
}

// ReplyResult says what PostReply did.
type ReplyResult struct {
	// MessageID is the reply's id ("" when the task had nothing to say).
	MessageID      string
	ConversationID string
	// AlreadyPosted is true when the reply was in the conversation already:
	// nothing was written.
	AlreadyPosted bool
	Written
}

// PostReplyHandler handles PostReply.
type PostReplyHandler struct {
	repos *cognitionRepositories
}

// Handle posts the reply with the id the task recorded, authored by the
// expert (e.g. "expert:echo"), and with the metadata of the message the task
// answers: the same correlation id, and that message's event as its cause.
// Posting it again writes nothing, so a redelivered or replayed completion
// never answers twice. It fails with CodeConflict when the task is not
// completed or the conversation is archived.
func (h *PostReplyHandler) Handle(ctx context.Context, cmd PostReply) (ReplyResult, error) {
	state, err := h.completed(ctx, cmd)
	if err != nil {
		return ReplyResult{}, err
	}
	out := ReplyResult{MessageID: state.ReplyMessageID, ConversationID: state.ConversationID}
	if out.MessageID == "" {
		return out, nil
	}
	origin, err := h.repos.taskOrigin(ctx, cmd.TaskID)
	if err != nil {
		return ReplyResult{}, err
	}
	author := ExpertAuthor(state.Expert)
	ctx = WithMetadata(ctx, eventstore.Metadata{CorrelationID: origin.Metadata.CorrelationID,
		CausationID: origin.Metadata.CausationID, ActorID: author})
	metadata, err := json.Marshal(map[string]string{"task_id": state.ID, "expert": state.Expert})
	if err != nil {
		return ReplyResult{}, err
	}

	w, err := h.repos.conversations.update(ctx, state.ConversationID, func(c *conversation.Conversation) error {
		out.AlreadyPosted = false
		if c.Archived() {
			return domain.Errorf(domain.CodeConflict, "conversation is archived")
		}
		err := c.PostMessage(out.MessageID, author, conversation.RoleAssistant, state.Output, metadata)
		if domain.ErrorCode(err) == domain.CodeConflict {
			out.AlreadyPosted = true // posted before: nothing to write
			return nil
		}
		return err
	})
	if err != nil {
		return ReplyResult{}, err
	}
	if !out.AlreadyPosted {
		out.Written = w
	}
	return out, nil
}

// completed returns the state of cmd's completed task: read from its
// stream, or, when cmd carries the completion, made of the completion and
// the submission (the task's first event, which the store remembers).
func (h *PostReplyHandler) completed(ctx context.Context, cmd PostReply) (TaskState, error) {
	c := cmd.Completed
	if c == nil {
		state, err := h.repos.readTask(ctx, cmd.TaskID)
		if err == nil && state.Status != task.StatusCompleted {
			err = domain.Errorf(domain.CodeConflict, "task is %s, not completed", state.Status)
		}
		return state, err
	}
	if err := validID("task_id", cmd.TaskID); err != nil {
		return TaskState{}, err
	}
	origin, err := h.repos.taskOrigin(ctx, cmd.TaskID)
	if err != nil {
		return TaskState{}, err
	}
	ev, err := task.Decode(origin.Type, origin.SchemaVersion, origin.Data)
	if err != nil {
		return TaskState{}, err
	}
	sub := ev.(task.Submitted)
	return TaskState{ID: cmd.TaskID, WorkspaceID: sub.WorkspaceID, ConversationID: sub.ConversationID, MessageID: sub.MessageID,
		Expert: sub.Expert, Status: task.StatusCompleted, Output: c.Output, ReplyMessageID: c.ReplyMessageID}, nil
}
