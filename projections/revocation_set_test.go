package projections_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/projections"
	"github.com/engramhq/engram/projections/projectionstest"
)

// The revocation set: loaded from the log, fed by events, answers from
// memory; it fails closed when it cannot show it is current, and forgets
// sessions once their window has passed.
func TestRevocationSet(t *testing.T) {
	ctx := t.Context()
	log := projectionstest.New(t)
	db, store := log.DB, log.Store
	revokedBefore, keyBefore, live := uuid.NewString(), uuid.NewString(), uuid.NewString()
	versions := map[string]int{}
	appendEvent := func(streamType, id, eventType string) eventstore.AppendResult {
		t.Helper()
		streamID := streamType + "-" + id
		res, err := store.Append(ctx, eventstore.Stream{ID: streamID, Type: streamType}, versions[streamID],
			[]eventstore.NewEvent{{ID: uuid.NewString(), Type: eventType, Data: []byte(`{"reason":"logout"}`)}}, eventstore.Metadata{})
		if err != nil {
			t.Fatal(err)
		}
		versions[streamID]++
		return res
	}
	appendEvent("session", revokedBefore, "session.revoked")
	appendEvent("apikey", keyBefore, "apikey.revoked")
	appendEvent("session", live, "session.refreshed")

	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	advance := func(d time.Duration) { clock.Add(int64(d)) }
	set, err := projections.NewRevocationSet(projections.RevocationSetConfig{Window: time.Hour, StaleAfter: 3 * time.Second, Now: now},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := set.SessionRevoked(ctx, live); !errors.Is(err, projections.ErrRevocationsUnknown) {
		t.Fatalf("before Load: %v, want ErrRevocationsUnknown", err)
	}
	if set.Status().Current {
		t.Fatal("Status is current before Load")
	}
	if err := set.Load(ctx, db.DB, store.Head); err != nil {
		t.Fatal(err)
	}
	expect := func(what string, got bool, err error, want bool) {
		t.Helper()
		if err != nil || got != want {
			t.Fatalf("%s = %v, %v; want %v", what, got, err, want)
		}
	}
	revoked, err := set.SessionRevoked(ctx, revokedBefore)
	expect("session revoked before start", revoked, err, true)
	revoked, err = set.KeyRevoked(ctx, keyBefore)
	expect("key revoked before start", revoked, err, true)
	revoked, err = set.SessionRevoked(ctx, live)
	expect("live session", revoked, err, false)
	revoked, err = set.SessionRevoked(ctx, "not-a-session-id")
	expect("malformed session id", revoked, err, true)

	// A revocation arrives from the tail; another is made here.
	res := appendEvent("session", live, "session.revoked")
	set.Observe(res.Events[0])
	revoked, err = set.SessionRevoked(ctx, live)
	expect("session revoked on the tail", revoked, err, true)
	local := uuid.NewString()
	set.RevokeKey(ctx, local)
	revoked, err = set.KeyRevoked(ctx, local)
	expect("key revoked here", revoked, err, true)

	// Nothing shows the set is current for longer than the bound: closed.
	advance(4 * time.Second)
	if _, err := set.SessionRevoked(ctx, uuid.NewString()); !errors.Is(err, projections.ErrRevocationsUnknown) {
		t.Fatalf("stale set: %v, want ErrRevocationsUnknown", err)
	}
	if _, err := set.KeyRevoked(ctx, uuid.NewString()); !errors.Is(err, projections.ErrRevocationsUnknown) {
		t.Fatalf("stale set, key: %v, want ErrRevocationsUnknown", err)
	}
	if set.Status().Current {
		t.Fatal("Status is current when stale")
	}

	// The head is what the set applied: current again.
	runOnce(t, set, store.Head)
	revoked, err = set.SessionRevoked(ctx, uuid.NewString())
	expect("unknown session after a check", revoked, err, false)

	// The head moves ahead of the set: it stays current as of the last head
	// it had applied, until it reaches the new one.
	ahead := appendEvent("session", uuid.NewString(), "session.revoked")
	aheadCursor := ahead.Events[0].Cursor()
	advance(time.Second)
	runOnce(t, set, headReaching(aheadCursor, store)) // target: the new head, read now
	advance(2500 * time.Millisecond)
	if _, err := set.SessionRevoked(ctx, uuid.NewString()); !errors.Is(err, projections.ErrRevocationsUnknown) {
		t.Fatalf("behind the head for 3.5s: %v, want ErrRevocationsUnknown", err)
	}
	set.Observe(ahead.Events[0])
	revoked, err = set.SessionRevoked(ctx, uuid.NewString())
	expect("caught up with the head read 2.5s ago", revoked, err, false)

	// The head cannot be read (database lost): closed after the bound.
	failing := func(context.Context) (eventstore.Cursor, error) {
		return eventstore.Cursor{}, errors.New("connection refused")
	}
	advance(3500 * time.Millisecond)
	runOnce(t, set, failing)
	if _, err := set.SessionRevoked(ctx, uuid.NewString()); !errors.Is(err, projections.ErrRevocationsUnknown) {
		t.Fatalf("head unreadable: %v, want ErrRevocationsUnknown", err)
	}

	// Past the window, a revoked session is forgotten; API keys are kept.
	advance(2 * time.Hour)
	runOnce(t, set, store.Head)
	revoked, err = set.SessionRevoked(ctx, live)
	expect("session after its window", revoked, err, false)
	revoked, err = set.KeyRevoked(ctx, keyBefore)
	expect("key after the window", revoked, err, true)
	if st := set.Status(); !st.Current || st.Keys != 2 || st.Sessions != 0 {
		t.Fatalf("Status = %+v", st)
	}
}

// runOnce runs one check of the set against head.
func runOnce(t *testing.T, set *projections.RevocationSet, head func(context.Context) (eventstore.Cursor, error)) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	set.Run(ctx, func(ctx context.Context) (eventstore.Cursor, error) {
		defer cancel() // Run checks once, then sees the context ended
		return head(ctx)
	})
}

// headReaching returns store.Head, polled until the head has reached c:
// other transactions on the server can hold the snapshot horizon back for a
// moment.
func headReaching(c eventstore.Cursor, store *eventstore.Store) func(context.Context) (eventstore.Cursor, error) {
	return func(ctx context.Context) (eventstore.Cursor, error) {
		deadline := time.Now().Add(10 * time.Second)
		for {
			h, err := store.Head(ctx)
			if err != nil || !c.After(h) || time.Now().After(deadline) {
				return h, err
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
