package commands

import (
	"context"
	"encoding/json"
	"time"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/memory"
)

// StoreMemoryItem puts an item on a workspace's whiteboard.
type StoreMemoryItem struct {
	Actor       access.Actor
	WorkspaceID string
	Type        string
	Content     string
	Metadata    json.RawMessage
	// ExpiresAt, when set, is when the item stops being recalled.
	ExpiresAt *time.Time
}

// StoreMemoryItemHandler handles StoreMemoryItem.
type StoreMemoryItemHandler struct {
	repos *cognitionRepositories
	now   func() time.Time
}

// Handle records memory.item_stored (editors and owners). It fails with
// CodeConflict when the workspace is archived.
func (h *StoreMemoryItemHandler) Handle(ctx context.Context, cmd StoreMemoryItem) (MemoryItemResult, error) {
	ws, err := h.repos.authorizeInWorkspace(ctx, cmd.Actor, access.ManageMemory, cmd.WorkspaceID)
	if err != nil {
		return MemoryItemResult{}, err
	}
	if ws.Archived {
		return MemoryItemResult{}, domain.Errorf(domain.CodeConflict, "workspace is archived")
	}
	id, now := newID(), h.now()
	w, err := h.repos.changeBoard(withActor(ctx, cmd.Actor.UserID), cmd.WorkspaceID, func(w *memory.Whiteboard) error {
		return w.Store(id, cmd.Type, cmd.Content, cmd.Metadata, cmd.ExpiresAt, "", now)
	})
	if err != nil {
		return MemoryItemResult{}, err
	}
	return MemoryItemResult{ItemID: id, WorkspaceID: cmd.WorkspaceID, Written: w}, nil
}
