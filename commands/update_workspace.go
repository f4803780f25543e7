package commands

import (
	"context"
	"encoding/json"

	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/workspace"
)

// UpdateWorkspace renames a workspace or changes its description or config.
// Nil fields are left as they are.
type UpdateWorkspace struct {
	Actor       access.Actor
	WorkspaceID string
	Name        *string
	Description *string
	Config      json.RawMessage
	// IfMatch, when set, is the version the client last saw.
	IfMatch *int
}

// UpdateWorkspaceHandler handles UpdateWorkspace.
type UpdateWorkspaceHandler struct {
	repos *repositories
}

// Handle applies the update (owners only).
func (h *UpdateWorkspaceHandler) Handle(ctx context.Context, cmd UpdateWorkspace) (WorkspaceResult, error) {
	return h.repos.inWorkspace(ctx, cmd.Actor, access.UpdateWorkspace, cmd.WorkspaceID, cmd.IfMatch,
		func(ws *workspace.Workspace) error { return ws.Update(cmd.Name, cmd.Description, cmd.Config) })
}
