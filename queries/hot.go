package queries

import (
	"context"
	"strconv"
	"time"

	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/projections/redis"
)

// HotReads serves the hottest pages from a faster copy of the read models
// (package projections/redis), when that copy can answer exactly as the SQL
// read models would. Every method reports false when it cannot; the query
// then goes to SQL, which also reports every error.
type HotReads interface {
	// Messages reads up to count messages of a conversation after position
	// after, with userID's role in the conversation's workspace.
	Messages(ctx context.Context, conversationID, userID string, after int64, count int, minPosition int64) (redis.HotMessages, bool)
	// Workspaces reads the first count workspaces of userID, newest first.
	Workspaces(ctx context.Context, userID string, count int, minPosition int64) ([]redis.WorkspaceRow, bool)
	// Status tells whether each hot read model is live (queries read it)
	// and which position it has applied.
	Status(ctx context.Context) []redis.Status
}

// Option configures New.
type Option func(*reader)

// WithHotReads makes the message list and the first page of the workspace
// list try h before SQL.
func WithHotReads(h HotReads) Option { return func(r *reader) { r.hot = h } }

// DefaultWaitTimeout is how long a query waits for a hot read model to apply
// a position unless WithWaitTimeout says otherwise.
const DefaultWaitTimeout = 5 * time.Second

// WithWaitTimeout bounds how long a query waits for a hot read model to
// apply a position (the read-your-writes timeout; the SQL read models are
// bounded by New's waiter).
func WithWaitTimeout(d time.Duration) Option { return func(r *reader) { r.timeout = d } }

// hotMessages answers a page of messages from the hot read model when it
// can, and only with a success: anything else (not found, forbidden) is
// left to the SQL path, which words it.
func (r *reader) hotMessages(ctx context.Context, actor access.Actor, conversationID string, after int64, limit int, minPosition int64) (Page[Message], bool) {
	if r.hot == nil {
		return Page[Message]{}, false
	}
	hm, ok := r.hot.Messages(ctx, conversationID, actor.UserID, after, limit+1, minPosition)
	if !ok || access.CheckWorkspace(actor, access.ReadConversation, hm.Role) != nil {
		return Page[Message]{}, false
	}
	items := make([]Message, len(hm.Items))
	for i, m := range hm.Items {
		items[i] = Message{ID: m.ID, ConversationID: m.ConversationID, Role: m.Role, AuthorID: m.AuthorID, Content: m.Content,
			Metadata: Object(m.Metadata), CreatedAt: m.CreatedAt, Position: m.Position}
	}
	p := Page[Message]{Items: items}
	if len(items) > limit {
		p.Items = items[:limit]
		p.NextCursor = strconv.FormatInt(p.Items[limit-1].Position, 10)
	}
	return p, true
}

// hotWorkspaces answers the first page of the caller's workspaces from the
// hot read model when it can.
func (r *reader) hotWorkspaces(ctx context.Context, actor access.Actor, limit int, minPosition int64) (Page[Workspace], bool) {
	if r.hot == nil {
		return Page[Workspace]{}, false
	}
	rows, ok := r.hot.Workspaces(ctx, actor.UserID, limit+1, minPosition)
	if !ok {
		return Page[Workspace]{}, false
	}
	items := make([]Workspace, len(rows))
	for i, w := range rows {
		items[i] = Workspace{ID: w.ID, OwnerID: w.OwnerID, Name: w.Name, Description: w.Description, Config: Object(w.Config),
			Archived: w.Archived, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt, Version: w.Version, Role: w.Role}
	}
	return pageOf(items, limit, func(w Workspace) timeCursor { return timeCursor{T: w.CreatedAt, ID: w.ID} }), true
}

var _ HotReads = (*redis.ReadModels)(nil)
