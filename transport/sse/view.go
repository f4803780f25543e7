package sse

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/engramhq/engram/domain/apikey"
	"github.com/engramhq/engram/domain/catalog"
	"github.com/engramhq/engram/domain/session"
	"github.com/engramhq/engram/domain/workspace"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/projections/membership"
)

// maxViewEntries bounds each map of the view; an evicted entry is read
// again from the log when needed.
const maxViewEntries = 100_000

// view is the hub's knowledge of who may see what: the members of each
// workspace (the membership projection, which it feeds) and the owner of
// each stream (the workspace of a conversation, the user of a session). It
// is a cache of the event log: the hub keeps it current from the events it
// handles, in commit order, and a miss is read from the log itself, which
// is never behind the hub (read models may be). It is safe for concurrent
// use.
type view struct {
	log     Log
	members *membership.Workspaces

	mu     sync.RWMutex
	owners map[string]owner // by stream id
}

// owner is what the first event of a stream says it belongs to.
type owner struct {
	WorkspaceID    string `json:"workspace_id"`
	ConversationID string `json:"conversation_id"`
	UserID         string `json:"user_id"`
}

func newView(log Log) *view {
	return &view{log: log, members: membership.New(log, maxViewEntries), owners: map[string]owner{}}
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
	var (
		ch  change
		err error
	)
	switch e.StreamType {
	case workspace.StreamType:
		ch.workspace, ch.memberRemoved, err = v.members.Observe(e)
		if err != nil {
			return ch, err
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

// putOwner inserts with v.mu held, evicting an arbitrary entry when the map
// is full.
func (v *view) putOwner(streamID string, o owner) {
	if _, ok := v.owners[streamID]; !ok && len(v.owners) >= maxViewEntries {
		for k := range v.owners {
			delete(v.owners, k)
			break
		}
	}
	v.owners[streamID] = o
}
