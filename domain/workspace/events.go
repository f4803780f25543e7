package workspace

import (
	"encoding/json"

	"github.com/engramhq/engram/domain"
)

// Event type names of the workspace stream; they never change once stored.
const (
	EventCreated       = "workspace.created"
	EventUpdated       = "workspace.updated"
	EventMemberAdded   = "workspace.member_added"
	EventMemberRemoved = "workspace.member_removed"
	EventArchived      = "workspace.archived"
)

// Created records a new workspace; its owner is its first member, with the
// role "owner".
type Created struct {
	WorkspaceID string          `json:"workspace_id"`
	OwnerID     string          `json:"owner_id"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Config      json.RawMessage `json:"config"`
}

// EventType returns "workspace.created".
func (Created) EventType() string { return EventCreated }

// Updated records the fields that changed; absent fields did not change.
type Updated struct {
	Name        *string         `json:"name,omitempty"`
	Description *string         `json:"description,omitempty"`
	Config      json.RawMessage `json:"config,omitempty"`
}

// EventType returns "workspace.updated".
func (Updated) EventType() string { return EventUpdated }

// MemberAdded records that a user became a member, or that a member's role
// changed.
type MemberAdded struct {
	UserID string `json:"user_id"`
	Role   string `json:"role"`
}

// EventType returns "workspace.member_added".
func (MemberAdded) EventType() string { return EventMemberAdded }

// MemberRemoved records that a user stopped being a member.
type MemberRemoved struct {
	UserID string `json:"user_id"`
}

// EventType returns "workspace.member_removed".
func (MemberRemoved) EventType() string { return EventMemberRemoved }

// Archived records that the workspace was archived; it accepts no further change.
type Archived struct{}

// EventType returns "workspace.archived".
func (Archived) EventType() string { return EventArchived }

// decoder reads the stored events of workspace streams.
var decoder = domain.Decoder{
	EventCreated:       domain.As(func(e *Created) error { return domain.Canonical(&e.Config) }),
	EventUpdated:       domain.As(func(e *Updated) error { return domain.CanonicalIfSet(&e.Config) }),
	EventMemberAdded:   domain.As[MemberAdded](),
	EventMemberRemoved: domain.As[MemberRemoved](),
	EventArchived:      domain.As[Archived](),
}

// Decode turns a stored event of the workspace stream back into its event
// struct, with config in canonical form (see domain.CanonicalObject). It
// fails with domain.ErrUnknownEvent for an unknown type or schema version;
// upcasters from older schema versions belong in its table.
func Decode(eventType string, schemaVersion int, data []byte) (domain.Event, error) {
	return decoder.Decode(eventType, schemaVersion, data)
}
