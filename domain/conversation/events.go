package conversation

import (
	"encoding/json"

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

// EventType returns "conversation.created".
func (Created) EventType() string { return EventCreated }

// Updated records the fields that changed; absent fields did not change.
// Metadata, when present, is the full metadata after the merge patch.
type Updated struct {
	Title    *string         `json:"title,omitempty"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// EventType returns "conversation.updated".
func (Updated) EventType() string { return EventUpdated }

// MessagePosted records a message. Content is stored as given.
type MessagePosted struct {
	MessageID string          `json:"message_id"`
	AuthorID  string          `json:"author_id"`
	Role      string          `json:"role"`
	Content   string          `json:"content"`
	Metadata  json.RawMessage `json:"metadata"`
}

// EventType returns "conversation.message_posted".
func (MessagePosted) EventType() string { return EventMessagePosted }

// RoutingDecided records how the router decided to handle a message.
type RoutingDecided struct {
	MessageID string `json:"message_id"`
	Action    string `json:"action"`
	Expert    string `json:"expert,omitempty"`
	Priority  int    `json:"priority"`
	Reason    string `json:"reason"`
}

// EventType returns "conversation.routing_decided".
func (RoutingDecided) EventType() string { return EventRoutingDecided }

// Archived records that the conversation was archived; it accepts no further change.
type Archived struct{}

// EventType returns "conversation.archived".
func (Archived) EventType() string { return EventArchived }

// decoder reads the stored events of conversation streams.
var decoder = domain.Decoder{
	EventCreated:        domain.As(func(e *Created) error { return domain.Canonical(&e.Metadata) }),
	EventUpdated:        domain.As(func(e *Updated) error { return domain.CanonicalIfSet(&e.Metadata) }),
	EventMessagePosted:  domain.As(func(e *MessagePosted) error { return domain.Canonical(&e.Metadata) }),
	EventRoutingDecided: domain.As[RoutingDecided](),
	EventArchived:       domain.As[Archived](),
}

// Decode turns a stored event of the conversation stream back into its event
// struct, with metadata in canonical form (see domain.CanonicalObject). It
// fails with domain.ErrUnknownEvent for an unknown type or schema version;
// upcasters from older schema versions belong in its table.
func Decode(eventType string, schemaVersion int, data []byte) (domain.Event, error) {
	return decoder.Decode(eventType, schemaVersion, data)
}
