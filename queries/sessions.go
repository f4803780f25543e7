package queries

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/lib/pq"

	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/apikey"
	"github.com/engramhq/engram/domain/user"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/projections"
)

// ListSessionsHandler lists the caller's sessions.
type ListSessionsHandler struct{ r *reader }

// Handle returns the caller's sessions, newest first (at most MaxLimit).
// Only session credentials list sessions (access.CheckCredentials).
func (h *ListSessionsHandler) Handle(ctx context.Context, actor access.Actor, minPosition int64) ([]Session, error) {
	if err := access.CheckCredentials(actor); err != nil {
		return nil, err
	}
	if err := h.r.wait(ctx, projections.SessionsProjector, minPosition); err != nil {
		return nil, err
	}
	out := []Session{}
	err := h.r.db.SelectContext(ctx, &out, `SELECT id, user_agent, ip, created_at, last_refreshed_at, expires_at, revoked_at, revoked_reason
		FROM sessions WHERE user_id = $1 ORDER BY created_at DESC LIMIT $2`, actor.UserID, MaxLimit)
	for i := range out {
		out[i].Current = out[i].ID == actor.SessionID
	}
	return out, err
}

// CredentialsHandler answers the authenticator: which key is this, and
// which roles does its user hold. (Access tokens carry their user's roles,
// and session revocations are answered by projections.RevocationSet.)
type CredentialsHandler struct{ r *reader }

// Await returns once the credentials read model (sessions and API keys)
// has applied position, so that every instance accepts a key issued up to
// there. It fails with projections.ErrNotCaughtUp when the read model is
// late (see New's waiter).
func (h *CredentialsHandler) Await(ctx context.Context, position int64) error {
	return h.r.wait(ctx, projections.SessionsProjector, position)
}

// Principal is what the authenticator learns about an API key and its
// user.
type Principal struct {
	UserID string
	Roles  []string
	// Scopes of the API key.
	Scopes []string
	KeyID  string
}

// KeyPrincipal returns the API key stored under keyHash with its owner's
// roles; found is false for unknown, revoked or expired keys. A key found
// once is then answered from the in-memory read cache, which its key's and
// its owner's events evict; a revocation is refused by the caller's
// revocation check as well, so the cache never lets a revoked key in.
func (h *CredentialsHandler) KeyPrincipal(ctx context.Context, keyHash string) (Principal, bool, error) {
	cacheKey := "apikey:" + keyHash
	if h.r.cache != nil {
		if v, ok := h.r.cache.Get(cacheKey); ok {
			if k, ok := v.(cachedKey); ok && (k.expiresAt.IsZero() || time.Now().Before(k.expiresAt)) {
				return k.principal, true, nil
			}
		}
	}
	var asOf eventstore.Cursor
	fill := false
	if h.r.cache != nil && h.r.checkpoints != nil {
		var err error
		asOf, err = h.r.checkpoints.Least(ctx, projections.SessionsProjector, projections.UsersProjector)
		fill = err == nil
	}
	var row struct {
		ID        string         `db:"id"`
		UserID    string         `db:"user_id"`
		Scopes    pq.StringArray `db:"scopes"`
		Roles     pq.StringArray `db:"roles"`
		ExpiresAt sql.NullTime   `db:"expires_at"`
	}
	err := h.r.db.GetContext(ctx, &row, `SELECT k.id, k.user_id, k.scopes, coalesce(u.roles, '{user}') AS roles, k.expires_at
		FROM api_keys k LEFT JOIN users u ON u.id = k.user_id
		WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())`, keyHash)
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, false, nil
	}
	if err != nil {
		return Principal{}, false, err
	}
	p := Principal{UserID: row.UserID, Roles: row.Roles, Scopes: row.Scopes, KeyID: row.ID}
	if fill {
		h.r.cache.Put(cacheKey, cachedKey{principal: p, expiresAt: row.ExpiresAt.Time}, asOf, 256,
			apikey.StreamID(row.ID), user.StreamID(row.UserID))
	}
	return p, true, nil
}

// cachedKey is an API key's principal as the read cache keeps it.
type cachedKey struct {
	principal Principal
	expiresAt time.Time // zero: never
}
