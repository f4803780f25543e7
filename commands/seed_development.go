package commands

import (
	"context"
	"errors"

	"github.com/engramhq/engram/domain/user"
	"github.com/engramhq/engram/domain/workspace"
	"github.com/engramhq/engram/eventstore"
)

// Development seed account. Its password is below the password policy on
// purpose: it exists only in development, to be typed by hand.
const (
	SeedEmail         = "test@example.com"
	SeedPassword      = "password"
	SeedDisplayName   = "Test User"
	SeedWorkspaceName = "My Workspace"
)

// SeedDevelopmentHandler creates the development account and its workspace.
type SeedDevelopmentHandler struct {
	repos  *repositories
	hasher PasswordHasher
}

// NewSeedDevelopmentHandler returns the handler; it is not part of Commands
// because no request may run it.
func NewSeedDevelopmentHandler(store EventStore, hasher PasswordHasher) (*SeedDevelopmentHandler, error) {
	repos, err := newRepositories(store)
	if err != nil {
		return nil, err
	}
	if hasher == nil {
		return nil, errors.New("commands: nil hasher")
	}
	return &SeedDevelopmentHandler{repos: repos, hasher: hasher}, nil
}

// Handle creates the seed account and workspace unless the account exists.
// It reports whether it created them.
func (h *SeedDevelopmentHandler) Handle(ctx context.Context) (bool, error) {
	claim := eventstore.Claim{Scope: EmailClaimScope, Value: SeedEmail}
	owner, err := h.repos.store.ClaimOwner(ctx, claim)
	if err != nil || owner != "" {
		return false, err
	}
	hash, err := h.hasher.Hash(SeedPassword)
	if err != nil {
		return false, err
	}
	userID := newID()
	u, err := user.Register(userID, SeedEmail, SeedDisplayName, hash)
	if err != nil {
		return false, err
	}
	ctx = withActor(ctx, userID)
	if _, err := h.repos.users.create(ctx, userID, u, eventstore.WithClaims(claim)); err != nil {
		if errors.Is(err, eventstore.ErrClaimed) {
			return false, nil // another instance seeded first
		}
		return false, err
	}
	wsID := newID()
	ws, err := workspace.Create(wsID, userID, SeedWorkspaceName, "Created for development.", nil)
	if err != nil {
		return false, err
	}
	if _, err := h.repos.workspaces.create(ctx, wsID, ws); err != nil {
		return false, err
	}
	return true, nil
}
