// Package membership is a projection of the event log kept in memory: the
// members of each recently used workspace, and whether it is archived,
// folded from the workspace's stream.
//
// It is fed every event in commit order (Observe) and so stays as current as
// its feeder; a workspace it does not hold is read from the log itself,
// which is never behind the feeder (read models may be). The live streams
// ask it who may see a workspace's events.
package membership

import (
	"context"
	"fmt"
	"sync"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/catalog"
	"github.com/engramhq/engram/domain/workspace"
	"github.com/engramhq/engram/eventstore"
)

// Log is what the projection reads from the event store (eventstore.Store).
type Log = eventstore.StreamReader

// Workspaces is the membership of recently used workspaces, at most a
// bounded number of them: an evicted workspace is read from the log again
// when it is needed. It is safe for concurrent use.
type Workspaces struct {
	log Log
	max int

	mu sync.RWMutex
	m  map[string]*members // by workspace id
}

// members is the membership of one workspace, folded from its stream.
type members struct {
	version  int
	roles    map[string]string // user id → role
	archived bool
}

func (m *members) apply(e domain.Event) {
	switch e := e.(type) {
	case workspace.Created:
		m.roles = map[string]string{e.OwnerID: workspace.RoleOwner}
	case workspace.MemberAdded:
		if m.roles == nil {
			m.roles = map[string]string{}
		}
		m.roles[e.UserID] = e.Role
	case workspace.MemberRemoved:
		delete(m.roles, e.UserID)
	case workspace.Archived:
		m.archived = true
	}
	m.version++
}

// New returns an empty projection over log that holds at most max
// workspaces.
func New(log Log, max int) *Workspaces {
	return &Workspaces{log: log, max: max, m: map[string]*members{}}
}

// Observe applies the next event of the log, in commit order; events of
// other streams than workspaces are ignored. It returns the workspace and
// the user removed from it when e removes a member, and an error when a
// workspace event cannot be decoded.
func (w *Workspaces) Observe(e eventstore.Event) (workspaceID, removed string, err error) {
	if e.StreamType != workspace.StreamType {
		return "", "", nil
	}
	ev, err := workspace.Decode(e.Type, e.SchemaVersion, e.Data)
	if err != nil {
		return "", "", fmt.Errorf("event %d: %w", e.GlobalPosition, err)
	}
	id := catalog.Workspaces.ID(e.StreamID)
	w.mu.Lock()
	m, known := w.m[id]
	switch {
	case !known && e.StreamVersion == 1:
		m = &members{}
		m.apply(ev)
		w.putLocked(id, m)
	case !known:
		// Read from the log when first needed.
	case e.StreamVersion == m.version+1:
		m.apply(ev)
	case e.StreamVersion > m.version+1:
		delete(w.m, id) // missed events: read it again when needed
	}
	w.mu.Unlock()
	if r, ok := ev.(workspace.MemberRemoved); ok {
		return id, r.UserID, nil
	}
	return "", "", nil
}

// Role returns userID's role in a workspace ("" when not a member) and
// whether the workspace exists, reading the workspace from the log when the
// projection does not hold it.
func (w *Workspaces) Role(ctx context.Context, workspaceID, userID string) (string, bool, error) {
	if err := w.Ensure(ctx, workspaceID); err != nil {
		return "", false, err
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	m, ok := w.m[workspaceID]
	if !ok || m.version == 0 {
		return "", false, nil
	}
	return m.roles[userID], true, nil
}

// CurrentRole is Role with the membership as the log has it now, which may
// be ahead of the feeder: the events not observed yet are applied (Observe
// skips them later, by version).
func (w *Workspaces) CurrentRole(ctx context.Context, workspaceID, userID string) (string, bool, error) {
	if err := w.refresh(ctx, workspaceID); err != nil {
		return "", false, err
	}
	return w.Role(ctx, workspaceID, userID)
}

// Archived reports whether the workspace is archived, as far as the
// projection knows (call CurrentRole first for the log's latest word).
func (w *Workspaces) Archived(workspaceID string) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	m, ok := w.m[workspaceID]
	return ok && m.archived
}

// CachedRole is Role without reading the log: "" when the projection does
// not hold the workspace (call Ensure first).
func (w *Workspaces) CachedRole(workspaceID, userID string) string {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if m, ok := w.m[workspaceID]; ok {
		return m.roles[userID]
	}
	return ""
}

// MemberCount returns the number of members of a workspace the projection
// holds.
func (w *Workspaces) MemberCount(workspaceID string) int {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if m, ok := w.m[workspaceID]; ok {
		return len(m.roles)
	}
	return 0
}

// EachMember calls fn for every member of a workspace the projection holds.
// fn must not call the projection.
func (w *Workspaces) EachMember(workspaceID string, fn func(userID, role string)) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if m, ok := w.m[workspaceID]; ok {
		for u, r := range m.roles {
			fn(u, r)
		}
	}
}

// Ensure reads a workspace's membership from the log unless the projection
// holds it.
func (w *Workspaces) Ensure(ctx context.Context, workspaceID string) error {
	w.mu.RLock()
	_, ok := w.m[workspaceID]
	w.mu.RUnlock()
	if ok {
		return nil
	}
	events, err := w.log.ReadStream(ctx, workspace.StreamID(workspaceID), 0)
	if err != nil {
		return fmt.Errorf("members of workspace %s: %w", workspaceID, err)
	}
	m := &members{}
	for _, e := range events {
		ev, err := workspace.Decode(e.Type, e.SchemaVersion, e.Data)
		if err != nil {
			return fmt.Errorf("members of workspace %s: %w", workspaceID, err)
		}
		m.apply(ev)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	// The log is never behind the feeder: keep whichever is newer.
	if cur, ok := w.m[workspaceID]; !ok || cur.version < m.version {
		w.putLocked(workspaceID, m)
	}
	return nil
}

// refresh applies the workspace's events that the projection has not seen
// yet.
func (w *Workspaces) refresh(ctx context.Context, workspaceID string) error {
	w.mu.RLock()
	m, ok := w.m[workspaceID]
	version := 0
	if ok {
		version = m.version
	}
	w.mu.RUnlock()
	if !ok {
		return w.Ensure(ctx, workspaceID)
	}
	events, err := w.log.ReadStream(ctx, workspace.StreamID(workspaceID), version)
	if err != nil || len(events) == 0 {
		return err
	}
	decoded := make([]domain.Event, len(events))
	for i, e := range events {
		if decoded[i], err = workspace.Decode(e.Type, e.SchemaVersion, e.Data); err != nil {
			return fmt.Errorf("members of workspace %s: %w", workspaceID, err)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if m, ok = w.m[workspaceID]; !ok {
		return nil // evicted meanwhile: read again when needed
	}
	for i, e := range events {
		if e.StreamVersion == m.version+1 {
			m.apply(decoded[i])
		}
	}
	return nil
}

// putLocked inserts with w.mu held, evicting an arbitrary entry when the
// map is full.
func (w *Workspaces) putLocked(id string, m *members) {
	if _, ok := w.m[id]; !ok && len(w.m) >= w.max {
		for k := range w.m {
			delete(w.m, k)
			break
		}
	}
	w.m[id] = m
}
