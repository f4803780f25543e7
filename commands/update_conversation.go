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
	return h.repos.inConversation(ctx, cmd.Actor, access.UpdateConversation, cmd.ConversationID, cmd.IfMatch,
		func(c *conversation.Conversation) error { return c.Update(cmd.Title, cmd.MetadataPatch) })
}
