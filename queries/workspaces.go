package queries

import (
	"context"

	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/projections"
)

const workspaceColumns = `w.id, w.owner_id, w.name, w.description, w.config, w.archived, w.created_at, w.updated_at, w.version`

// ListWorkspacesHandler lists the workspaces the caller is a member of.
type ListWorkspacesHandler struct{ r *reader }

// Handle returns one page, newest first.
func (h *ListWorkspacesHandler) Handle(ctx context.Context, actor access.Actor, page PageRequest, minPosition int64) (Page[Workspace], error) {
	if err := access.CheckRead(actor); err != nil {
		return Page[Workspace]{}, err
	}
	cur, err := decodeCursor(page.Cursor)
	if err != nil {
		return Page[Workspace]{}, err
	}
	limit := page.limit()
	c := h.r.lookup(ctx, minPosition)
	key := workspacesKey(actor.UserID, page.Cursor, limit)
	if p, ok := get[Page[Workspace]](c, key); ok {
		return p, nil
	}
	if cur == nil && !c.current { // as for messages: a current cache is filled from SQL
		if p, ok := h.r.hotWorkspaces(ctx, actor, limit, minPosition); ok {
			return p, nil
		}
	}
	if err := c.readModels(ctx, projections.WorkspacesProjector); err != nil {
		return Page[Workspace]{}, err
	}
	p, err := selectPage(ctx, h.r, cur, limit,
		`SELECT `+workspaceColumns+`, m.role FROM workspace_members m
			JOIN workspaces w ON w.id = m.workspace_id WHERE m.user_id = $1
			ORDER BY w.created_at DESC, w.id DESC LIMIT $2`,
		`SELECT `+workspaceColumns+`, m.role FROM workspace_members m
			JOIN workspaces w ON w.id = m.workspace_id WHERE m.user_id = $1 AND (w.created_at, w.id) < ($3, $4)
			ORDER BY w.created_at DESC, w.id DESC LIMIT $2`,
		actor.UserID, func(w Workspace) timeCursor { return timeCursor{T: w.CreatedAt, ID: w.ID} })
	if err != nil {
		return Page[Workspace]{}, err
	}
	c.put(key, p, workspacesSize(p.Items), workspacesDeps(actor.UserID, p.Items)...)
	return p, nil
}

// selectPage reads one page of a list ordered newest first. first is the
// query of the first page; after, of the page after cur, whose time and id
// it takes as $3 and $4. Both take scope (the owner of the list) as $1 and
// the row limit as $2: one row more than limit, to learn whether another
// page exists. cursorOf names an item's place in the list.
func selectPage[T any](ctx context.Context, r *reader, cur *timeCursor, limit int, first, after, scope string, cursorOf func(T) timeCursor) (Page[T], error) {
	var (
		items []T
		err   error
	)
	if cur == nil {
		err = r.db.SelectContext(ctx, &items, first, scope, limit+1)
	} else {
		err = r.db.SelectContext(ctx, &items, after, scope, limit+1, cur.T, cur.ID)
	}
	if err != nil {
		return Page[T]{}, err
	}
	return pageOf(items, limit, cursorOf), nil
}

// pageOf trims the extra row fetched to learn whether another page exists.
func pageOf[T any](items []T, limit int, cursorOf func(T) timeCursor) Page[T] {
	p := Page[T]{Items: items}
	if p.Items == nil {
		p.Items = []T{}
	}
	if len(items) > limit {
		p.Items = items[:limit]
		p.NextCursor = encodeCursor(cursorOf(p.Items[limit-1]))
	}
	return p
}

// GetWorkspaceHandler returns one workspace.
type GetWorkspaceHandler struct{ r *reader }

// Handle returns the workspace, or not found when the caller may not see it.
func (h *GetWorkspaceHandler) Handle(ctx context.Context, actor access.Actor, id string, minPosition int64) (Workspace, error) {
	if !isUUID(id) {
		return Workspace{}, notFound("workspace")
	}
	c := h.r.lookup(ctx, minPosition)
	if w, ok := get[Workspace](c, workspaceKey(id)); ok {
		if role, ok := c.role(id, actor.UserID); ok {
			if err := access.CheckWorkspace(actor, access.ReadWorkspace, role); err != nil {
				return Workspace{}, err
			}
			w.Role = role
			return w, nil
		}
	}
	if err := c.readModels(ctx, projections.WorkspacesProjector); err != nil {
		return Workspace{}, err
	}
	// The workspace and the caller's membership, in one query.
	w, err := getRow[Workspace](ctx, h.r, "workspace", `SELECT `+workspaceColumns+`,
			coalesce((SELECT m.role FROM workspace_members m WHERE m.workspace_id = w.id AND m.user_id = $2), '') AS role
		FROM workspaces w WHERE w.id = $1`, id, actor.UserID)
	if err != nil {
		return Workspace{}, err
	}
	c.putWorkspace(w)
	c.putRole(id, actor.UserID, w.Role)
	if err := access.CheckWorkspace(actor, access.ReadWorkspace, w.Role); err != nil {
		return Workspace{}, err
	}
	return w, nil
}

// ListMembersHandler lists a workspace's members.
type ListMembersHandler struct{ r *reader }

// Handle returns every member (workspaces have few), oldest first.
func (h *ListMembersHandler) Handle(ctx context.Context, actor access.Actor, workspaceID string, minPosition int64) ([]Member, error) {
	if !isUUID(workspaceID) {
		return nil, notFound("workspace")
	}
	if err := h.r.wait(ctx, projections.WorkspacesProjector, minPosition); err != nil {
		return nil, err
	}
	if _, err := h.r.authorize(ctx, actor, access.ReadWorkspace, workspaceID); err != nil {
		return nil, err
	}
	members := []Member{}
	err := h.r.db.SelectContext(ctx, &members, `SELECT m.workspace_id, m.user_id, m.role, m.added_at,
			coalesce(u.email, '') AS email, coalesce(u.display_name, '') AS display_name
		FROM workspace_members m LEFT JOIN users u ON u.id = m.user_id
		WHERE m.workspace_id = $1 ORDER BY m.added_at, m.user_id`, workspaceID)
	return members, err
}
