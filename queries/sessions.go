package queries

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/lib/pq"

	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/projections"
)

// Session is one login session of a user.
type Session struct {
	ID              string     `db:"id"`
	UserAgent       string     `db:"user_agent"`
	IP              string     `db:"ip"`
	CreatedAt       time.Time  `db:"created_at"`
	LastRefreshedAt *time.Time `db:"last_refreshed_at"`
	ExpiresAt       time.Time  `db:"expires_at"`
	RevokedAt       *time.Time `db:"revoked_at"`
	RevokedReason   *string    `db:"revoked_reason"`
}

// ListSessionsHandler lists the caller's sessions.
type ListSessionsHandler struct{ r *reader }

// Handle returns the caller's sessions, newest first (at most MaxLimit).
func (h *ListSessionsHandler) Handle(ctx context.Context, actor access.Actor, minPosition int64) ([]Session, error) {
	if err := h.r.wait(ctx, projections.SessionsProjector, minPosition); err != nil {
		return nil, err
	}
	out := []Session{}
	err := h.r.db.SelectContext(ctx, &out, `SELECT id, user_agent, ip, created_at, last_refreshed_at, expires_at, revoked_at, revoked_reason
		FROM sessions WHERE user_id = $1 ORDER BY created_at DESC LIMIT $2`, actor.UserID, MaxLimit)
	return out, err
}

// CredentialsHandler answers the authenticator: is this session still
// valid, which roles does this user hold, which key is this.
type CredentialsHandler struct{ r *reader }

// WaitForSession waits until the sessions read model has applied position.
func (h *CredentialsHandler) WaitForSession(ctx context.Context, position int64) error {
	return h.r.wait(ctx, projections.SessionsProjector, position)
}

// Principal is what the authenticator learns about a credential's user.
type Principal struct {
	UserID  string
	Roles   []string
	Revoked bool
	// Scopes of an API key (nil for sessions).
	Scopes []string
	KeyID  string
}

// SessionPrincipal returns the roles of userID and whether sessionID has been
// revoked. A session the read model has not seen yet is not revoked: the
// token that names it was signed by this server.
func (h *CredentialsHandler) SessionPrincipal(ctx context.Context, userID, sessionID string) (Principal, error) {
	if !isUUID(userID) || !isUUID(sessionID) {
		return Principal{Revoked: true}, nil
	}
	var row struct {
		Roles   pq.StringArray `db:"roles"`
		Revoked bool           `db:"revoked"`
	}
	err := h.r.db.GetContext(ctx, &row, `SELECT
			coalesce((SELECT roles FROM users WHERE id = $1), '{user}') AS roles,
			coalesce((SELECT revoked_at IS NOT NULL OR user_id <> $1 FROM sessions WHERE id = $2), false) AS revoked`,
		userID, sessionID)
	if err != nil {
		return Principal{}, err
	}
	return Principal{UserID: userID, Roles: row.Roles, Revoked: row.Revoked}, nil
}

// KeyPrincipal returns the API key stored under keyHash with its owner's
// roles; found is false for unknown, revoked or expired keys.
func (h *CredentialsHandler) KeyPrincipal(ctx context.Context, keyHash string) (Principal, bool, error) {
	var row struct {
		ID     string         `db:"id"`
		UserID string         `db:"user_id"`
		Scopes pq.StringArray `db:"scopes"`
		Roles  pq.StringArray `db:"roles"`
	}
	err := h.r.db.GetContext(ctx, &row, `SELECT k.id, k.user_id, k.scopes, coalesce(u.roles, '{user}') AS roles
		FROM api_keys k LEFT JOIN users u ON u.id = k.user_id
		WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())`, keyHash)
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, false, nil
	}
	if err != nil {
		return Principal{}, false, err
	}
	return Principal{UserID: row.UserID, Roles: row.Roles, Scopes: row.Scopes, KeyID: row.ID}, true, nil
}
