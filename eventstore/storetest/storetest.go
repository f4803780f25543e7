// Package storetest is the contract of an event store: one suite of tests
// that every implementation — the PostgreSQL store (package eventstore) and
// the in-memory one (eventstore/inmem) — must pass, so that what is tested
// against one holds for the other.
//
// The suite covers what the command handlers and the audit rely on:
// expected versions, guards on another stream's version, all-or-nothing
// appends, events that do not change once
// stored, unique claims, idempotency keys with their first response,
// positions in commit order and the per-stream hash chain.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/engramhq/engram/eventstore"
)

// Store is what the suite exercises.
type Store interface {
	eventstore.Appender
	eventstore.StreamReader
	// ReadStreams returns the tails of several streams.
	ReadStreams(ctx context.Context, tails []eventstore.StreamTail) (map[string][]eventstore.Event, error)
	// FirstEvent returns a stream's first event, and false when there is none.
	FirstEvent(ctx context.Context, streamID string) (eventstore.Event, bool, error)
	// ReadAll returns events after a position, in position order.
	ReadAll(ctx context.Context, afterPosition int64, limit int) ([]eventstore.Event, error)
	// LastPosition returns the highest position written.
	LastPosition(ctx context.Context) (int64, error)
	// ClaimOwner returns the stream holding a claim, or "".
	ClaimOwner(ctx context.Context, c eventstore.Claim) (string, error)
	// IdempotentResponse returns the response stored for a key.
	IdempotentResponse(ctx context.Context, scope, key string) (eventstore.StoredResponse, bool, error)
	// VerifyStream checks a stream's hash chain.
	VerifyStream(ctx context.Context, streamID string) ([]eventstore.Break, error)
}

// Run runs the contract against the stores that newStore returns: a new,
// empty one for each test.
func Run(t *testing.T, newStore func(t *testing.T) Store) {
	tests := []struct {
		name string
		test func(t *testing.T, s Store)
	}{
		{"AppendAndReadStream", appendAndReadStream},
		{"ExpectedVersion", expectedVersion},
		{"Guard", guard},
		{"BadInput", badInput},
		{"ConcurrentAppendsExactlyOneWins", concurrentAppends},
		{"EventIDsAreUnique", eventIDsAreUnique},
		{"StoredEventsDoNotChange", storedEventsDoNotChange},
		{"Claims", claims},
		{"IdempotencyKeyAppendsOnce", idempotencyKeyAppendsOnce},
		{"IdempotencyKeyOfAFailedAppendIsFree", idempotencyKeyOfAFailedAppend},
		{"PositionsInCommitOrder", positionsInCommitOrder},
		{"ReadStreamsAndFirstEvent", readStreamsAndFirstEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.test(t, newStore(t)) })
	}
}

// Event returns a new event of type typ with data, a JSON object.
func Event(typ, data string) eventstore.NewEvent {
	return eventstore.NewEvent{ID: uuid.NewString(), Type: typ, Data: json.RawMessage(data)}
}

// NewStream returns a stream of type "test" that no other test uses.
func NewStream() eventstore.Stream {
	return eventstore.Stream{ID: "test-" + uuid.NewString(), Type: "test"}
}

func mustAppend(t *testing.T, s Store, st eventstore.Stream, expected int, events ...eventstore.NewEvent) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(t.Context(), st, expected, events, eventstore.Metadata{})
	if err != nil {
		t.Fatalf("append to %s at %d: %v", st.ID, expected, err)
	}
	return res
}

func mustRead(t *testing.T, s Store, streamID string, after int) []eventstore.Event {
	t.Helper()
	events, err := s.ReadStream(t.Context(), streamID, after)
	if err != nil {
		t.Fatalf("read %s: %v", streamID, err)
	}
	return events
}

