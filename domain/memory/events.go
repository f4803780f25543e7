package memory

import (
	"encoding/json"
	"fmt"
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

// ItemUpdated records the fields of an item that changed; absent fields did
// not change. Metadata, when present, is the full metadata after the change.
type ItemUpdated struct {
	ItemID          string          `json:"item_id"`
	Content         *string         `json:"content,omitempty"`
	Metadata        json.RawMessage `json:"metadata,omitempty"`
	ExpiresAt       *time.Time      `json:"expires_at,omitempty"`
	SourceMessageID string          `json:"source_message_id,omitempty"`
}

// ItemDeleted records that an item was forgotten.
type ItemDeleted struct {
	ItemID string `json:"item_id"`
}

// EventType returns "memory.item_stored".
func (ItemStored) EventType() string { return EventItemStored }

// EventType returns "memory.item_updated".
func (ItemUpdated) EventType() string { return EventItemUpdated }

// EventType returns "memory.item_deleted".
func (ItemDeleted) EventType() string { return EventItemDeleted }

// Decode turns a stored event of the memory stream back into its event
// struct, with metadata in canonical form (see domain.CanonicalObject) and
// times in UTC. It fails with domain.ErrUnknownEvent for an unknown type or
// schema version; upcasters from older schema versions belong here.
func Decode(eventType string, schemaVersion int, data []byte) (domain.Event, error) {
	if schemaVersion != 1 {
		return nil, fmt.Errorf("decode %s v%d: %w", eventType, schemaVersion, domain.ErrUnknownEvent)
	}
	var (
		e   domain.Event
		err error
	)
	switch eventType {
	case EventItemStored:
		var s ItemStored
		if err = json.Unmarshal(data, &s); err == nil {
			s.Metadata, err = domain.CanonicalObject(s.Metadata)
			s.ExpiresAt = utc(s.ExpiresAt)
		}
		e = s
	case EventItemUpdated:
		var u ItemUpdated
		if err = json.Unmarshal(data, &u); err == nil && u.Metadata != nil {
			u.Metadata, err = domain.CanonicalObject(u.Metadata)
		}
		u.ExpiresAt = utc(u.ExpiresAt)
		e = u
	case EventItemDeleted:
		var d ItemDeleted
		err = json.Unmarshal(data, &d)
		e = d
	default:
		return nil, fmt.Errorf("decode %s v%d: %w", eventType, schemaVersion, domain.ErrUnknownEvent)
	}
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", eventType, err)
	}
	return e, nil
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
