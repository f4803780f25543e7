package commands

import (
	"context"
	"encoding/json"

	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/conversation"
)

// PostMessage adds a message to a conversation.
type PostMessage struct {
	Actor          access.Actor
	ConversationID string
	Content        string
	Role           string
	Metadata       json.RawMessage
	// Idempotency, when set, applies the command once per key.
	Idempotency *Idempotency[MessageResult]
}

// MessageResult is a posted message, as posted.
type MessageResult struct {
	MessageID      string
	ConversationID string
	WorkspaceID    string
	AuthorID       string
	Role           string
	Content        string
	Metadata       json.RawMessage
	Written
}

// PostMessageHandler handles PostMessage.
type PostMessageHandler struct {
	repos *repositories
}

// Handle posts the message (editors and owners). The stored event is the
// message: see conversation.MessagePosted.
func (h *PostMessageHandler) Handle(ctx context.Context, cmd PostMessage) (MessageResult, error) {
	id := newID()
	var posted conversation.MessagePosted
	var workspaceID string
	result := func(w Written) MessageResult {
		return MessageResult{MessageID: id, ConversationID: cmd.ConversationID, WorkspaceID: workspaceID,
			AuthorID: posted.AuthorID, Role: posted.Role, Content: posted.Content, Metadata: posted.Metadata, Written: w}
	}
	// Cognition appends to the conversation too (routing decisions,
	// replies) and so do other instances: a message does not depend on
	// them, and the conversation's writer decides it again on their events.
	res, err := h.repos.inConversation(ctx, cmd.Actor, access.PostMessage, cmd.ConversationID, nil,
		func(c *conversation.Conversation) error {
			if err := c.PostMessage(id, cmd.Actor.UserID, cmd.Role, cmd.Content, cmd.Metadata); err != nil {
				return err
			}
			posted, workspaceID = lastPending[conversation.MessagePosted](c), c.WorkspaceID()
			return nil
		}, cmd.Idempotency.appendOptions(result)...)
	if err != nil {
		return MessageResult{}, err
	}
	return result(res.Written), nil
}
