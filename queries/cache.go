package queries

import (
	"context"
	"strconv"

	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/domain/workspace"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/projections"
)

// Cache keeps answers in this process's memory, exact as of the last event
// it applied (projections.ReadCache).
type Cache interface {
	// Current reports whether the cache has applied every event committed
	// before the call, minPosition among them; false means the read models
	// must answer.
	Current(ctx context.Context, minPosition int64) bool
	// Get returns the answer kept under key.
	Get(key string) (any, bool)
	// Put keeps an answer read from read models whose checkpoints were at
	// or after asOf, that changes only with the events of deps.
	Put(key string, value any, asOf eventstore.Cursor, size int, deps ...string)
}

// CheckpointReader tells how far read models have come.
type CheckpointReader interface {
	// Least returns the least checkpoint of the named projectors.
	Least(ctx context.Context, names ...string) (eventstore.Cursor, error)
}

// WithCache makes the hottest queries (a conversation, a page of its
// messages, the caller's workspaces, a workspace) answer from c when it
// is current, and fill it from the read models, whose checkpoints cp reads,
// when it is not.
func WithCache(c Cache, cp CheckpointReader) Option {
	return func(r *reader) { r.cache, r.checkpoints = c, cp }
}

// cacheRead is one query's use of the cache: whether it may answer from
// it, and where a fill from the read models stands.
type cacheRead struct {
	r           *reader
	current     bool
	minPosition int64
	prepared    bool
	asOf        eventstore.Cursor
	fill        bool
}

// lookup starts a query's use of the cache: it is current when the cache
// has applied everything committed before the query began, which covers
// minPosition (a position the client has seen committed) by construction.
func (r *reader) lookup(ctx context.Context, minPosition int64) *cacheRead {
	return &cacheRead{r: r, current: r.cache != nil && r.cache.Current(ctx, minPosition), minPosition: minPosition}
}

// readModels prepares a read of the read models, once per query: it waits
// until the projectors have applied minPosition (read-your-writes), then,
// when the cache is current, notes their checkpoints so that what they
// answer can be kept.
func (c *cacheRead) readModels(ctx context.Context, projector string, also ...string) error {
	if c.prepared {
		return nil
	}
	if err := c.r.wait(ctx, projector, c.minPosition, also...); err != nil {
		return err
	}
	c.prepared = true
	if c.current && c.r.checkpoints != nil {
		asOf, err := c.r.checkpoints.Least(ctx, append([]string{projector}, also...)...)
		c.asOf, c.fill = asOf, err == nil
	}
	return nil
}

// get returns the answer under key when the cache may answer.
func get[T any](c *cacheRead, key string) (T, bool) {
	var zero T
	if !c.current {
		return zero, false
	}
	v, ok := c.r.cache.Get(key)
	if !ok {
		return zero, false
	}
	t, ok := v.(T)
	return t, ok
}

// put keeps an answer read after readModels.
func (c *cacheRead) put(key string, value any, size int, deps ...string) {
	if c.fill {
		c.r.cache.Put(key, value, c.asOf, size, deps...)
	}
}

// Keys of the cached answers, and their dependencies.

func conversationKey(id string) string { return "conversation:" + id }

func workspaceKey(id string) string { return "workspace:" + id }

func roleKey(workspaceID, userID string) string { return "role:" + workspaceID + ":" + userID }

func messagesKey(conversationID string, after int64, limit int) string {
	return "messages:" + conversationID + ":" + strconv.FormatInt(after, 10) + ":" + strconv.Itoa(limit)
}

func workspacesKey(userID, cursor string, limit int) string {
	return "workspaces:" + userID + ":" + strconv.Itoa(limit) + ":" + cursor
}

// role returns the caller's role in a workspace from the cache.
func (c *cacheRead) role(workspaceID, userID string) (string, bool) {
	return get[string](c, roleKey(workspaceID, userID))
}

// putRole keeps a member's role ("" for a non-member); it changes only with
// the workspace's events.
func (c *cacheRead) putRole(workspaceID, userID, role string) {
	c.put(roleKey(workspaceID, userID), role, 96, workspace.StreamID(workspaceID))
}

func (c *cacheRead) putConversation(conv Conversation) {
	c.put(conversationKey(conv.ID), conv, 512+len(conv.Title)+len(conv.Metadata), conversation.StreamID(conv.ID))
}

func (c *cacheRead) putWorkspace(w Workspace) {
	w.Role = ""
	c.put(workspaceKey(w.ID), w, 512+len(w.Name)+len(w.Description)+len(w.Config), workspace.StreamID(w.ID))
}

func messagesSize(items []Message) int {
	n := 128
	for _, m := range items {
		n += 256 + len(m.Content) + len(m.Metadata)
	}
	return n
}

// workspacesDeps are the dependencies of a page of a user's workspaces: the
// user's memberships and each workspace listed.
func workspacesDeps(userID string, items []Workspace) []string {
	deps := make([]string, 0, len(items)+1)
	deps = append(deps, projections.MemberDependency(userID))
	for _, w := range items {
		deps = append(deps, workspace.StreamID(w.ID))
	}
	return deps
}

func workspacesSize(items []Workspace) int {
	n := 128
	for _, w := range items {
		n += 512 + len(w.Name) + len(w.Description) + len(w.Config)
	}
	return n
}
