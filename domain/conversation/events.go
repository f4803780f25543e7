package conversation

import (
	"encoding/json"
	"fmt"

	"github.com/engramhq/engram/domain"
)

// Event type names of the conversation stream; they never change once stored.
const (
	EventCreated        = "conversation.created"
	EventUpdated        = "conversation.updated"
	EventMessagePosted  = "conversation.message_posted"
	EventRoutingDecided = "conversation.routing_decided"
	EventArchived       = "conversation.archived"
)

// Created records a new conversation in a workspace.
type Created struct {
	ConversationID string          `json:"conversation_id"`
	WorkspaceID    string          `json:"workspace_id"`
	CreatedBy      string          `json:"created_by"`
	Title          string          `json:"title"`
	Modality       string          `json:"modality"`
	Metadata       json.RawMessage `json:"metadata"`
}

// Updated records the fields that changed; absent fields did not change.
// Metadata, when present, is the full metadata after the merge patch.
type Updated struct {
	Title    *string         `json:"title,omitempty"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// MessagePosted records a message. Content is stored as given.
type MessagePosted struct {
	MessageID string          `json:"message_id"`
	AuthorID  string          `json:"author_id"`
	Role      string          `json:"role"`
	Content   string          `json:"content"`
	Metadata  json.RawMessage `json:"metadata"`
}

// RoutingDecided records how the router decided to handle a message.
type RoutingDecided struct {
	MessageID string `json:"message_id"`
	Action    string `json:"action"`
	Expert    string `json:"expert,omitempty"`
	Priority  int    `json:"priority"`
	Reason    string `json:"reason"`
}

// Archived records that the conversation was archived; it accepts no further change.
type Archived struct{}

// EventType returns "conversation.created".
func (Created) EventType() string { return EventCreated }

// EventType returns "conversation.updated".
func (Updated) EventType() string { return EventUpdated }

// EventType returns "conversation.message_posted".
func (MessagePosted) EventType() string { return EventMessagePosted }

// EventType returns "conversation.routing_decided".
func (RoutingDecided) EventType() string { return EventRoutingDecided }

// EventType returns "conversation.archived".
func (Archived) EventType() string { return EventArchived }

// Decode turns a stored event of the conversation stream back into its event
// struct, with metadata in canonical form (see domain.CanonicalObject). It
// fails with domain.ErrUnknownEvent for an unknown type or schema version;
// upcasters from older schema versions belong here.
func Decode(eventType string, schemaVersion int, data []byte) (domain.Event, error) {
	if schemaVersion != 1 {
		return nil, fmt.Errorf("decode %s v%d: %w", eventType, schemaVersion, domain.ErrUnknownEvent)
	}
	var (
		e   domain.Event
		err error
	)
	switch eventType {
	case EventCreated:
		var c Created
		if err = json.Unmarshal(data, &c); err == nil {
			c.Metadata, err = domain.CanonicalObject(c.Metadata)
		}
		e = c
	case EventUpdated:
		var u Updated
		if err = json.Unmarshal(data, &u); err == nil && u.Metadata != nil {
			u.Metadata, err = domain.CanonicalObject(u.Metadata)
		}
		e = u
	case EventMessagePosted:
		var m MessagePosted
		if err = json.Unmarshal(data, &m); err == nil {
			m.Metadata, err = domain.CanonicalObject(m.Metadata)
		}
		e = m
	case EventRoutingDecided:
		var r RoutingDecided
		err = json.Unmarshal(data, &r)
		e = r
	case EventArchived:
		var a Archived
		err = json.Unmarshal(data, &a)
		e = a
	default:
		return nil, fmt.Errorf("decode %s v%d: %w", eventType, schemaVersion, domain.ErrUnknownEvent)
	}
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", eventType, err)
	}
	return e, nil
}
