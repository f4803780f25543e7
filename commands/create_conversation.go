package commands

import (
	"context"
	"encoding/json"

	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/catalog"
	"github.com/engramhq/engram/domain/conversation"
)

// CreateConversation starts a conversation in a workspace.
type CreateConversation struct {
	Actor       access.Actor
	WorkspaceID string
	Title       string
	Modality    string
	Metadata    json.RawMessage
	// Idempotency, when set, applies the command once per key.
	Idempotency *Idempotency[ConversationResult]
}

// ConversationResult is a conversation after a command.
type ConversationResult struct {
	Conversation ConversationState
	Written
}

// CreateConversationHandler handles CreateConversation.
type CreateConversationHandler struct {
	repos *repositories
}

// Handle creates the conversation (editors and owners).
func (h *CreateConversationHandler) Handle(ctx context.Context, cmd CreateConversation) (ConversationResult, error) {
	if err := h.repos.authorizeActive(ctx, cmd.Actor, access.CreateConversation, cmd.WorkspaceID); err != nil {
		return ConversationResult{}, err
	}
	id := newID()
	c, err := conversation.New(id, cmd.WorkspaceID, cmd.Actor.UserID, cmd.Title, cmd.Modality, cmd.Metadata)
	if err != nil {
		return ConversationResult{}, err
	}
	state := catalog.ConversationStateOf(c)
	result := func(w Written) ConversationResult { return ConversationResult{Conversation: state, Written: w} }
	w, err := h.repos.conversations.create(withActor(ctx, cmd.Actor.UserID), id, c, cmd.Idempotency.appendOptions(result)...)
	if err != nil {
		return ConversationResult{}, err
	}
	h.repos.workspaceOfConversation.put(id, cmd.WorkspaceID)
	return result(w), nil
}
