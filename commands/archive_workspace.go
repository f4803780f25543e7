package commands

import (
	"context"

	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/workspace"
)

// ArchiveWorkspace archives a workspace; it accepts no further change.
type ArchiveWorkspace struct {
	Actor       access.Actor
	WorkspaceID string
	IfMatch     *int
}

// ArchiveWorkspaceHandler handles ArchiveWorkspace.
type ArchiveWorkspaceHandler struct {
	repos *repositories
}

// Handle archives the workspace (owners only).
func (h *ArchiveWorkspaceHandler) Handle(ctx context.Context, cmd ArchiveWorkspace) (WorkspaceResult, error) {
	return h.repos.inWorkspace(ctx, cmd.Actor, access.ArchiveWorkspace, cmd.WorkspaceID, cmd.IfMatch,
		func(ws *workspace.Workspace) error { return ws.Archive() })
}