// sameJSON reports whether a and b are the same JSON value (a store may
// re-format what it keeps, as jsonb does).
func sameJSON(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

func appendAndReadStream(t *testing.T, s Store) {
	ctx := t.Context()
	st := NewStream()
	md := eventstore.Metadata{CorrelationID: "c1", CausationID: "r1", ActorID: "u1", RequestID: "r1"}
	own := eventstore.Metadata{ActorID: "u2", RequestID: "r2"}
	renamed := Event("test.renamed", `{"name":"b","nested":{"z":1,"a":[1,2,{"k":"v"}]}}`)
	renamed.SchemaVersion, renamed.Metadata = 2, &own
	res, err := s.Append(ctx, st, eventstore.NoStream, []eventstore.NewEvent{Event("test.created", `{"name":"a","n":1.50}`), renamed}, md)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	if res.LastVersion() != 2 || len(res.Events) != 2 || res.LastPosition() != res.Events[1].GlobalPosition {
		t.Fatalf("result: last version %d, %d events, last position %d", res.LastVersion(), len(res.Events), res.LastPosition())
	}
	if res.Events[0].GlobalPosition <= 0 || res.Events[0].GlobalPosition >= res.Events[1].GlobalPosition {
		t.Fatalf("positions not increasing: %d, %d", res.Events[0].GlobalPosition, res.Events[1].GlobalPosition)
	}
	mustAppend(t, s, st, 2, Event("test.renamed", `{"name":"c"}`))

	events := mustRead(t, s, st.ID, 0)
	if len(events) != 3 {
		t.Fatalf("read %d events, want 3", len(events))
	}
	for i, e := range events {
		if e.StreamVersion != i+1 || e.StreamID != st.ID || e.StreamType != "test" || e.EventID == "" || e.TxID == 0 ||
			e.RecordedAt.IsZero() || e.RecordedAt.Location().String() != "UTC" {
			t.Errorf("event %d envelope: %+v", i, e)
		}
	}
	if events[0].EventID != res.Events[0].EventID || events[1].GlobalPosition != res.Events[1].GlobalPosition {
		t.Error("read events differ from the appended ones")
	}
	if events[0].Metadata != md || events[1].Metadata != own {
		t.Errorf("metadata = %+v, %+v; want the append's, then the event's own", events[0].Metadata, events[1].Metadata)
	}
	if events[0].SchemaVersion != 1 || events[1].SchemaVersion != 2 {
		t.Errorf("schema versions %d, %d; want 1 (the default) and 2", events[0].SchemaVersion, events[1].SchemaVersion)
	}
	if events[0].Type != "test.created" || !sameJSON(events[1].Data, renamed.Data) {
		t.Errorf("type %q, data %s", events[0].Type, events[1].Data)
	}
	checkChain(t, s, st.ID, events)
	if after := mustRead(t, s, st.ID, 2); len(after) != 1 || after[0].StreamVersion != 3 {
		t.Fatalf("read after version 2 = %+v", after)
	}
	if none := mustRead(t, s, "test-"+uuid.NewString(), 0); len(none) != 0 {
		t.Fatalf("a missing stream has %d events", len(none))
	}
}

// checkChain checks a whole stream's hash chain: linked, 32-byte hashes,
// and nothing for the store's own verification to report.
func checkChain(t *testing.T, s Store, streamID string, events []eventstore.Event) {
	t.Helper()
	for i, e := range events {
		var prev []byte
		if i > 0 {
			prev = events[i-1].Hash
		}
		if len(e.Hash) != 32 || string(e.PrevHash) != string(prev) {
			t.Fatalf("event %d: hash %x, prev_hash %x; want 32 bytes chained to %x", i, e.Hash, e.PrevHash, prev)
		}
	}
	if breaks := eventstore.VerifyChain(events); len(breaks) != 0 {
		t.Fatalf("the events read do not verify: %+v", breaks)
	}
	breaks, err := s.VerifyStream(t.Context(), streamID)
	if err != nil || len(breaks) != 0 {
		t.Fatalf("VerifyStream = %+v, %v", breaks, err)
	}
}

func expectedVersion(t *testing.T, s Store) {
	st := NewStream()
	mustAppend(t, s, st, eventstore.NoStream, Event("test.created", `{}`))
	for _, expected := range []int{0, 2, 5} {
		_, err := s.Append(t.Context(), st, expected, []eventstore.NewEvent{Event("test.changed", `{}`)}, eventstore.Metadata{})
		if !errors.Is(err, eventstore.ErrConcurrency) {
			t.Errorf("expected version %d: err = %v, want ErrConcurrency", expected, err)
		}
	}
	if events := mustRead(t, s, st.ID, 0); len(events) != 1 {
		t.Fatalf("stream has %d events, want 1: a refused append wrote", len(events))
	}
}

// An append guarded on another stream is written only while that stream
// is at the guard's version; otherwise nothing is, not even its key.
func guard(t *testing.T, s Store) {
	ctx := t.Context()
	other, st := NewStream(), NewStream()
	mustAppend(t, s, other, eventstore.NoStream, Event("test.created", `{}`))
	at := func(v int) eventstore.AppendOption {
		return eventstore.WithGuard(eventstore.Guard{StreamID: other.ID, Version: v})
	}
	if _, err := s.Append(ctx, st, 0, []eventstore.NewEvent{Event("test.a", `{}`)}, eventstore.Metadata{}, at(1)); err != nil {
		t.Fatalf("guard on the current version: %v", err)
	}
	mustAppend(t, s, other, 1, Event("test.changed", `{}`))
	key := idempotency("g1", renderPosition)
	for _, v := range []int{0, 1} {
		_, err := s.Append(ctx, st, 1, []eventstore.NewEvent{Event("test.b", `{}`), Event("test.c", `{}`)}, eventstore.Metadata{}, at(v), key)
		if !errors.Is(err, eventstore.ErrGuardChanged) {
			t.Fatalf("guard on version %d of a stream at 2: %v, want ErrGuardChanged", v, err)
		}
	}
	if events := mustRead(t, s, st.ID, 0); len(events) != 1 {
		t.Fatalf("stale guards wrote: %d events", len(events))
	}
	if _, found, _ := s.IdempotentResponse(ctx, "u1", "g1"); found {
		t.Fatal("the key of an append refused by its guard was stored")
	}
	if _, err := s.Append(ctx, st, 1, []eventstore.NewEvent{Event("test.b", `{}`)}, eventstore.Metadata{}, at(2), key); err != nil {
		t.Fatalf("guard on the new version: %v", err)
	}
}

func badInput(t *testing.T, s Store) {
	st := NewStream()
	cases := map[string]struct {
		stream   eventstore.Stream
		expected int
		events   []eventstore.NewEvent
	}{
		"no events":         {st, 0, nil},
		"array data":        {st, 0, []eventstore.NewEvent{Event("test.x", `[1]`)}},
		"invalid json":      {st, 0, []eventstore.NewEvent{Event("test.x", `{"a":`)}},
		"string data":       {st, 0, []eventstore.NewEvent{Event("test.x", `"x"`)}},
		"missing type":      {st, 0, []eventstore.NewEvent{{ID: uuid.NewString(), Data: json.RawMessage(`{}`)}}},
		"missing id":        {st, 0, []eventstore.NewEvent{{Type: "test.x", Data: json.RawMessage(`{}`)}}},
		"missing stream id": {eventstore.Stream{Type: "test"}, 0, []eventstore.NewEvent{Event("test.x", `{}`)}},
		"negative version":  {st, -1, []eventstore.NewEvent{Event("test.x", `{}`)}},
		"one bad of two":    {st, 0, []eventstore.NewEvent{Event("test.x", `{}`), Event("test.y", `1`)}},
	}
	for name, c := range cases {
		if _, err := s.Append(t.Context(), c.stream, c.expected, c.events, eventstore.Metadata{}); err == nil {
			t.Errorf("%s: append succeeded", name)
		}
	}
	if _, err := s.Append(t.Context(), st, 0, nil, eventstore.Metadata{}); !errors.Is(err, eventstore.ErrNoEvents) {
		t.Errorf("no events: %v, want ErrNoEvents", err)
	}
	if last, _ := s.LastPosition(t.Context()); last != 0 {
		t.Fatalf("refused appends wrote up to position %d", last)
	}
	mustAppend(t, s, st, 0, Event("test.x", " \n{}"))
}

// Parallel appends at the same expected version: exactly one wins each
// round and the stream never holds a duplicate or missing version.
func concurrentAppends(t *testing.T, s Store) {
	st := NewStream()
	const rounds, writers = 20, 8
	for round := range rounds {
		wins, clashes := race(t, writers, eventstore.ErrConcurrency, func() error {
			_, err := s.Append(t.Context(), st, round, []eventstore.NewEvent{Event("test.tick", `{}`)}, eventstore.Metadata{})
			return err
		})
		if wins != 1 || clashes != writers-1 {
			t.Fatalf("round %d: %d wins, %d clashes", round, wins, clashes)
		}
	}
	events := mustRead(t, s, st.ID, 0)
	if len(events) != rounds {
		t.Fatalf("stream has %d events, want %d", len(events), rounds)
	}
	checkChain(t, s, st.ID, events)
}

// race runs write from n goroutines at once and counts the writes that
// succeed and those refused with want; any other error fails the test.
func race(t *testing.T, n int, want error, write func() error) (ok, refused int) {
	t.Helper()
	var oks, refusals atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			switch err := write(); {
			case err == nil:
				oks.Add(1)
			case errors.Is(err, want):
				refusals.Add(1)
			default:
				t.Errorf("append: %v", err)
			}
		})
	}
	wg.Wait()
	return int(oks.Load()), int(refusals.Load())
}

