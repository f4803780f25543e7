package commands

import (
	"context"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/memory"
)

// DeleteMemoryItem forgets an item of a workspace's whiteboard.
type DeleteMemoryItem struct {
	Actor       access.Actor
	WorkspaceID string
	ItemID      string
}

// DeleteMemoryItemHandler handles DeleteMemoryItem.
type DeleteMemoryItemHandler struct {
	repos *cognitionRepositories
}

// Handle records memory.item_deleted (editors and owners). It fails with
// CodeNotFound when the workspace has no such item, and with CodeConflict
// when the workspace is archived.
func (h *DeleteMemoryItemHandler) Handle(ctx context.Context, cmd DeleteMemoryItem) (MemoryItemResult, error) {
	ws, err := h.repos.authorizeInWorkspace(ctx, cmd.Actor, access.ManageMemory, cmd.WorkspaceID)
	if err != nil {
		return MemoryItemResult{}, err
	}
	if err := validID("item_id", cmd.ItemID); err != nil {
		return MemoryItemResult{}, domain.Errorf(domain.CodeNotFound, "memory item not found")
	}
	if err := requireActive(ws); err != nil {
		return MemoryItemResult{}, err
	}
	w, err := h.repos.changeBoard(withActor(ctx, cmd.Actor.UserID), cmd.WorkspaceID, func(w *memory.Whiteboard) error {
		return w.Delete(cmd.ItemID)
	})
	if err != nil {
		return MemoryItemResult{}, err
	}
	return MemoryItemResult{ItemID: cmd.ItemID, WorkspaceID: cmd.WorkspaceID, Written: w}, nil
}
