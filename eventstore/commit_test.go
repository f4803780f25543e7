package eventstore_test

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/engramhq/engram/eventstore"
)

// Appends queued while the committer is busy are written as one group, in
// one transaction. In that group one append clashes on its expected version
// and another replays an idempotency key: both fail alone, and every other
// append of the group — plain ones and one with a claim — is committed.
func TestGroupCommitFailsOnlyTheClashingAppends(t *testing.T) {
	ctx := t.Context()
	s := newStore(t, eventstore.WithGroupCommit(1, 64))

	// Before the group: a stream at version 2, and a key already used.
	busy := stream(uuid.NewString())
	if _, err := s.Append(ctx, busy, 0, two(), eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, stream(uuid.NewString()), 0, one(), eventstore.Metadata{}, idem("used")); err != nil {
		t.Fatal(err)
	}

	release := holdCommitter(t, s, "held")

	type outcome struct {
		name string
		res  eventstore.AppendResult
		err  error
	}
	appends := map[string]func() (eventstore.AppendResult, error){
		"clash": func() (eventstore.AppendResult, error) {
			return s.Append(ctx, busy, 1, one(), eventstore.Metadata{}) // the stream is at 2
		},
		"replay": func() (eventstore.AppendResult, error) {
			return s.Append(ctx, stream(uuid.NewString()), 0, one(), eventstore.Metadata{}, idem("used"))
		},
		"plain1": func() (eventstore.AppendResult, error) {
			return s.Append(ctx, stream(uuid.NewString()), 0, one(), eventstore.Metadata{})
		},
		"plain2": func() (eventstore.AppendResult, error) {
			return s.Append(ctx, busy, 2, one(), eventstore.Metadata{ActorID: "u2"})
		},
		"claim": func() (eventstore.AppendResult, error) {
			return s.Append(ctx, stream(uuid.NewString()), 0, one(), eventstore.Metadata{},
				eventstore.WithClaims(eventstore.Claim{Scope: "test.name", Value: "unique"}))
		},
		"fresh-key": func() (eventstore.AppendResult, error) {
			return s.Append(ctx, stream(uuid.NewString()), 0, one(), eventstore.Metadata{}, idem("fresh"))
		},
	}
	outcomes := make(chan outcome, len(appends))
	var wg sync.WaitGroup
	for name, fn := range appends {
		wg.Go(func() {
			res, err := fn()
			outcomes <- outcome{name, res, err}
		})
	}
	waitFor(t, func() bool { return s.PendingAppends() == len(appends) })
	release()
	wg.Wait()
	close(outcomes)

	txs := make(map[uint64]bool)
	for o := range outcomes {
		switch o.name {
		case "clash":
			if !errors.Is(o.err, eventstore.ErrConcurrency) {
				t.Errorf("clash: %v, want ErrConcurrency", o.err)
			}
		case "replay":
			if !errors.Is(o.err, eventstore.ErrIdempotencyKeyUsed) {
				t.Errorf("replay: %v, want ErrIdempotencyKeyUsed", o.err)
			}
		default:
			if o.err != nil {
				t.Errorf("%s: %v", o.name, o.err)
				continue
			}
			txs[o.res.Events[0].TxID] = true
		}
	}
	if len(txs) != 1 {
		t.Errorf("the group's committed appends are in %d transactions, want 1", len(txs))
	}

	// What the group wrote is all there, chained, and nothing else.
	events, err := s.ReadStream(ctx, busy.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 3 || events[2].Metadata.ActorID != "u2" {
		t.Fatalf("busy stream: %d events, want 3 with the group's append last", len(events))
	}
	if breaks, err := s.VerifyStream(ctx, busy.ID); err != nil || len(breaks) > 0 {
		t.Fatalf("hash chain of the busy stream: %+v, %v", breaks, err)
	}
	if r, found, err := s.IdempotentResponse(ctx, "u1", "fresh"); err != nil || !found || r.Status != 201 {
		t.Fatalf("key stored by the group: %+v %v %v", r, found, err)
	}
	all, err := s.ReadAll(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2+1+1+4 { // before, the committer's own, the group's four
		t.Fatalf("%d events in the log, want 8", len(all))
	}
}

// idem is an idempotency key of scope u1 whose response names the append's
// last position.
func idem(key string) eventstore.AppendOption {
	return eventstore.WithIdempotency(eventstore.Idempotency{Scope: "u1", Key: key, RequestHash: []byte("h"),
		Render: func(r eventstore.AppendResult) (int, []byte, error) {
			return 201, fmt.Appendf(nil, `{"position":%d}`, r.LastPosition()), nil
		}})
}

// one is a single event to append; two is a pair.
func one() []eventstore.NewEvent { return []eventstore.NewEvent{ev("test.happened", `{}`)} }

func two() []eventstore.NewEvent {
	return []eventstore.NewEvent{ev("test.a", `{}`), ev("test.b", `{}`)}
}

// holdCommitter keeps the store's only committer busy until release: its
// append, made with an idempotency key (scope u1), waits for that key,
// which an open transaction holds.
func holdCommitter(t *testing.T, s *eventstore.Store, key string) (release func()) {
	t.Helper()
	db := s.DB()
	blocker, err := db.BeginTxx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = blocker.Rollback() })
	if _, err := blocker.ExecContext(t.Context(), `INSERT INTO idempotency_keys (scope, key, request_hash, status, response, position)
		VALUES ('u1', $1, 'h', 0, ''::bytea, 0)`, key); err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() {
		_, err := s.Append(t.Context(), stream(uuid.NewString()), 0, one(), eventstore.Metadata{}, idem(key))
		first <- err
	}()
	waitFor(t, func() bool { return waitingOnLock(t, db.DB) })
	return func() {
		t.Helper()
		if err := blocker.Rollback(); err != nil {
			t.Fatal(err)
		}
		if err := <-first; err != nil {
			t.Fatalf("the committer's own append: %v", err)
		}
	}
}