func eventIDsAreUnique(t *testing.T, s Store) {
	first := mustAppend(t, s, NewStream(), 0, Event("test.created", `{}`))
	again := Event("test.created", `{}`)
	again.ID = first.Events[0].EventID
	other := NewStream()
	if _, err := s.Append(t.Context(), other, 0, []eventstore.NewEvent{again}, eventstore.Metadata{}); !errors.Is(err, eventstore.ErrConcurrency) {
		t.Fatalf("a stored event id appended again: %v, want ErrConcurrency", err)
	}
	if events := mustRead(t, s, other.ID, 0); len(events) != 0 {
		t.Fatal("the refused append wrote")
	}
}

// What a caller does with the data of the events it appended or read does
// not change the stored events.
func storedEventsDoNotChange(t *testing.T, s Store) {
	st := NewStream()
	ne := Event("test.created", `{"a":1}`)
	res := mustAppend(t, s, st, 0, ne)
	read := mustRead(t, s, st.ID, 0)
	for _, b := range [][]byte{ne.Data, res.Events[0].Data, read[0].Data} {
		for i := range b {
			b[i] = 'x'
		}
	}
	again := mustRead(t, s, st.ID, 0)
	if len(again) != 1 || !sameJSON(again[0].Data, []byte(`{"a":1}`)) {
		t.Fatalf("stored event changed: %s", again[0].Data)
	}
	checkChain(t, s, st.ID, append(again, mustAppend(t, s, st, 1, Event("test.renamed", `{}`)).Events...))
}

