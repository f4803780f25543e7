package commands

import (
	"context"
	"strings"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/catalog"
	"github.com/engramhq/engram/domain/user"
	"github.com/engramhq/engram/eventstore"
)

// GrantRole gives a user, named by e-mail address, one of the global roles
// user, admin or auditor.
type GrantRole struct {
	Email string
	Role  string
	// By names who grants the role; it is recorded as the actor of the
	// event (e.g. "cli:alice" for an operator on the command line).
	By string
}

// GrantRoleResult is the user after the grant.
type GrantRoleResult struct {
	User UserState
	Written
}

// GrantRoleHandler handles GrantRole. It is not part of Commands: roles are
// granted by the operator on the command line, never by a request.
type GrantRoleHandler struct {
	repos *repositories
}

// NewGrantRoleHandler returns the handler over store.
func NewGrantRoleHandler(store EventStore) (*GrantRoleHandler, error) {
	repos, err := newRepositories(store)
	if err != nil {
		return nil, err
	}
	return &GrantRoleHandler{repos: repos}, nil
}

// Handle grants the role. An unknown e-mail address is a CodeNotFound error;
// an unknown role a CodeInvalid one. A role already held records nothing.
func (h *GrantRoleHandler) Handle(ctx context.Context, cmd GrantRole) (GrantRoleResult, error) {
	var v domain.Validation
	v.Check(strings.TrimSpace(cmd.Email) != "", "email", "is required")
	v.OneOf("role", cmd.Role, user.RoleUser, user.RoleAdmin, user.RoleAuditor)
	v.ID("by", cmd.By)
	if err := v.Err(); err != nil {
		return GrantRoleResult{}, err
	}
	owner, err := h.repos.store.ClaimOwner(ctx, eventstore.Claim{Scope: EmailClaimScope, Value: user.NormalizeEmail(cmd.Email)})
	if err != nil {
		return GrantRoleResult{}, err
	}
	if owner == "" {
		return GrantRoleResult{}, domain.Errorf(domain.CodeNotFound, "no user has the e-mail address %s", user.NormalizeEmail(cmd.Email))
	}
	userID := catalog.Users.ID(owner)
	var state UserState
	w, err := h.repos.users.update(withActor(ctx, cmd.By), userID, keepingState(func(u *user.User) error {
		return u.GrantRole(cmd.Role)
	}, catalog.UserStateOf, &state))
	if err != nil {
		return GrantRoleResult{}, err
	}
	return GrantRoleResult{User: state, Written: w}, nil
}
