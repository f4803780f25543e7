package eventstore_test

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/test/pgtest"
)

// breaksOf verifies the whole log and returns its breaks.
func breaksOf(t *testing.T, s *eventstore.Store) []eventstore.Break {
	t.Helper()
	var breaks []eventstore.Break
	if _, err := s.VerifyLog(context.Background(), "", func(b eventstore.Break) error {
		breaks = append(breaks, b)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return breaks
}

// leaves walks the log below horizon and returns position → leaf, and the
// positions of the events whose hash is not reproduced from their content.
func leaves(t *testing.T, s *eventstore.Store, horizon uint64) (map[int64][]byte, []int64) {
	t.Helper()
	out := map[int64][]byte{}
	var bad []int64
	var last int64
	if err := s.WalkLog(context.Background(), horizon, func(e eventstore.LogEntry) error {
		if e.Position <= last || len(e.Leaf) != 32 {
			t.Fatalf("entry %+v after position %d", e, last)
		}
		last = e.Position
		out[e.Position] = e.Leaf
		if !e.HashOK {
			bad = append(bad, e.Position)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out, bad
}

// Numbers in every spelling survive jsonb's respelling exactly: the hash
// computed from what Append was given verifies against what PostgreSQL
// returns.
func TestExactHashesVerifyAfterTheDatabaseRespellsNumbers(t *testing.T) {
	s := newStore(t)
	data := `{"a": 1.0, "b": 1e2, "c": 9007199254740993, "d": 0.1, "e": -0, "f": 1.5e-7, "g": 123456789012345678901234567890,
		"h": 1E+2, "i": [0.10000000000000001, -18446744073709551615, 2.50], "j": {"k": 1e-400}}`
	if _, err := s.Append(context.Background(), stream(uuid.NewString()), eventstore.NoStream,
		[]eventstore.NewEvent{ev("test.numbers", data)}, eventstore.Metadata{ActorID: "u"}); err != nil {
		t.Fatal(err)
	}
	if breaks := breaksOf(t, s); len(breaks) != 0 {
		t.Fatalf("breaks = %+v", breaks)
	}
	// Out of a double's range: refused, as before.
	if _, err := s.Append(context.Background(), stream(uuid.NewString()), eventstore.NoStream,
		[]eventstore.NewEvent{ev("test.numbers", `{"x": 1e309}`)}, eventstore.Metadata{}); err == nil {
		t.Fatal("1e309 appended")
	}
}

// Events hashed by releases before the exact scheme still verify, and a
// stream goes on from them; the leaves of a checkpoint bind their numbers
// exactly although their hashes do not.
func TestLegacyEventsVerifyAndTheirLeavesAreExact(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	db := s.DB()
	st := stream(uuid.NewString())
	old := &eventstore.Event{EventID: uuid.NewString(), StreamID: st.ID, StreamType: st.Type, StreamVersion: 1,
		Type: "test.weighed", SchemaVersion: 1, RecordedAt: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)}
	data, md := `{"grams": 12345678901234567890}`, `{"actor_id":"u"}`
	hash, err := eventstore.LegacyChainHash(nil, old, []byte(data), []byte(md))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO events (event_id, stream_id, stream_type, stream_version, type,
		schema_version, data, metadata, recorded_at, hash) VALUES ($1, $2, $3, 1, $4, 1, $5, $6, $7, $8)`,
		old.EventID, st.ID, st.Type, old.Type, data, md, old.RecordedAt, hash); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, st, 1, []eventstore.NewEvent{ev("test.weighed", `{"grams": 12345678901234567891}`)},
		eventstore.Metadata{ActorID: "u"}); err != nil {
		t.Fatal(err)
	}
	if breaks := breaksOf(t, s); len(breaks) != 0 {
		t.Fatalf("a legacy event followed by an exact one: breaks %+v", breaks)
	}
	horizon, err := s.LogHorizon(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before, bad := leaves(t, s, horizon)
	if len(before) != 2 || len(bad) != 0 {
		t.Fatalf("leaves = %d, want 2; hash not reproduced at %v", len(before), bad)
	}

	// As a superuser: the legacy event's number changed to one with the
	// same double, the exact event's likewise.
	pgtest.AsSuperuser(t, db, `UPDATE events SET data = '{"grams": 12345678901234567000}' WHERE stream_id = '`+st.ID+`'`)
	breaks := breaksOf(t, s)
	if len(breaks) != 1 || breaks[0].Version != 2 || breaks[0].Reason != "hash mismatch" {
		t.Fatalf("breaks = %+v: want the exact event's hash mismatch alone (the legacy hash is blind to it)", breaks)
	}
	after, bad := leaves(t, s, horizon)
	if len(bad) != 1 || bad[0] != breaks[0].Position {
		t.Fatalf("hash not reproduced at %v, want the exact event's position %d alone", bad, breaks[0].Position)
	}
	var changed []int64
	for p, leaf := range before {
		if !bytes.Equal(leaf, after[p]) {
			changed = append(changed, p)
		}
	}
	slices.Sort(changed)
	if len(changed) != 2 {
		t.Fatalf("changed leaves at %v, want both events", changed)
	}
}

// The horizon covers every event committed before it was taken and none
// written later.
func TestLogHorizonCoversWhatWasCommitted(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	st := stream(uuid.NewString())
	if _, err := s.Append(ctx, st, eventstore.NoStream, []eventstore.NewEvent{ev("test.a", `{}`), ev("test.b", `{}`)}, eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	horizon, err := s.LogHorizon(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, st, 2, []eventstore.NewEvent{ev("test.c", `{}`)}, eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := leaves(t, s, horizon); len(got) != 2 {
		t.Fatalf("%d events below the horizon, want 2", len(got))
	}
	later, err := s.LogHorizon(ctx)
	if all, _ := leaves(t, s, later); err != nil || later <= horizon || len(all) != 3 {
		t.Fatalf("later horizon %d (first %d): %v", later, horizon, err)
	}

	// A transaction left open keeps the horizon waiting.
	tx, err := s.DB().BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := s.LogHorizon(short); err == nil {
		t.Fatal("the horizon did not wait for the open transaction")
	}
}
