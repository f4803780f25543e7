package eventstore_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/eventstore/storetest"
	"github.com/engramhq/engram/test/pgtest"
)

// newStore opens a store with opts on a database of its own.
func newStore(t testing.TB, opts ...eventstore.Option) *eventstore.Store {
	t.Helper()
	_, s := pgtest.NewStore(t, opts...)
	return s
}

func ev(typ string, data string) eventstore.NewEvent {
	return eventstore.NewEvent{ID: uuid.NewString(), Type: typ, Data: json.RawMessage(data)}
}

func stream(id string) eventstore.Stream {
	return eventstore.Stream{ID: "test-" + id, Type: "test"}
}

// The contract of an event store (eventstore/storetest), each test on a
// database of its own.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Store { return newStore(t) })
}

// A store that has not seen a stream (no cached head) refuses a gap too.
func TestAppendWithoutCachedHeadRefusesAGap(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	st := stream(uuid.NewString())
	if _, err := s.Append(ctx, st, 0, []eventstore.NewEvent{ev("test.created", `{}`)}, eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	s2, _ := eventstore.New(s.DB())
	if _, err := s2.Append(ctx, st, 3, []eventstore.NewEvent{ev("test.changed", `{}`)}, eventstore.Metadata{}); !errors.Is(err, eventstore.ErrConcurrency) {
		t.Errorf("gap append: err = %v, want ErrConcurrency", err)
	}
	if events, _ := s.ReadStream(ctx, st.ID, 0); len(events) != 1 {
		t.Fatalf("stream has %d events, want 1", len(events))
	}
}

func TestEventsAreImmutable(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	st := stream(uuid.NewString())
	if _, err := s.Append(ctx, st, 0, []eventstore.NewEvent{ev("test.created", `{"a":1}`)}, eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`UPDATE events SET data = '{"a":2}'`,
		`DELETE FROM events`,
		`TRUNCATE events`,
	} {
		if _, err := s.DB().ExecContext(ctx, stmt); err == nil {
			t.Errorf("%q succeeded", stmt)
		}
	}
	events, _ := s.ReadStream(ctx, st.ID, 0)
	if len(events) != 1 || string(events[0].Data) != `{"a": 1}` {
		t.Fatalf("events changed: %+v", events)
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	st := stream(uuid.NewString())
	for v := 0; v < 4; v++ {
		if _, err := s.Append(ctx, st, v, []eventstore.NewEvent{ev("test.tick", fmt.Sprintf(`{"n":%d}`, v))}, eventstore.Metadata{ActorID: "u"}); err != nil {
			t.Fatal(err)
		}
	}
	db := s.DB()
	mustExec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	mustExec(`ALTER TABLE events DISABLE TRIGGER USER`)
	mustExec(`UPDATE events SET data = '{"n": 99}' WHERE stream_id = $1 AND stream_version = 2`, st.ID)
	mustExec(`DELETE FROM events WHERE stream_id = $1 AND stream_version = 4`, st.ID)
	mustExec(`ALTER TABLE events ENABLE TRIGGER USER`)

	breaks, err := s.VerifyStream(ctx, st.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(breaks) != 1 || breaks[0].Version != 2 || breaks[0].Reason != "hash mismatch" {
		t.Fatalf("breaks = %+v, want one hash mismatch at version 2", breaks)
	}
	// Deleting the tail is invisible to a chain alone; deleting in the middle is not.
	mustExec(`ALTER TABLE events DISABLE TRIGGER USER`)
	mustExec(`DELETE FROM events WHERE stream_id = $1 AND stream_version = 1`, st.ID)
	mustExec(`ALTER TABLE events ENABLE TRIGGER USER`)
	breaks, _ = s.VerifyStream(ctx, st.ID)
	var missing bool
	for _, b := range breaks {
		if b.Version == 1 && b.Reason == "missing version" {
			missing = true
		}
	}
	if !missing {
		t.Fatalf("breaks = %+v, want missing version 1", breaks)
	}
}

// Transaction A takes its position first but commits after B. A reader that
// follows global_position alone skips A; the commit-order rules deliver both,
// once each.
func TestTailingSurvivesOutOfOrderCommits(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	txA, posA, posB := commitOutOfOrder(t, s)
	if posA >= posB {
		t.Fatalf("setup: A's position %d not before B's %d", posA, posB)
	}

	// The naive reader sees B, remembers its position, and will never see A.
	naive, _ := s.ReadAll(ctx, 0, 10)
	if len(naive) != 1 || naive[0].GlobalPosition != posB {
		t.Fatalf("naive read = %+v", naive)
	}
	// The gap-safe reader waits: nothing is readable while A is in flight.
	if early, _ := s.ReadCommitted(ctx, eventstore.Cursor{}, 10); len(early) != 0 {
		t.Fatalf("gap-safe read returned %d events while A is in flight", len(early))
	}

	// A Watermill consumer group over the events table.
	msgs := subscribeGroup(t, s.DB().DB, eventstore.SubscriberConfig{ConsumerGroup: "test", PollInterval: 20 * time.Millisecond})
	quiet(t, msgs, 200*time.Millisecond) // nothing while A is in flight
	if err := txA.Commit(); err != nil {
		t.Fatal(err)
	}
	afterNaive, _ := s.ReadAll(ctx, posB, 10)
	if len(afterNaive) != 0 {
		t.Fatalf("naive cursor after B found %d events; the test expects it to miss A", len(afterNaive))
	}

	var got []int64
	deadline := time.After(10 * time.Second)
	for len(got) < 2 {
		select {
		case m := <-msgs:
			e, err := eventstore.FromMessage(m)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, e.GlobalPosition)
			m.Ack()
		case <-deadline:
			t.Fatalf("received %v, want both %d and %d", got, posA, posB)
		}
	}
	if got[0] != posA || got[1] != posB {
		t.Fatalf("received %v, want [%d %d] in commit order", got, posA, posB)
	}
	select {
	case m := <-msgs:
		t.Fatalf("duplicate delivery of %s", m.Metadata.Get(eventstore.MetaPosition))
	case <-time.After(200 * time.Millisecond):
	}
	committed, _ := s.ReadCommitted(ctx, eventstore.Cursor{}, 10)
	if len(committed) != 2 || committed[0].GlobalPosition != posA || committed[1].GlobalPosition != posB {
		t.Fatalf("ReadCommitted = %d events", len(committed))
	}
}

func TestMessageRoundTrip(t *testing.T) {
	e := eventstore.Event{GlobalPosition: 42, TxID: 7, EventID: uuid.NewString(), StreamID: "s-1", StreamType: "s",
		StreamVersion: 3, Type: "s.happened", SchemaVersion: 1, Data: json.RawMessage(`{"a":1}`),
		Metadata:   eventstore.Metadata{CorrelationID: "c", CausationID: "k", ActorID: "a", RequestID: "r"},
		RecordedAt: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)}
	got, err := eventstore.FromMessage(eventstore.ToMessage(e))
	if err != nil {
		t.Fatal(err)
	}
	if got.GlobalPosition != e.GlobalPosition || got.TxID != e.TxID || got.EventID != e.EventID ||
		got.StreamID != e.StreamID || got.StreamVersion != e.StreamVersion || got.Type != e.Type ||
		got.Metadata != e.Metadata || !got.RecordedAt.Equal(e.RecordedAt) || string(got.Data) != string(e.Data) {
		t.Fatalf("round trip: got %+v, want %+v", got, e)
	}
}

// subscribeGroup subscribes a consumer group over the events table for the
// length of the test.
func subscribeGroup(t *testing.T, db *sql.DB, cfg eventstore.SubscriberConfig) <-chan *message.Message {
	t.Helper()
	sub, err := eventstore.NewSubscriber(db, cfg, watermill.NopLogger{})
	return subscribe(t, sub, err)
}

// subscribe subscribes sub, built with err, to the log, and closes it when
// the test ends.
func subscribe(t *testing.T, sub message.Subscriber, err error) <-chan *message.Message {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	msgs, err := sub.Subscribe(t.Context(), eventstore.Topic)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}
