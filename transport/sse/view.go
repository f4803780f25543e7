package sse

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/apikey"
	"github.com/engramhq/engram/domain/catalog"
	"github.com/engramhq/engram/domain/session"
	"github.com/engramhq/engram/domain/workspace"
	"github.com/engramhq/engram/eventstore"
)

// maxViewEntries bounds each map of the view; an evicted entry is read
// again from the log when needed.
const maxViewEntries = 100_000

// view is the hub's knowledge of who may see what: the members of each
// workspace and the owner of each stream (the workspace of a conversation,
// the user of a session). It is a cache of the event log: the hub keeps it
// current from the events it handles, in commit order, and a miss is read
// from the log itself, which is never behind the hub (read models may be).
// It is safe for concurrent use.
type view struct {
	log Log

	mu         sync.RWMutex
	workspaces map[string]*membership // by workspace id
	owners     map[string]owner       // by stream id
}

// membership is the members of one workspace, folded from its stream.
type membership struct {
	version  int
	members  map[string]string // user id → role
	archived bool
}

func (m *membership) apply(e domain.Event) {
	switch e := e.(type) {
	case workspace.Created:
		m.members = map[string]string{e.OwnerID: workspace.RoleOwner}
	case workspace.MemberAdded:
		if m.members == nil {
			m.members = map[string]string{}
		}
		m.members[e.UserID] = e.Role
	case workspace.MemberRemoved:
		delete(m.members, e.UserID)
	case workspace.Archived:
		m.archived = true
	}
	m.version++
}

// owner is what the first event of a stream says it belongs to.
type owner struct {
	WorkspaceID    string `json:"workspace_id"`
	ConversationID string `json:"conversation_id"`
	UserID         string `json:"user_id"`
}

func newView(log Log) *view {
	return &view{log: log, workspaces: map[string]*membership{}, owners: map[string]owner{}}
}

// change is an access change that observe found.
type change struct {
	// memberRemoved is the user removed from workspace, if any.
	workspace, memberRemoved string
	// sessionRevoked and keyRevoked are a revoked credential, if any.
	sessionRevoked, keyRevoked string
}

// observe updates the view with the next event in commit order and reports
// what it changes in access.
func (v *view) observe(e eventstore.Event) (change, error) {
	var ch change
	switch e.StreamType {
	case workspace.StreamType:
		ev, err := workspace.Decode(e.Type, e.SchemaVersion, e.Data)
		if err != nil {
			return ch, fmt.Errorf("event %d: %w", e.GlobalPosition, err)
		}
		id := catalog.Workspaces.ID(e.StreamID)
		v.mu.Lock()
		m, known := v.workspaces[id]
		switch {
		case !known && e.StreamVersion == 1:
			m = &membership{}
			m.apply(ev)
			v.putWorkspace(id, m)
		case !known:
			// Read from the log when first needed.
		case e.StreamVersion == m.version+1:
			m.apply(ev)
		case e.StreamVersion > m.version+1:
			delete(v.workspaces, id) // missed events: read it again when needed
		}
		v.mu.Unlock()
		if r, ok := ev.(workspace.MemberRemoved); ok {
			ch.workspace, ch.memberRemoved = id, r.UserID
		}
	case session.StreamType:
		if e.Type == session.EventRevoked {
			ch.sessionRevoked = catalog.Sessions.ID(e.StreamID)
		}
	case apikey.StreamType:
		if e.Type == apikey.EventRevoked {
			ch.keyRevoked = catalog.APIKeys.ID(e.StreamID)
		}
	}
	if e.StreamVersion == 1 && catalog.ScopeOf(e.StreamType).FromFirstEvent() {
		var o owner
		if err := json.Unmarshal(e.Data, &o); err != nil {
			return ch, fmt.Errorf("event %d: owner: %w", e.GlobalPosition, err)
		}
		v.mu.Lock()
		v.putOwner(e.StreamID, o)
		v.mu.Unlock()
	}
	return ch, nil
}

// subject says whom e concerns, as its stream type's scope in the
// catalogue says, reading from the log what the view misses.
func (v *view) subject(ctx context.Context, e eventstore.Event) (subject, error) {
	id := strings.TrimPrefix(e.StreamID, e.StreamType+"-")
	scope := catalog.ScopeOf(e.StreamType)
	switch scope {
	case catalog.ScopeUser:
		return subject{userID: id}, nil
	case catalog.ScopeWorkspace:
		s := subject{workspaceID: id}
		if e.Type == workspace.EventMemberAdded || e.Type == workspace.EventMemberRemoved {
			var m struct {
				UserID string `json:"user_id"`
			}
			if err := json.Unmarshal(e.Data, &m); err != nil {
				return subject{}, fmt.Errorf("event %d: member: %w", e.GlobalPosition, err)
			}
			s.aboutUserID = m.UserID
		}
		return s, nil
	}
	o, _, err := v.owner(ctx, e.StreamID)
	if err != nil {
		return subject{}, err
	}
	switch scope {
	case catalog.ScopeFirstEventUser:
		return subject{userID: o.UserID}, nil
	case catalog.ScopeConversation:
		return subject{workspaceID: o.WorkspaceID, conversationID: id}, nil
	}
	// The others (tasks…) belong to the workspace, and possibly the
	// conversation, that their first event names.
	s := subject{workspaceID: o.WorkspaceID, conversationID: o.ConversationID}
	if s.workspaceID == "" && s.conversationID != "" {
		c, _, err := v.owner(ctx, catalog.Conversations.StreamID(s.conversationID))
		if err != nil {
			return subject{}, err
		}
		s.workspaceID = c.WorkspaceID
	}
	return s, nil
}

