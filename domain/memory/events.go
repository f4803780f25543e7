package memory

import (
	"encoding/json"
	"time"

	"github.com/engramhq/engram/domain"
)

// Event type names of the memory stream; they never change once stored.
const (
	EventItemStored  = "memory.item_stored"
	EventItemUpdated = "memory.item_updated"
	EventItemDeleted = "memory.item_deleted"
)

// ItemStored records a new item on the workspace's whiteboard. ExpiresAt is
// absent for an item that never expires; SourceMessageID names the message
// the item was taken from, if any.
type ItemStored struct {
	ItemID          string          `json:"item_id"`
	Type            string          `json:"type"`
	Content         string          `json:"content"`
	Metadata        json.RawMessage `json:"metadata"`
	ExpiresAt       *time.Time      `json:"expires_at,omitempty"`
	SourceMessageID string          `json:"source_message_id,omitempty"`
}

// EventType returns "memory.item_stored".
func (ItemStored) EventType() string { return EventItemStored }

// ItemUpdated records the fields of an item that changed; absent fields did
// not change. Metadata, when present, is the full metadata after the change.
type ItemUpdated struct {
	ItemID          string          `json:"item_id"`
	Content         *string         `json:"content,omitempty"`
	Metadata        json.RawMessage `json:"metadata,omitempty"`
	ExpiresAt       *time.Time      `json:"expires_at,omitempty"`
	SourceMessageID string          `json:"source_message_id,omitempty"`
}

// EventType returns "memory.item_updated".
func (ItemUpdated) EventType() string { return EventItemUpdated }

// ItemDeleted records that an item was forgotten.
type ItemDeleted struct {
	ItemID string `json:"item_id"`
}

// EventType returns "memory.item_deleted".
func (ItemDeleted) EventType() string { return EventItemDeleted }

// decoder reads the stored events of memory streams.
var decoder = domain.Decoder{
	EventItemStored: domain.As(func(e *ItemStored) error {
		e.ExpiresAt = domain.UTC(e.ExpiresAt)
		return domain.Canonical(&e.Metadata)
	}),
	EventItemUpdated: domain.As(func(e *ItemUpdated) error {
		e.ExpiresAt = domain.UTC(e.ExpiresAt)
		return domain.CanonicalIfSet(&e.Metadata)
	}),
	EventItemDeleted: domain.As[ItemDeleted](),
}

// Decode turns a stored event of the memory stream back into its event
// struct, with metadata in canonical form (see domain.CanonicalObject) and
// times in UTC. It fails with domain.ErrUnknownEvent for an unknown type or
// schema version; upcasters from older schema versions belong in its table.
func Decode(eventType string, schemaVersion int, data []byte) (domain.Event, error) {
	return decoder.Decode(eventType, schemaVersion, data)
}
