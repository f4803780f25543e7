package commands

import (
	"context"

	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/conversation"
)

// ArchiveConversation archives a conversation; it accepts no further message.
type ArchiveConversation struct {
	Actor          access.Actor
	ConversationID string
	IfMatch        *int
}

// ArchiveConversationHandler handles ArchiveConversation.
type ArchiveConversationHandler struct {
	repos *repositories
}

// Handle archives the conversation (editors and owners).
func (h *ArchiveConversationHandler) Handle(ctx context.Context, cmd ArchiveConversation) (ConversationResult, error) {
	return h.repos.inConversation(ctx, cmd.Actor, access.ArchiveConversation, cmd.ConversationID, cmd.IfMatch,
		func(c *conversation.Conversation) error { return c.Archive() })
}
