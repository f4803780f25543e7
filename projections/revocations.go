package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/engramhq/engram/domain/apikey"
	"github.com/engramhq/engram/domain/session"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/platform/cache"
)

// RevocationsProjector is the name of the projector of the revocation cache.
const RevocationsProjector = "revocations"

// Keys of the revocation cache (under the cache's own prefix).
const (
	revokedSessionKey = "revoked:session:"
	revokedKeyKey     = "revoked:apikey:"
	// revocationsCompleteKey is present when every revocation that still
	// matters is in the cache: a miss then means "not revoked". It vanishes
	// with everything else when the cache is emptied (Redis restarted, or
	// back after an outage), which sends lookups to the read model until a
	// warm-up has refilled the cache.
	revocationsCompleteKey = "revoked:complete"
)

// completeMemo is how long an instance trusts that it saw the complete
// marker, to spare a second cache read on every request.
const completeMemo = time.Second

// completeTTL is how long the complete marker lives: its expiry makes the
// next lookup warm the cache again, which repairs anything a lost write
// left out.
const completeTTL = time.Hour

// RevocationCache is what the revocations need of the cache.
type RevocationCache interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Backend is cache.BackendRedis when the cache is shared by every
	// instance.
	Backend() string
}

// Revocations is the read model that answers, on every request and without
// a database query, "has this session (or API key) been revoked?". It lives
// in the cache (Redis, shared by every instance) and is written three ways:
//
//   - directly, by the command that revokes (RevokeSession, RevokeKey), so
//     that the next request refuses the credential, on any instance;
//   - by its projector (Apply), for revocations stored by any other process,
//     or whose direct write was lost;
//   - by Warm, from the sessions read model, when the cache was emptied.
//
// An entry lives as long as the revoked credential could still be presented:
// the window given to NewRevocations (an access token's lifetime, plus
// leeway). When the cache is not shared (memory fallback) or not known to be
// complete, a miss is answered from the sessions read model.
type Revocations struct {
	cache  RevocationCache
	db     *sql.DB
	window time.Duration
	logger *slog.Logger
	now    func() time.Time

	completeUntil atomic.Int64 // unix nanoseconds until which the complete marker is trusted
	warming       atomic.Bool
}

var _ Projector = (*Revocations)(nil)

// NewRevocations returns the revocation read model over c and the read
// models in db. window is how long after its revocation a credential may
// still be presented: the access token lifetime plus the clock leeway.
func NewRevocations(c RevocationCache, db *sql.DB, window time.Duration, logger *slog.Logger) (*Revocations, error) {
	if c == nil || db == nil || logger == nil {
		return nil, errors.New("revocations: cache, database and logger are required")
	}
	if window <= 0 {
		return nil, errors.New("revocations: the window must be positive")
	}
	return &Revocations{cache: c, db: db, window: window, logger: logger, now: time.Now}, nil
}

// Name returns RevocationsProjector.
func (r *Revocations) Name() string { return RevocationsProjector }

// Description says what the projector builds.
func (r *Revocations) Description() string {
	return "revoked sessions and API keys, in the cache (refilled from the sessions read model by a warm-up)"
}

// Wants reports whether e revokes a session or an API key.
func (r *Revocations) Wants(e eventstore.Event) bool {
	return e.StreamType == session.StreamType && e.Type == session.EventRevoked ||
		e.StreamType == apikey.StreamType && e.Type == apikey.EventRevoked
}

// Apply caches the revocation that e records, if it records one that still
// matters. Writing an entry twice changes nothing, so replays are harmless.
func (r *Revocations) Apply(ctx context.Context, _ Execer, e eventstore.Event) error {
	switch {
	case e.StreamType == session.StreamType && e.Type == session.EventRevoked:
		return r.mark(ctx, revokedSessionKey+idOf(e, session.StreamType), e.RecordedAt)
	case e.StreamType == apikey.StreamType && e.Type == apikey.EventRevoked:
		return r.mark(ctx, revokedKeyKey+idOf(e, apikey.StreamType), e.RecordedAt)
	}
	return nil
}

// mark writes the entry of a credential revoked at "at", to live until the
// end of the window; it writes nothing when the window has passed.
func (r *Revocations) mark(ctx context.Context, key string, at time.Time) error {
	ttl := at.Add(r.window).Sub(r.now())
	if ttl <= 0 {
		return nil
	}
	if err := r.cache.Set(ctx, key, []byte{'1'}, ttl); err != nil {
		return fmt.Errorf("cache revocation: %w", err)
	}
	return nil
}

