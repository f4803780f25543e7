// Package workspace is the workspace aggregate: a named, configurable space
// shared by members who are viewers, editors or owners. Its stream is
// "workspace-<id>". A workspace always keeps at least one owner, and once
// archived it accepts no further change.
package workspace

import (
	"bytes"
	"encoding/json"
	"maps"

	"github.com/engramhq/engram/domain"
)

// StreamType is the stream type of workspace streams.
const StreamType = "workspace"

// StreamID returns the stream identifier of the workspace with the given id.
func StreamID(id string) string { return domain.StreamID(StreamType, id) }

// Member roles, from least to most powerful.
const (
	RoleViewer = "viewer" // reads the workspace
	RoleEditor = "editor" // reads and writes its conversations and memory
	RoleOwner  = "owner"  // also manages the workspace and its members
)

// Rule limits.
const (
	MaxNameRunes        = 100
	MaxDescriptionRunes = 2000
)

// Workspace is the workspace aggregate. The zero value is an empty aggregate
// ready to have stored events applied.
type Workspace struct {
	domain.Root

	id          string
	ownerID     string
	name        string
	description string
	config      json.RawMessage
	members     map[string]string // user id → role
	archived    bool
}

// Create validates a new workspace and records workspace.created. The name is
// 1–100 characters, the description at most 2,000, and config a JSON object
// of at most 16 KiB ({} when absent). ownerID becomes a member with the role
// "owner".
func Create(id, ownerID, name, description string, config json.RawMessage) (*Workspace, error) {
	var v domain.Validation
	v.ID("workspace_id", id)
	v.ID("owner_id", ownerID)
	name = v.Text("name", name, 1, MaxNameRunes)
	description = v.Text("description", description, 0, MaxDescriptionRunes)
	config = v.Object("config", config)
	if err := v.Err(); err != nil {
		return nil, err
	}
	w := &Workspace{}
	w.Record(w.Apply, Created{WorkspaceID: id, OwnerID: ownerID, Name: name, Description: description, Config: config})
	return w, nil
}

// Update changes the name, the description and the config; a nil argument
// (an empty config included) leaves that field unchanged. Only changed fields
// are recorded, and nothing is recorded when nothing changed. An archived
// workspace fails with CodeConflict.
func (w *Workspace) Update(name, description *string, config json.RawMessage) error {
	if err := w.checkActive(); err != nil {
		return err
	}
	var (
		v  domain.Validation
		ev Updated
	)
	ev.Name = v.ChangedText("name", name, w.name, 1, MaxNameRunes)
	ev.Description = v.ChangedText("description", description, w.description, 0, MaxDescriptionRunes)
	if len(config) > 0 {
		c := v.Object("config", config)
		if !bytes.Equal(c, w.config) {
			ev.Config = c
		}
	}
	if err := v.Err(); err != nil {
		return err
	}
	if ev.Name == nil && ev.Description == nil && ev.Config == nil {
		return nil
	}
	w.Record(w.Apply, ev)
	return nil
}

// AddMember makes userID a member with role (viewer, editor or owner), or
// changes the role of an existing member. It fails with CodeConflict when the
// member already has that role, when the change would leave the workspace
// without an owner, or when the workspace is archived.
func (w *Workspace) AddMember(userID, role string) error {
	if err := w.checkActive(); err != nil {
		return err
	}
	var v domain.Validation
	v.ID("user_id", userID)
	v.OneOf("role", role, RoleViewer, RoleEditor, RoleOwner)
	if err := v.Err(); err != nil {
		return err
	}
	current, ok := w.members[userID]
	switch {
	case ok && current == role:
		return domain.Errorf(domain.CodeConflict, "already a member with that role")
	case current == RoleOwner && w.owners() == 1:
		return domain.Errorf(domain.CodeConflict, "the last owner cannot be demoted")
	}
	w.Record(w.Apply, MemberAdded{UserID: userID, Role: role})
	return nil
}

// RemoveMember removes userID from the members. It fails with CodeNotFound
// when userID is not a member, and with CodeConflict for the last owner or
// when the workspace is archived.
func (w *Workspace) RemoveMember(userID string) error {
	if err := w.checkActive(); err != nil {
		return err
	}
	role, ok := w.members[userID]
	switch {
	case !ok:
		return domain.Errorf(domain.CodeNotFound, "not a member of this workspace")
	case role == RoleOwner && w.owners() == 1:
		return domain.Errorf(domain.CodeConflict, "the last owner cannot leave")
	}
	w.Record(w.Apply, MemberRemoved{UserID: userID})
	return nil
}

// Archive archives the workspace. Archiving twice fails with CodeConflict.
func (w *Workspace) Archive() error {
	if err := w.checkActive(); err != nil {
		return err
	}
	w.Record(w.Apply, Archived{})
	return nil
}

func (w *Workspace) checkActive() error {
	if w.archived {
		return domain.Errorf(domain.CodeConflict, "workspace is archived")
	}
	return nil
}

func (w *Workspace) owners() int {
	n := 0
	for _, r := range w.members {
		if r == RoleOwner {
			n++
		}
	}
	return n
}

// Apply changes the state by one event; it is used both when recording new
// events and when loading stored ones, and it never fails.
func (w *Workspace) Apply(e domain.Event) {
	w.Applied()
	switch e := e.(type) {
	case Created:
		w.id = e.WorkspaceID
		w.ownerID = e.OwnerID
		w.name = e.Name
		w.description = e.Description
		w.config = e.Config
		w.members = map[string]string{e.OwnerID: RoleOwner}
	case Updated:
		if e.Name != nil {
			w.name = *e.Name
		}
		if e.Description != nil {
			w.description = *e.Description
		}
		if e.Config != nil {
			w.config = e.Config
		}
	case MemberAdded:
		if w.members == nil {
			w.members = map[string]string{}
		}
		w.members[e.UserID] = e.Role
	case MemberRemoved:
		delete(w.members, e.UserID)
	case Archived:
		w.archived = true
	}
}

// ID returns the workspace's identifier.
func (w *Workspace) ID() string { return w.id }

// Name returns the workspace's name.
func (w *Workspace) Name() string { return w.name }

// Description returns the workspace's description.
func (w *Workspace) Description() string { return w.description }

// Config returns a copy of the configuration, a canonical JSON object.
func (w *Workspace) Config() json.RawMessage { return bytes.Clone(w.config) }

// OwnerID returns the user who created the workspace (its first owner).
func (w *Workspace) OwnerID() string { return w.ownerID }

// Archived reports whether the workspace is archived.
func (w *Workspace) Archived() bool { return w.archived }

// MemberRole returns the role of userID and whether userID is a member.
func (w *Workspace) MemberRole(userID string) (string, bool) {
	r, ok := w.members[userID]
	return r, ok
}

// Members returns a copy of the members, user id → role.
func (w *Workspace) Members() map[string]string { return maps.Clone(w.members) }