// owner returns what the first event of a stream says it belongs to, and
// false when the stream does not exist.
func (v *view) owner(ctx context.Context, streamID string) (owner, bool, error) {
	v.mu.RLock()
	o, ok := v.owners[streamID]
	v.mu.RUnlock()
	if ok {
		return o, true, nil
	}
	first, found, err := v.log.FirstEvent(ctx, streamID)
	if err != nil || !found {
		return owner{}, false, err
	}
	if err := json.Unmarshal(first.Data, &o); err != nil {
		return owner{}, false, fmt.Errorf("owner of %s: %w", streamID, err)
	}
	v.mu.Lock()
	v.putOwner(streamID, o)
	v.mu.Unlock()
	return o, true, nil
}

// role returns userID's role in a workspace ("" when not a member) and
// whether the workspace exists, reading the workspace from the log on a miss.
func (v *view) role(ctx context.Context, workspaceID, userID string) (string, bool, error) {
	if err := v.ensure(ctx, workspaceID); err != nil {
		return "", false, err
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	m, ok := v.workspaces[workspaceID]
	if !ok || m.version == 0 {
		return "", false, nil
	}
	return m.members[userID], true, nil
}

// archived reports whether the workspace is archived, as far as the view
// knows (call currentRole first for the log's latest word).
func (v *view) archived(workspaceID string) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	m, ok := v.workspaces[workspaceID]
	return ok && m.archived
}

// currentRole is role with the membership as the log has it now, which may
// be ahead of the hub: the events the hub has not handled yet are applied
// (the hub skips them later, by version).
func (v *view) currentRole(ctx context.Context, workspaceID, userID string) (string, bool, error) {
	if err := v.refresh(ctx, workspaceID); err != nil {
		return "", false, err
	}
	return v.role(ctx, workspaceID, userID)
}

// refresh applies the workspace's events that the view has not seen yet.
func (v *view) refresh(ctx context.Context, workspaceID string) error {
	v.mu.RLock()
	m, ok := v.workspaces[workspaceID]
	version := 0
	if ok {
		version = m.version
	}
	v.mu.RUnlock()
	if !ok {
		return v.ensure(ctx, workspaceID)
	}
	events, err := v.log.ReadStream(ctx, workspace.StreamID(workspaceID), version)
	if err != nil || len(events) == 0 {
		return err
	}
	decoded := make([]domain.Event, len(events))
	for i, e := range events {
		if decoded[i], err = workspace.Decode(e.Type, e.SchemaVersion, e.Data); err != nil {
			return fmt.Errorf("members of workspace %s: %w", workspaceID, err)
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if m, ok = v.workspaces[workspaceID]; !ok {
		return nil // evicted meanwhile: read again when needed
	}
	for i, e := range events {
		if e.StreamVersion == m.version+1 {
			m.apply(decoded[i])
		}
	}
	return nil
}

// ensure reads a workspace's membership from the log unless the view has it.
func (v *view) ensure(ctx context.Context, workspaceID string) error {
	v.mu.RLock()
	_, ok := v.workspaces[workspaceID]
	v.mu.RUnlock()
	if ok {
		return nil
	}
	events, err := v.log.ReadStream(ctx, workspace.StreamID(workspaceID), 0)
	if err != nil {
		return fmt.Errorf("members of workspace %s: %w", workspaceID, err)
	}
	m := &membership{}
	for _, e := range events {
		ev, err := workspace.Decode(e.Type, e.SchemaVersion, e.Data)
		if err != nil {
			return fmt.Errorf("members of workspace %s: %w", workspaceID, err)
		}
		m.apply(ev)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	// The log is never behind the hub: keep whichever is newer.
	if cur, ok := v.workspaces[workspaceID]; !ok || cur.version < m.version {
		v.putWorkspace(workspaceID, m)
	}
	return nil
}

// cachedRole is role without reading the log: for the fan-out, which has
// ensured the workspace beforehand.
func (v *view) cachedRole(workspaceID, userID string) string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if m, ok := v.workspaces[workspaceID]; ok {
		return m.members[userID]
	}
	return ""
}

// memberCount returns the number of members of a workspace in the view.
func (v *view) memberCount(workspaceID string) int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if m, ok := v.workspaces[workspaceID]; ok {
		return len(m.members)
	}
	return 0
}

// eachMember calls fn for every member of a workspace in the view. fn must
// not call the view.
func (v *view) eachMember(workspaceID string, fn func(userID, role string)) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if m, ok := v.workspaces[workspaceID]; ok {
		for u, r := range m.members {
			fn(u, r)
		}
	}
}

// putWorkspace and putOwner insert with v.mu held, evicting an arbitrary
// entry when the map is full.
func (v *view) putWorkspace(id string, m *membership) {
	if _, ok := v.workspaces[id]; !ok && len(v.workspaces) >= maxViewEntries {
		for k := range v.workspaces {
			delete(v.workspaces, k)
			break
		}
	}
	v.workspaces[id] = m
}

func (v *view) putOwner(streamID string, o owner) {
	if _, ok := v.owners[streamID]; !ok && len(v.owners) >= maxViewEntries {
		for k := range v.owners {
			delete(v.owners, k)
			break
		}
	}
	v.owners[streamID] = o
}
