package projections_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/engramhq/engram/domain/apikey"
	"github.com/engramhq/engram/domain/session"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/platform/cache"
	"github.com/engramhq/engram/projections"
	"github.com/engramhq/engram/test/pgtest"
)

// sharedMemory is an in-memory cache that says it is shared by every
// instance, as Redis is.
type sharedMemory struct{ *cache.Memory }

func (sharedMemory) Backend() string { return cache.BackendRedis }

func newRevocations(t *testing.T, c projections.RevocationCache) *projections.Revocations {
	t.Helper()
	r, err := projections.NewRevocations(c, pgtest.New(t).DB, time.Hour, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func revoked(t *testing.T, r *projections.Revocations, id string) bool {
	t.Helper()
	got, err := r.SessionRevoked(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestRevocationsProjector(t *testing.T) {
	ctx := context.Background()
	mem := cache.NewMemory()
	defer mem.Close()
	r := newRevocations(t, sharedMemory{mem})
	now := time.Now()
	s1, s2, old, key := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	events := []eventstore.Event{
		{StreamID: session.StreamID(s1), StreamType: session.StreamType, Type: session.EventRevoked, RecordedAt: now},
		{StreamID: session.StreamID(s1), StreamType: session.StreamType, Type: session.EventRevoked, RecordedAt: now}, // redelivered
		{StreamID: session.StreamID(s2), StreamType: session.StreamType, Type: session.EventRefreshed, RecordedAt: now},
		{StreamID: session.StreamID(old), StreamType: session.StreamType, Type: session.EventRevoked, RecordedAt: now.Add(-2 * time.Hour)},
		{StreamID: apikey.StreamID(key), StreamType: apikey.StreamType, Type: apikey.EventRevoked, RecordedAt: now},
	}
	for _, e := range events {
		if err := r.Apply(ctx, nil, e); err != nil {
			t.Fatalf("Apply(%s): %v", e.Type, err)
		}
	}
	// Mark the cache complete, so that misses mean "not revoked" and the
	// answers below come from the cache alone.
	if err := r.Warm(ctx); err != nil {
		t.Fatal(err)
	}
	if !revoked(t, r, s1) || revoked(t, r, s2) {
		t.Fatal("session revocations")
	}
	if revoked(t, r, old) {
		t.Fatal("a revocation older than the window was cached")
	}
	if got, err := r.KeyRevoked(ctx, key); err != nil || !got {
		t.Fatalf("KeyRevoked = %v, %v", got, err)
	}
	if got, _ := r.KeyRevoked(ctx, uuid.NewString()); got {
		t.Fatal("an unknown key is revoked")
	}
	if !revoked(t, r, "not-a-session-id") {
		t.Fatal("an identifier that names no session must count as revoked")
	}
	if r.Name() != projections.RevocationsProjector {
		t.Fatalf("Name = %q", r.Name())
	}
}

func TestRevocationsFallBackToTheReadModel(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		cache func(*cache.Memory) projections.RevocationCache
	}{
		{"memory cache", func(m *cache.Memory) projections.RevocationCache { return m }},
		{"shared cache before warm-up", func(m *cache.Memory) projections.RevocationCache { return sharedMemory{m} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := cache.NewMemory()
			defer mem.Close()
			db := pgtest.New(t)
			r, err := projections.NewRevocations(tc.cache(mem), db.DB, time.Hour, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			active, recent, old := uuid.NewString(), uuid.NewString(), uuid.NewString()
			for _, s := range []struct {
				id      string
				revoked any
			}{{active, nil}, {recent, time.Now().Add(-time.Minute)}, {old, time.Now().Add(-48 * time.Hour)}} {
				if _, err := db.ExecContext(ctx, `INSERT INTO sessions (id, user_id, created_at, expires_at, revoked_at, version)
					VALUES ($1, $2, now(), now() + interval '1 day', $3, 1)`, s.id, uuid.NewString(), s.revoked); err != nil {
					t.Fatal(err)
				}
			}
			if revoked(t, r, active) || !revoked(t, r, recent) {
				t.Fatal("the read model's answers")
			}
			// A revocation older than the window matters to nobody (the tokens
			// of that session have expired); with a shared cache the first
			// lookup starts a warm-up that leaves it out, so only the
			// unshared cache, which always asks the read model, must see it.
			if tc.name == "memory cache" && !revoked(t, r, old) {
				t.Fatal("the read model's answer for an old revocation")
			}
			if revoked(t, r, uuid.NewString()) {
				t.Fatal("a session the read model has not seen yet is not revoked")
			}
			// The read model's answer was cached: it holds without the row.
			if _, err := db.ExecContext(ctx, `DELETE FROM sessions WHERE id = $1`, recent); err != nil {
				t.Fatal(err)
			}
			if !revoked(t, r, recent) {
				t.Fatal("the revocation found in the read model was not cached")
			}
		})
	}
}

func TestRevocationsWarmUp(t *testing.T) {
	ctx := context.Background()
	mem := cache.NewMemory()
	defer mem.Close()
	db := pgtest.New(t)
	r, err := projections.NewRevocations(sharedMemory{mem}, db.DB, time.Hour, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	recent, old, direct := uuid.NewString(), uuid.NewString(), uuid.NewString()
	for id, at := range map[string]time.Time{recent: time.Now().Add(-time.Minute), old: time.Now().Add(-48 * time.Hour)} {
		if _, err := db.ExecContext(ctx, `INSERT INTO sessions (id, user_id, created_at, expires_at, revoked_at, version)
			VALUES ($1, $2, now(), now() + interval '1 day', $3, 1)`, id, uuid.NewString(), at); err != nil {
			t.Fatal(err)
		}
	}
	// A miss on a cache not known to be complete asks the read model and
	// starts a warm-up in the background.
	if !revoked(t, r, recent) {
		t.Fatal("recent revocation")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok, _ := mem.Get(ctx, "revoked:complete"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cache was not warmed within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, ok, _ := mem.Get(ctx, "revoked:session:"+old); ok {
		t.Fatal("the warm-up cached a revocation older than the window")
	}
	// From now on the cache alone answers: a revocation it is not told of
	// is not seen; one it is told of directly is seen at once.
	if _, err := db.ExecContext(ctx, `UPDATE sessions SET revoked_at = NULL WHERE id = $1`, recent); err != nil {
		t.Fatal(err)
	}
	if !revoked(t, r, recent) {
		t.Fatal("the warmed entry was lost")
	}
	if revoked(t, r, direct) {
		t.Fatal("unknown session revoked")
	}
	r.RevokeSession(ctx, direct)
	if !revoked(t, r, direct) {
		t.Fatal("RevokeSession is not seen at once")
	}
	r.RevokeKey(ctx, direct)
	if got, _ := r.KeyRevoked(ctx, direct); !got {
		t.Fatal("RevokeKey is not seen at once")
	}
}

func TestNewRevocationsRefusesMissingParts(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	mem := cache.NewMemory()
	defer mem.Close()
	if _, err := projections.NewRevocations(nil, nil, time.Hour, logger); err == nil {
		t.Error("nil cache and database accepted")
	}
	db := pgtest.New(t)
	if _, err := projections.NewRevocations(mem, db.DB, 0, logger); err == nil {
		t.Error("zero window accepted")
	}
}
