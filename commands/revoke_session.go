package commands

import (
	"context"

	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/session"
)

// RevokeSession ends a session: its refresh token stops working and its
// access tokens are refused.
type RevokeSession struct {
	Actor     access.Actor
	SessionID string
	// Reason is recorded with the revocation, e.g. "logout".
	Reason string
}

// RevokeSessionHandler handles RevokeSession.
type RevokeSessionHandler struct {
	repos       *repositories
	revocations Revocations
}

// Handle revokes the session. Sessions of other users are not found, except
// for admins. Revoking a revoked session changes nothing. Only session
// credentials manage sessions (access.CheckCredentials).
func (h *RevokeSessionHandler) Handle(ctx context.Context, cmd RevokeSession) (Written, error) {
	return revokeOwned(ctx, h.repos.sessions, cmd.Actor, "session_id", cmd.SessionID, "session",
		(*session.Session).UserID, func(s *session.Session) error { return s.Revoke(cmd.Reason) }, h.revocations.RevokeSession)
}
