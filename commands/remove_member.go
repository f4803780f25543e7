package commands

import (
	"context"

	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/workspace"
)

// RemoveMember takes a user out of a workspace. Owners may remove anyone;
// every member may remove themselves (leave). The last owner cannot leave.
type RemoveMember struct {
	Actor       access.Actor
	WorkspaceID string
	UserID      string
}

// RemoveMemberHandler handles RemoveMember.
type RemoveMemberHandler struct {
	repos *repositories
}

// Handle removes the member.
func (h *RemoveMemberHandler) Handle(ctx context.Context, cmd RemoveMember) (MemberResult, error) {
	action := access.ManageMembers
	if cmd.UserID == cmd.Actor.UserID {
		action = access.LeaveWorkspace
	}
	if err := validID("user_id", cmd.UserID); err != nil {
		return MemberResult{}, err
	}
	res, err := h.repos.inWorkspace(ctx, cmd.Actor, action, cmd.WorkspaceID, nil,
		func(ws *workspace.Workspace) error { return ws.RemoveMember(cmd.UserID) })
	if err != nil {
		return MemberResult{}, err
	}
	return MemberResult{WorkspaceID: cmd.WorkspaceID, UserID: cmd.UserID, Written: res.Written}, nil
}