func claims(t *testing.T, s Store) {
	ctx := t.Context()
	c := eventstore.Claim{Scope: "user.email", Value: "a@example.com"}
	a, b := NewStream(), NewStream()
	if owner, err := s.ClaimOwner(ctx, c); err != nil || owner != "" {
		t.Fatalf("owner before any claim = %q, %v", owner, err)
	}
	if _, err := s.Append(ctx, a, 0, []eventstore.NewEvent{Event("test.created", `{}`)}, eventstore.Metadata{}, eventstore.WithClaims(c)); err != nil {
		t.Fatal(err)
	}
	_, err := s.Append(ctx, b, 0, []eventstore.NewEvent{Event("test.created", `{}`)}, eventstore.Metadata{},
		eventstore.WithClaims(eventstore.Claim{Scope: "user.email", Value: "b@example.com"}, c))
	if !errors.Is(err, eventstore.ErrClaimed) {
		t.Fatalf("second claim: err = %v, want ErrClaimed", err)
	}
	if events := mustRead(t, s, b.ID, 0); len(events) != 0 {
		t.Fatal("events written despite a failed claim")
	}
	if owner, _ := s.ClaimOwner(ctx, eventstore.Claim{Scope: "user.email", Value: "b@example.com"}); owner != "" {
		t.Fatalf("the other claim of a refused append is held by %q", owner)
	}
	if owner, err := s.ClaimOwner(ctx, c); err != nil || owner != a.ID {
		t.Fatalf("owner = %q, %v; want %s", owner, err, a.ID)
	}
	// The same value in another scope is another claim; the holder may
	// claim again.
	if _, err := s.Append(ctx, b, 0, []eventstore.NewEvent{Event("test.created", `{}`)}, eventstore.Metadata{},
		eventstore.WithClaims(eventstore.Claim{Scope: "other", Value: c.Value})); err != nil {
		t.Fatalf("same value in another scope: %v", err)
	}
	if _, err := s.Append(ctx, a, 1, []eventstore.NewEvent{Event("test.renamed", `{}`)}, eventstore.Metadata{}, eventstore.WithClaims(c)); err != nil {
		t.Fatalf("the holder claims again: %v", err)
	}
}

