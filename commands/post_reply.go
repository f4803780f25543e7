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
	return retryConcurrent(func() (ReplyResult, error) { return h.handle(ctx, cmd) })
}

func (h *PostReplyHandler) handle(ctx context.Context, cmd PostReply) (ReplyResult, error) {
	if err := validID("task_id", cmd.TaskID); err != nil {
		return ReplyResult{}, err
	}
	t, err := h.repos.tasks.load(ctx, cmd.TaskID)
	if err != nil {
		return ReplyResult{}, err
	}
	h.repos.tasks.release(cmd.TaskID, t)
	if t.Status() != task.StatusCompleted {
		return ReplyResult{}, domain.Errorf(domain.CodeConflict, "task is %s, not completed", t.Status())
	}
	out := ReplyResult{MessageID: t.ReplyMessageID(), ConversationID: t.ConversationID()}
	if out.MessageID == "" {
		return out, nil
	}
	origin, err := h.repos.taskOrigin(ctx, cmd.TaskID)
	if err != nil {
		return ReplyResult{}, err
	}
	author := ExpertAuthor(t.Expert())
	ctx = WithMetadata(ctx, eventstore.Metadata{CorrelationID: origin.Metadata.CorrelationID,
		CausationID: origin.Metadata.CausationID, ActorID: author})
	metadata, err := json.Marshal(map[string]string{"task_id": t.ID(), "expert": t.Expert()})
	if err != nil {
		return ReplyResult{}, err
	}

	c, err := h.repos.conversations.load(ctx, t.ConversationID())
	if err != nil {
		return ReplyResult{}, err
	}
	if c.Archived() {
		h.repos.conversations.release(t.ConversationID(), c)
		return ReplyResult{}, domain.Errorf(domain.CodeConflict, "conversation is archived")
	}
	err = c.PostMessage(out.MessageID, author, conversation.RoleAssistant, t.Output(), metadata)
	if domain.ErrorCode(err) == domain.CodeConflict {
		h.repos.conversations.release(t.ConversationID(), c)
		out.AlreadyPosted = true
		return out, nil
	}
	if err != nil {
		h.repos.conversations.release(t.ConversationID(), c)
		return ReplyResult{}, err
	}
	version := c.Version()
	res, err := h.repos.conversations.save(ctx, t.ConversationID(), c)
	if err != nil {
		return ReplyResult{}, err
	}
	out.Written = written(res, version)
	return out, nil
}
