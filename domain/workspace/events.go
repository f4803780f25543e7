package workspace

import (
	"encoding/json"
	"fmt"

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

// Updated records the fields that changed; absent fields did not change.
type Updated struct {
	Name        *string         `json:"name,omitempty"`
	Description *string         `json:"description,omitempty"`
	Config      json.RawMessage `json:"config,omitempty"`
}

// MemberAdded records that a user became a member, or that a member's role
// changed.
type MemberAdded struct {
	UserID string `json:"user_id"`
	Role   string `json:"role"`
}

// MemberRemoved records that a user stopped being a member.
type MemberRemoved struct {
	UserID string `json:"user_id"`
}

// Archived records that the workspace was archived; it accepts no further change.
type Archived struct{}

// EventType returns "workspace.created".
func (Created) EventType() string { return EventCreated }

// EventType returns "workspace.updated".
func (Updated) EventType() string { return EventUpdated }

// EventType returns "workspace.member_added".
func (MemberAdded) EventType() string { return EventMemberAdded }

// EventType returns "workspace.member_removed".
func (MemberRemoved) EventType() string { return EventMemberRemoved }

// EventType returns "workspace.archived".
func (Archived) EventType() string { return EventArchived }

// Decode turns a stored event of the workspace stream back into its event
// struct, with config in canonical form (see domain.CanonicalObject). It fails
// with domain.ErrUnknownEvent for an unknown type or schema version;
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
			c.Config, err = domain.CanonicalObject(c.Config)
		}
		e = c
	case EventUpdated:
		var u Updated
		if err = json.Unmarshal(data, &u); err == nil && u.Config != nil {
			u.Config, err = domain.CanonicalObject(u.Config)
		}
		e = u
	case EventMemberAdded:
		var m MemberAdded
		err = json.Unmarshal(data, &m)
		e = m
	case EventMemberRemoved:
		var m MemberRemoved
		err = json.Unmarshal(data, &m)
		e = m
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