func idempotency(key string, render func(eventstore.AppendResult) (int, []byte, error)) eventstore.AppendOption {
	return eventstore.WithIdempotency(eventstore.Idempotency{Scope: "u1", Key: key, RequestHash: []byte("h"), Render: render})
}

func renderPosition(r eventstore.AppendResult) (int, []byte, error) {
	return 201, fmt.Appendf(nil, `{"position":%d}`, r.LastPosition()), nil
}

// The same idempotency key sent by 20 concurrent requests appends once; the
// others learn that the key was used and can read the first response.
func idempotencyKeyAppendsOnce(t *testing.T, s Store) {
	ctx := t.Context()
	const n = 20
	ok, used := race(t, n, eventstore.ErrIdempotencyKeyUsed, func() error {
		_, err := s.Append(ctx, NewStream(), 0,
			[]eventstore.NewEvent{Event("test.created", `{}`)}, eventstore.Metadata{}, idempotency("k1", renderPosition))
		return err
	})
	if ok != 1 || used != n-1 {
		t.Fatalf("%d appended, %d refused; want 1 and %d", ok, used, n-1)
	}
	last, _ := s.LastPosition(ctx)
	resp, found, err := s.IdempotentResponse(ctx, "u1", "k1")
	if err != nil || !found {
		t.Fatalf("stored response: %v %v", found, err)
	}
	if resp.Status != 201 || string(resp.Body) != fmt.Sprintf(`{"position":%d}`, last) || resp.Position != last ||
		!resp.SameRequest([]byte("h")) || resp.SameRequest([]byte("other")) {
		t.Fatalf("stored response = %+v (last position %d)", resp, last)
	}
	if all, _ := s.ReadAll(ctx, 0, 100); len(all) != 1 {
		t.Fatalf("%d events in the log, want 1", len(all))
	}
	if _, found, _ := s.IdempotentResponse(ctx, "u2", "k1"); found {
		t.Fatal("a key is found in another scope")
	}
}

// A key is stored with the events or not at all: an append that fails —
// on its expected version or while rendering its response — leaves it free.
func idempotencyKeyOfAFailedAppend(t *testing.T, s Store) {
	ctx := t.Context()
	st := NewStream()
	mustAppend(t, s, st, 0, Event("test.created", `{}`))
	clash := idempotency("k2", renderPosition)
	if _, err := s.Append(ctx, st, 0, []eventstore.NewEvent{Event("test.x", `{}`)}, eventstore.Metadata{}, clash); !errors.Is(err, eventstore.ErrConcurrency) {
		t.Fatalf("clash: %v, want ErrConcurrency", err)
	}
	failing := idempotency("k2", func(eventstore.AppendResult) (int, []byte, error) {
		return 0, nil, errors.New("cannot render")
	})
	if _, err := s.Append(ctx, st, 1, []eventstore.NewEvent{Event("test.x", `{}`)}, eventstore.Metadata{}, failing); err == nil {
		t.Fatal("an append whose response cannot be rendered succeeded")
	}
	if _, found, _ := s.IdempotentResponse(ctx, "u1", "k2"); found {
		t.Fatal("the key of a failed append was stored")
	}
	if events := mustRead(t, s, st.ID, 0); len(events) != 1 {
		t.Fatalf("failed appends wrote: %d events", len(events))
	}
	res, err := s.Append(ctx, st, 1, []eventstore.NewEvent{Event("test.x", `{}`)}, eventstore.Metadata{}, clash)
	if err != nil {
		t.Fatalf("retry with the free key: %v", err)
	}
	if resp, found, _ := s.IdempotentResponse(ctx, "u1", "k2"); !found || resp.Position != res.LastPosition() {
		t.Fatalf("stored response %+v, %v; want position %d", resp, found, res.LastPosition())
	}
}