// Guarded appends share their group's statement: the one whose guarded
// stream moved past its version fails alone with ErrGuardChanged and writes
// nothing — not its events, not its idempotency key — while the others,
// guarded on the current version or not guarded, are committed.
func TestGroupCommitChecksEachGuard(t *testing.T) {
	ctx := t.Context()
	s := newStore(t, eventstore.WithGroupCommit(1, 64))
	ws := stream(uuid.NewString()) // the stream the guards name, at version 2
	if _, err := s.Append(ctx, ws, 0, two(), eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	stale := eventstore.WithGuard(eventstore.Guard{StreamID: ws.ID, Version: 1})
	current := eventstore.WithGuard(eventstore.Guard{StreamID: ws.ID, Version: 2})

	// Alone: a guard that holds, then one that no longer does.
	if _, err := s.Append(ctx, stream(uuid.NewString()), 0, one(), eventstore.Metadata{}, current); err != nil {
		t.Fatalf("guard on the current version: %v", err)
	}
	if _, err := s.Append(ctx, stream(uuid.NewString()), 0, one(), eventstore.Metadata{}, stale); !errors.Is(err, eventstore.ErrGuardChanged) {
		t.Fatalf("guard on an old version: %v, want ErrGuardChanged", err)
	}

	// In one group with keys (a transaction, savepoints), then in one of
	// plain appends only (one statement).
	appends := map[string]struct {
		events func() []eventstore.NewEvent
		opts   []eventstore.AppendOption
	}{
		"stale":       {two, []eventstore.AppendOption{stale}},
		"stale-key":   {one, []eventstore.AppendOption{stale, idem("k1")}},
		"current":     {two, []eventstore.AppendOption{current}},
		"current-key": {one, []eventstore.AppendOption{current, idem("k2")}},
		"plain":       {one, nil},
	}
	groups := [][]string{{"stale", "stale-key", "current", "current-key", "plain"}, {"stale", "current", "plain"}}
	for i, group := range groups {
		release := holdCommitter(t, s, fmt.Sprint("held", i))
		streams := map[string]eventstore.Stream{}
		errs := make(map[string]error)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, name := range group {
			st := stream(uuid.NewString())
			streams[name] = st
			wg.Go(func() {
				a := appends[name]
				_, err := s.Append(ctx, st, 0, a.events(), eventstore.Metadata{}, a.opts...)
				mu.Lock()
				errs[name] = err
				mu.Unlock()
			})
		}
		waitFor(t, func() bool { return s.PendingAppends() == len(group) })
		release()
		wg.Wait()

		for name, err := range errs {
			events, rerr := s.ReadStream(ctx, streams[name].ID, 0)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if strings.HasPrefix(name, "stale") {
				if !errors.Is(err, eventstore.ErrGuardChanged) || len(events) != 0 {
					t.Errorf("group %d, %s: %v and %d events, want ErrGuardChanged and none", i, name, err, len(events))
				}
				continue
			}
			if err != nil || len(events) == 0 || events[0].GlobalPosition == 0 {
				t.Errorf("group %d, %s: %v, %d events", i, name, err, len(events))
			}
		}
	}
	if _, found, err := s.IdempotentResponse(ctx, "u1", "k1"); err != nil || found {
		t.Errorf("the stale append's key was stored (%v): a retry could not use it", err)
	}
	if _, found, err := s.IdempotentResponse(ctx, "u1", "k2"); err != nil || !found {
		t.Errorf("the current append's key: found %v, %v", found, err)
	}
}

// A lone append is written at once, and appends made together by many
// callers share transactions.
func TestGroupCommitUnderConcurrency(t *testing.T) {
	ctx := t.Context()
	s := newStore(t, eventstore.WithGroupCommit(2, 64))
	const writers, each = 16, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			st := stream(fmt.Sprint("w", w))
			for v := range each {
				if _, err := s.Append(ctx, st, v, one(), eventstore.Metadata{}); err != nil {
					errs <- fmt.Errorf("writer %d version %d: %w", w, v+1, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all, err := s.ReadAll(ctx, 0, writers*each+1)
	if err != nil {
		t.Fatal(err)
	}
	txs := make(map[uint64]bool)
	for _, e := range all {
		txs[e.TxID] = true
	}
	if len(all) != writers*each {
		t.Fatalf("%d events, want %d", len(all), writers*each)
	}
	if len(txs) >= len(all) {
		t.Fatalf("%d transactions for %d appends: nothing was grouped", len(txs), len(all))
	}
	t.Logf("%d appends in %d transactions", len(all), len(txs))
}

// waitingOnLock reports whether a session of the test database waits for
// a lock.
func waitingOnLock(t *testing.T, db *sql.DB) bool {
	var n int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}
