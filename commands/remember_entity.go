package commands

import (
	"context"

	"github.com/engramhq/engram/domain/memory"
)

// RememberEntity stores what a message says about a named entity in its
// workspace's memory (the "/remember" command): a known entity of that name
// is updated, otherwise a new entity item ItemID is stored.
type RememberEntity struct {
	ConversationID string
	MessageID      string
	ItemID         string
	Name           string
	Content        string
}

// RememberEntityHandler handles RememberEntity.
type RememberEntityHandler struct {
	repos *cognitionRepositories
}

// Handle records memory.item_stored or memory.item_updated (see
// memory.Whiteboard.Remember). When the message was already remembered it
// writes nothing.
func (h *RememberEntityHandler) Handle(ctx context.Context, cmd RememberEntity) (MemoryItemResult, error) {
	return h.repos.rememberOnce(ctx, cmd.ConversationID, cmd.MessageID, func(w *memory.Whiteboard) (string, error) {
		return w.Remember(cmd.ItemID, cmd.Name, cmd.Content, cmd.MessageID)
	})
}
