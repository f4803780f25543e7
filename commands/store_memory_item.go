package commands

import (
	"context"
	"encoding/json"
	"time"

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
	// Idempotency, when set, applies the command once per key.
	Idempotency *Idempotency[StoredItemResult]
}

// StoredItemResult is the item a StoreMemoryItem stored, as the
// workspace's whiteboard recorded it.
type StoredItemResult struct {
	WorkspaceID string
	Item        memory.ItemStored
	Written
}

// StoreMemoryItemHandler handles StoreMemoryItem.
type StoreMemoryItemHandler struct {
	repos *cognitionRepositories
	now   func() time.Time
}

// Handle records memory.item_stored (editors and owners). It fails with
// CodeConflict when the workspace is archived.
func (h *StoreMemoryItemHandler) Handle(ctx context.Context, cmd StoreMemoryItem) (StoredItemResult, error) {
	if err := h.repos.authorizeActive(ctx, cmd.Actor, access.ManageMemory, cmd.WorkspaceID); err != nil {
		return StoredItemResult{}, err
	}
	id, now := newID(), h.now()
	var stored memory.ItemStored
	result := func(w Written) StoredItemResult {
		return StoredItemResult{WorkspaceID: cmd.WorkspaceID, Item: stored, Written: w}
	}
	w, err := h.repos.changeBoard(withActor(ctx, cmd.Actor.UserID), cmd.WorkspaceID, func(w *memory.Whiteboard) error {
		if err := w.Store(id, cmd.Type, cmd.Content, cmd.Metadata, cmd.ExpiresAt, "", now); err != nil {
			return err
		}
		stored = lastPending[memory.ItemStored](w)
		return nil
	}, cmd.Idempotency.appendOptions(result)...)
	if err != nil {
		return StoredItemResult{}, err
	}
	return result(w), nil
}
