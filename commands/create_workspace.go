package commands

import (
	"context"
	"encoding/json"

	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/workspace"
)

// CreateWorkspace creates a workspace owned by the actor.
type CreateWorkspace struct {
	Actor       access.Actor
	Name        string
	Description string
	Config      json.RawMessage
	// Idempotency, when set, applies the command once per key.
	Idempotency *Idempotency[WorkspaceResult]
}

// WorkspaceResult is a workspace after a command.
type WorkspaceResult struct {
	Workspace WorkspaceState
	Written
}

// CreateWorkspaceHandler handles CreateWorkspace.
type CreateWorkspaceHandler struct {
	repos *repositories
}

// Handle creates the workspace.
func (h *CreateWorkspaceHandler) Handle(ctx context.Context, cmd CreateWorkspace) (WorkspaceResult, error) {
	if err := access.CheckWrite(cmd.Actor); err != nil {
		return WorkspaceResult{}, err
	}
	id := newID()
	ws, err := workspace.Create(id, cmd.Actor.UserID, cmd.Name, cmd.Description, cmd.Config)
	if err != nil {
		return WorkspaceResult{}, err
	}
	state := workspaceState(ws)
	result := func(w Written) WorkspaceResult { return WorkspaceResult{Workspace: state, Written: w} }
	w, err := h.repos.workspaces.create(withActor(ctx, cmd.Actor.UserID), id, ws, cmd.Idempotency.appendOptions(result)...)
	if err != nil {
		return WorkspaceResult{}, err
	}
	return result(w), nil
}
