package commands

import (
	"context"
	"encoding/json"
	"time"

	"github.com/engramhq/engram/domain/memory"
)

// RememberMessage stores a posted message in its workspace's memory, as an
// item of type message. The caller chooses the item's id: a deterministic
// one (derived from the message) keeps a message from being stored twice.
type RememberMessage struct {
	ConversationID string
	MessageID      string
	ItemID         string
	Role           string
	AuthorID       string
	Content        string
}

// MemoryItemResult says which memory item a command stored or changed.
type MemoryItemResult struct {
	ItemID      string
	WorkspaceID string
	// AlreadyRemembered is true when the message had been remembered
	// before: nothing was written.
	AlreadyRemembered bool
	Written
}

// RememberMessageHandler handles RememberMessage.
type RememberMessageHandler struct {
	repos *cognitionRepositories
	now   func() time.Time
}

// Handle records memory.item_stored in the memory of the conversation's
// workspace, with the metadata {conversation_id, message_id, role,
// author_id}. When the message was already remembered it writes nothing.
func (h *RememberMessageHandler) Handle(ctx context.Context, cmd RememberMessage) (MemoryItemResult, error) {
	metadata, err := json.Marshal(map[string]string{"conversation_id": cmd.ConversationID, "message_id": cmd.MessageID,
		"role": cmd.Role, "author_id": cmd.AuthorID})
	if err != nil {
		return MemoryItemResult{}, err
	}
	now := h.now()
	out, err := h.repos.rememberOnce(ctx, cmd.ConversationID, cmd.MessageID, func(w *memory.Whiteboard) (string, error) {
		return cmd.ItemID, w.Store(cmd.ItemID, memory.TypeMessage, cmd.Content, metadata, nil, cmd.MessageID, now)
	})
	if out.AlreadyRemembered {
		out.ItemID = cmd.ItemID // the message's item, stored before
	}
	return out, err
}
