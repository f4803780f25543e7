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
	return changeWorkspace(ctx, h.repos, cmd.Actor, access.UpdateWorkspace, cmd.WorkspaceID, cmd.IfMatch,
		func(ws *workspace.Workspace) error { return ws.Update(cmd.Name, cmd.Description, cmd.Config) })
}

// changeWorkspace is load → authorize → decide → append for workspace commands.
func changeWorkspace(ctx context.Context, repos *repositories, actor access.Actor, action access.Action,
	id string, ifMatch *int, decide func(*workspace.Workspace) error) (WorkspaceResult, error) {
	if err := validID("workspace_id", id); err != nil {
		return WorkspaceResult{}, err
	}
	ws, err := repos.workspaces.load(ctx, id)
	if err != nil {
		return WorkspaceResult{}, err
	}
	role, _ := ws.MemberRole(actor.UserID)
	if err := access.CheckWorkspace(actor, action, role); err != nil {
		repos.workspaces.release(id, ws)
		return WorkspaceResult{}, err
	}
	if err := checkIfMatch(ifMatch, ws.Version()); err != nil {
		repos.workspaces.release(id, ws)
		return WorkspaceResult{}, err
	}
	if err := decide(ws); err != nil {
		repos.workspaces.release(id, ws)
		return WorkspaceResult{}, err
	}
	state, version := workspaceState(ws), ws.Version()
	res, err := repos.workspaces.save(withActor(ctx, actor.UserID), id, ws)
	if err != nil {
		return WorkspaceResult{}, err
	}
	return WorkspaceResult{Workspace: state, Written: written(res, version)}, nil
}