// Appends made one after the other take increasing positions, across
// streams; ReadAll pages through them in that order.
func positionsInCommitOrder(t *testing.T, s Store) {
	ctx := t.Context()
	a, b := NewStream(), NewStream()
	var want []string
	for i := range 3 {
		for _, st := range []eventstore.Stream{a, b} {
			res := mustAppend(t, s, st, i, Event("test.tick", fmt.Sprintf(`{"n":%d}`, i)))
			want = append(want, res.Events[0].EventID)
		}
	}
	var got []string
	var after int64
	for {
		page, err := s.ReadAll(ctx, after, 4)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			if e.GlobalPosition <= after {
				t.Fatalf("position %d after %d", e.GlobalPosition, after)
			}
			after = e.GlobalPosition
			got = append(got, e.EventID)
		}
		if len(page) < 4 {
			break
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ReadAll order = %v, want the order of the appends %v", got, want)
	}
	if last, err := s.LastPosition(ctx); err != nil || last != after {
		t.Fatalf("LastPosition = %d, %v; want %d", last, err, after)
	}
	if rest, _ := s.ReadAll(ctx, after, 10); len(rest) != 0 {
		t.Fatalf("%d events after the last position", len(rest))
	}
}

func readStreamsAndFirstEvent(t *testing.T, s Store) {
	ctx := t.Context()
	a, b, missing := NewStream(), NewStream(), NewStream()
	mustAppend(t, s, a, 0, Event("test.created", `{}`), Event("test.renamed", `{}`), Event("test.renamed", `{}`))
	mustAppend(t, s, b, 0, Event("test.created", `{}`))
	tails, err := s.ReadStreams(ctx, []eventstore.StreamTail{{StreamID: a.ID, AfterVersion: 1}, {StreamID: b.ID, AfterVersion: 1},
		{StreamID: missing.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if len(tails[a.ID]) != 2 || tails[a.ID][0].StreamVersion != 2 || tails[a.ID][1].StreamVersion != 3 ||
		len(tails[b.ID]) != 0 || len(tails[missing.ID]) != 0 {
		t.Fatalf("tails = %+v", tails)
	}
	first, found, err := s.FirstEvent(ctx, a.ID)
	if err != nil || !found || first.StreamVersion != 1 || first.Type != "test.created" {
		t.Fatalf("FirstEvent = %+v, %v, %v", first, found, err)
	}
	// Asked again (a store may remember it), the same event, as read.
	if again, found, err := s.FirstEvent(ctx, a.ID); err != nil || !found || !reflect.DeepEqual(again, first) {
		t.Fatalf("FirstEvent again = %+v, %v, %v; want %+v", again, found, err, first)
	}
	if _, found, err := s.FirstEvent(ctx, missing.ID); found || err != nil {
		t.Fatalf("FirstEvent of a missing stream = %v, %v", found, err)
	}
	// A stream created after it was asked about is found.
	mustAppend(t, s, missing, 0, Event("test.created", `{}`))
	if created, found, err := s.FirstEvent(ctx, missing.ID); err != nil || !found || created.StreamID != missing.ID {
		t.Fatalf("FirstEvent of a stream created since = %+v, %v, %v", created, found, err)
	}
}
