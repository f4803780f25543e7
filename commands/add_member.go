package commands

import (
	"context"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/catalog"
	"github.com/engramhq/engram/domain/user"
	"github.com/engramhq/engram/domain/workspace"
	"github.com/engramhq/engram/eventstore"
)

// AddMember shares a workspace with a user, or changes a member's role. The
// user is named by id or by e-mail address.
type AddMember struct {
	Actor       access.Actor
	WorkspaceID string
	UserID      string
	Email       string
	Role        string
	// Idempotency, when set, applies the command once per key.
	Idempotency *Idempotency[MemberResult]
}

// MemberResult is a membership after a command.
type MemberResult struct {
	WorkspaceID string
	UserID      string
	Role        string
	Written
}

// AddMemberHandler handles AddMember.
type AddMemberHandler struct {
	repos *repositories
}

// Handle adds the member (owners only). An unknown user is a CodeInvalid
// error on the field that named it. The policy is asked first, so that who
// may not manage the workspace learns nothing about which accounts exist.
func (h *AddMemberHandler) Handle(ctx context.Context, cmd AddMember) (MemberResult, error) {
	if _, err := h.repos.authorizeInWorkspace(ctx, cmd.Actor, access.ManageMembers, cmd.WorkspaceID); err != nil {
		return MemberResult{}, err
	}
	userID, err := h.resolveUser(ctx, cmd)
	if err != nil {
		return MemberResult{}, err
	}
	var role string
	result := func(w Written) MemberResult {
		return MemberResult{WorkspaceID: cmd.WorkspaceID, UserID: userID, Role: role, Written: w}
	}
	res, err := h.repos.inWorkspace(ctx, cmd.Actor, access.ManageMembers, cmd.WorkspaceID, nil,
		func(ws *workspace.Workspace) error {
			if err := ws.AddMember(userID, cmd.Role); err != nil {
				return err
			}
			role, _ = ws.MemberRole(userID)
			return nil
		}, cmd.Idempotency.appendOptions(result)...)
	if err != nil {
		return MemberResult{}, err
	}
	return result(res.Written), nil
}

func (h *AddMemberHandler) resolveUser(ctx context.Context, cmd AddMember) (string, error) {
	var v domain.Validation
	switch {
	case cmd.UserID == "" && cmd.Email == "":
		v.Add("user_id", "user_id or email is required")
	case cmd.UserID != "" && cmd.Email != "":
		v.Add("user_id", "give user_id or email, not both")
	}
	v.OneOf("role", cmd.Role, access.MemberViewer, access.MemberEditor, access.MemberOwner)
	if err := v.Err(); err != nil {
		return "", err
	}
	if cmd.Email != "" {
		owner, err := h.repos.store.ClaimOwner(ctx, eventstore.Claim{Scope: EmailClaimScope, Value: user.NormalizeEmail(cmd.Email)})
		if err != nil {
			return "", err
		}
		if owner == "" {
			v.Add("email", "no user has this e-mail address")
			return "", v.Err()
		}
		return catalog.Users.ID(owner), nil
	}
	if validID("user_id", cmd.UserID) != nil {
		v.Add("user_id", "no user has this id")
		return "", v.Err()
	}
	u, err := h.repos.users.load(ctx, cmd.UserID)
	if domain.ErrorCode(err) == domain.CodeNotFound {
		v.Add("user_id", "no user has this id")
		return "", v.Err()
	}
	if err != nil {
		return "", err
	}
	h.repos.users.release(cmd.UserID, u)
	return cmd.UserID, nil
}
