package commands

import (
	"context"

	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/apikey"
)

// RevokeAPIKey revokes an API key: it is refused from then on, on every
// instance.
type RevokeAPIKey struct {
	Actor access.Actor
	KeyID string
}

// RevokeAPIKeyHandler handles RevokeAPIKey.
type RevokeAPIKeyHandler struct {
	repos       *repositories
	revocations Revocations
}

// Handle revokes the key. Keys of other users are not found (CodeNotFound),
// except for admins; only session credentials revoke keys
// (access.CheckCredentials). Revoking a revoked key changes nothing.
func (h *RevokeAPIKeyHandler) Handle(ctx context.Context, cmd RevokeAPIKey) (Written, error) {
	return revokeOwned(ctx, h.repos.apiKeys, cmd.Actor, "key_id", cmd.KeyID, "API key",
		(*apikey.APIKey).UserID, (*apikey.APIKey).Revoke, h.revocations.RevokeKey)
}
