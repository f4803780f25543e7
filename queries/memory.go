package queries

import (
	"context"
	"time"

	"github.com/engramhq/engram/cognition"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/projections"
)

// MemorySearch selects items of a workspace's memory (see cognition.Query).
type MemorySearch struct {
	Types          []string
	Words          string
	AnyWord        bool
	From, To       time.Time
	Metadata       map[string]string
	IncludeExpired bool
	Page           PageRequest
}

// SearchMemoryHandler lists a workspace's memory items.
type SearchMemoryHandler struct {
	r      *reader
	memory cognition.Memory
	now    func() time.Time
}

// Handle returns one page of the items that match s, newest first
// (members of the workspace). Limits are those of cognition.Query: 20 items
// by default, at most 200.
func (h *SearchMemoryHandler) Handle(ctx context.Context, actor access.Actor, workspaceID string, s MemorySearch, minPosition int64) (Page[cognition.Item], error) {
	if !isUUID(workspaceID) {
		return Page[cognition.Item]{}, notFound("workspace")
	}
	cur, err := decodeCursor(s.Page.Cursor)
	if err != nil {
		return Page[cognition.Item]{}, err
	}
	limit := s.Page.Limit
	if limit <= 0 {
		limit = cognition.DefaultLimit
	}
	q := cognition.Query{Types: s.Types, Words: s.Words, AnyWord: s.AnyWord, From: s.From, To: s.To, Metadata: s.Metadata,
		IncludeExpired: s.IncludeExpired, Limit: limit, Now: h.now()}
	if err := q.Validate(); err != nil {
		return Page[cognition.Item]{}, err
	}
	if cur != nil {
		q.Before = &cognition.Cursor{CreatedAt: cur.T, ID: cur.ID}
	}
	if err := h.r.wait(ctx, projections.MemoryProjector, minPosition, projections.WorkspacesProjector); err != nil {
		return Page[cognition.Item]{}, err
	}
	if _, err := h.r.authorize(ctx, actor, access.ReadWorkspace, workspaceID); err != nil {
		return Page[cognition.Item]{}, err
	}
	// One more item than asked tells whether there is a next page; at the
	// largest page, a full page gets a cursor (the next may be empty).
	q.Limit = min(limit+1, cognition.MaxLimit)
	items, err := h.memory.Search(ctx, workspaceID, q)
	if err != nil {
		return Page[cognition.Item]{}, err
	}
	cursorOf := func(it cognition.Item) timeCursor { return timeCursor{T: it.CreatedAt, ID: it.ID} }
	p := pageOf(items, limit, cursorOf)
	if q.Limit == limit && len(items) == limit {
		p.NextCursor = encodeCursor(cursorOf(items[limit-1]))
	}
	return p, nil
}

// MemoryContextHandler synthesises what a workspace remembers.
type MemoryContextHandler struct {
	r      *reader
	memory cognition.Memory
	now    func() time.Time
}

// Handle returns the workspace's memory context (members of the workspace):
// see cognition.BuildContext.
func (h *MemoryContextHandler) Handle(ctx context.Context, actor access.Actor, workspaceID string, minPosition int64) (cognition.Context, error) {
	if !isUUID(workspaceID) {
		return cognition.Context{}, notFound("workspace")
	}
	if err := h.r.wait(ctx, projections.MemoryProjector, minPosition, projections.WorkspacesProjector); err != nil {
		return cognition.Context{}, err
	}
	if _, err := h.r.authorize(ctx, actor, access.ReadWorkspace, workspaceID); err != nil {
		return cognition.Context{}, err
	}
	return cognition.BuildContext(ctx, h.memory, workspaceID, h.now())
}
