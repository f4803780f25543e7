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
}

// MessageResult is a posted message.
type MessageResult struct {
	MessageID      string
	ConversationID string
	WorkspaceID    string
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
	// Cognition appends to the conversation too (routing decisions,
	// replies) and so do other instances: a message does not depend on
	// them, and the conversation's writer decides it again on their events.
	res, err := h.repos.inConversation(ctx, cmd.Actor, access.PostMessage, cmd.ConversationID, nil,
		func(c *conversation.Conversation) error {
			return c.PostMessage(id, cmd.Actor.UserID, cmd.Role, cmd.Content, cmd.Metadata)
		})
	if err != nil {
		return MessageResult{}, err
	}
	return MessageResult{MessageID: id, ConversationID: cmd.ConversationID, WorkspaceID: res.Conversation.WorkspaceID, Written: res.Written}, nil
}
