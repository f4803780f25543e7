package commands

import (
	"context"
	"encoding/json"

	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/conversation"
)

// UpdateConversation renames a conversation or merges a patch into its
// metadata (RFC 7386: null deletes a key).
type UpdateConversation struct {
	Actor          access.Actor
	ConversationID string
	Title          *string
	MetadataPatch  json.RawMessage
	IfMatch        *int
}

// UpdateConversationHandler handles UpdateConversation.
type UpdateConversationHandler struct {
	repos *repositories
}

// Handle applies the update (editors and owners).
func (h *UpdateConversationHandler) Handle(ctx context.Context, cmd UpdateConversation) (ConversationResult, error) {
	return changeConversation(ctx, h.repos, cmd.Actor, access.UpdateConversation, cmd.ConversationID, cmd.IfMatch,
		func(c *conversation.Conversation) error { return c.Update(cmd.Title, cmd.MetadataPatch) })
}

// changeConversation is load → authorize → decide → append for conversation
// commands. The actor's rights come from the conversation's workspace.
func changeConversation(ctx context.Context, repos *repositories, actor access.Actor, action access.Action,
	id string, ifMatch *int, decide func(*conversation.Conversation) error) (ConversationResult, error) {
	if err := validID("conversation_id", id); err != nil {
		return ConversationResult{}, err
	}
	c, role, err := repos.conversationWithRole(ctx, id, actor.UserID)
	if err != nil {
		return ConversationResult{}, err
	}
	fail := func(err error) (ConversationResult, error) {
		repos.conversations.release(id, c)
		return ConversationResult{}, err
	}
	if err := access.CheckWorkspace(actor, action, role); err != nil {
		return fail(err)
	}
	if err := checkIfMatch(ifMatch, c.Version()); err != nil {
		return fail(err)
	}
	if err := decide(c); err != nil {
		return fail(err)
	}
	state, version := conversationState(c), c.Version()
	res, err := repos.conversations.save(withActor(ctx, actor.UserID), id, c)
	if err != nil {
		return ConversationResult{}, err
	}
	return ConversationResult{Conversation: state, Written: written(res, version)}, nil
}