// RevokeSession records at once that the session is revoked. A failure is
// logged here; the projector writes the entry again from the event.
func (r *Revocations) RevokeSession(ctx context.Context, sessionID string) {
	if err := r.mark(ctx, revokedSessionKey+sessionID, r.now()); err != nil {
		r.logger.WarnContext(ctx, "session revocation not cached; the revocations projector will cache it", "session_id", sessionID, "err", err)
	}
}

// RevokeKey records at once that the API key is revoked. A failure is logged
// here; the projector writes the entry again from the event.
func (r *Revocations) RevokeKey(ctx context.Context, keyID string) {
	if err := r.mark(ctx, revokedKeyKey+keyID, r.now()); err != nil {
		r.logger.WarnContext(ctx, "API key revocation not cached; the revocations projector will cache it", "key_id", keyID, "err", err)
	}
}

// SessionRevoked reports whether the session was revoked. A session the read
// model has not seen yet is not revoked: only this server signs the tokens
// that name sessions. An identifier that is not a session id is revoked.
func (r *Revocations) SessionRevoked(ctx context.Context, sessionID string) (bool, error) {
	if !validUUID(sessionID) {
		return true, nil
	}
	key := revokedSessionKey + sessionID
	_, hit, err := r.cache.Get(ctx, key)
	if err != nil {
		return false, fmt.Errorf("revocation of session %s: %w", sessionID, err)
	}
	if hit {
		return true, nil
	}
	if r.complete(ctx) {
		return false, nil
	}
	var revokedAt sql.NullTime
	err = r.db.QueryRowContext(ctx, `SELECT revoked_at FROM sessions WHERE id = $1`, sessionID).Scan(&revokedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("revocation of session %s: %w", sessionID, err)
	}
	if !revokedAt.Valid {
		return false, nil
	}
	if err := r.mark(ctx, key, revokedAt.Time); err != nil {
		r.logger.WarnContext(ctx, "session revocation not cached", "session_id", sessionID, "err", err)
	}
	return true, nil
}

// KeyRevoked reports whether the cache knows the API key to be revoked. It
// covers the moments between a revocation and the api_keys read model
// catching up; callers look the key up in that read model as well.
func (r *Revocations) KeyRevoked(ctx context.Context, keyID string) (bool, error) {
	_, hit, err := r.cache.Get(ctx, revokedKeyKey+keyID)
	if err != nil {
		return false, fmt.Errorf("revocation of API key %s: %w", keyID, err)
	}
	return hit, nil
}

// complete reports whether a cache miss means "not revoked": the cache is
// shared by every instance and holds the complete marker. When the marker
// is missing it starts a warm-up in the background.
func (r *Revocations) complete(ctx context.Context) bool {
	if r.cache.Backend() != cache.BackendRedis {
		r.completeUntil.Store(0)
		return false
	}
	now := r.now()
	if now.UnixNano() < r.completeUntil.Load() {
		return true
	}
	_, present, err := r.cache.Get(ctx, revocationsCompleteKey)
	if err == nil && present {
		r.completeUntil.Store(now.Add(completeMemo).UnixNano())
		return true
	}
	if err == nil && r.warming.CompareAndSwap(false, true) {
		go func() {
			defer r.warming.Store(false)
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if err := r.Warm(wctx); err != nil {
				r.logger.Warn("revocation cache warm-up failed; revocations are checked in the database meanwhile", "err", err)
			}
		}()
	}
	return false
}

// Warm fills the cache with every session revocation of the last window from
// the sessions read model, then marks the cache complete. It does nothing
// when the cache is not shared: each lookup then asks the read model.
func (r *Revocations) Warm(ctx context.Context) error {
	if r.cache.Backend() != cache.BackendRedis {
		return nil
	}
	rows, err := r.db.QueryContext(ctx, `SELECT id, revoked_at FROM sessions WHERE revoked_at > $1`, r.now().Add(-r.window))
	if err != nil {
		return fmt.Errorf("warm revocations: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id string
		var at time.Time
		if err := rows.Scan(&id, &at); err != nil {
			return fmt.Errorf("warm revocations: %w", err)
		}
		if err := r.mark(ctx, revokedSessionKey+id, at); err != nil {
			return fmt.Errorf("warm revocations: %w", err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("warm revocations: %w", err)
	}
	if r.cache.Backend() != cache.BackendRedis {
		return nil // Redis went away meanwhile: what was written is not shared.
	}
	if err := r.cache.Set(ctx, revocationsCompleteKey, []byte{'1'}, completeTTL); err != nil {
		return fmt.Errorf("warm revocations: %w", err)
	}
	r.logger.Debug("revocation cache warmed", "sessions", n)
	return nil
}

func validUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}
