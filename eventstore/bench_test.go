package eventstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/engramhq/engram/eventstore"
)

// Benchmarks of the store's append and read paths against a fresh database
// (make bench-go). Each event is shaped like a posted chat message.

var benchMetadata = eventstore.Metadata{
	CorrelationID: "0197a3c2-5e00-7000-8000-000000000001", CausationID: "0197a3c2-5e00-7000-8000-000000000001",
	RequestID: "0197a3c2-5e00-7000-8000-000000000001", ActorID: "0197a3c2-5b12-7aa8-b3c4-1e2f3a4b5c6d",
}

func messageEvents(n int) []eventstore.NewEvent {
	out := make([]eventstore.NewEvent, n)
	for i := range out {
		data, _ := json.Marshal(map[string]any{
			"message_id": uuid.NewString(), "author_id": benchMetadata.ActorID, "role": "user",
			"content":  fmt.Sprintf("Could you summarise what we decided about the rollout and list the open questions? (%d)", i),
			"metadata": map[string]any{},
		})
		out[i] = eventstore.NewEvent{ID: uuid.NewString(), Type: "conversation.message_posted", Data: data}
	}
	return out
}

// benchAppend appends batches of n events to one stream, each at the
// version the previous one left (the path of a command on a known stream).
func benchAppend(b *testing.B, n int) {
	ctx := context.Background()
	s := newStore(b)
	st := eventstore.Stream{ID: "conversation-" + uuid.NewString(), Type: "conversation"}
	version := eventstore.NoStream
	for b.Loop() {
		b.StopTimer()
		events := messageEvents(n)
		b.StartTimer()
		res, err := s.Append(ctx, st, version, events, benchMetadata)
		if err != nil {
			b.Fatal(err)
		}
		version = res.LastVersion()
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkAppendOneEvent(b *testing.B)  { benchAppend(b, 1) }
func BenchmarkAppendTenEvents(b *testing.B) { benchAppend(b, 10) }

// BenchmarkReadStream100 reads a whole stream of 100 events.
func BenchmarkReadStream100(b *testing.B) {
	ctx := context.Background()
	s := newStore(b)
	st := eventstore.Stream{ID: "conversation-" + uuid.NewString(), Type: "conversation"}
	if _, err := s.Append(ctx, st, eventstore.NoStream, messageEvents(100), benchMetadata); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		events, err := s.ReadStream(ctx, st.ID, 0)
		if err != nil || len(events) != 100 {
			b.Fatalf("read %d events, %v; want 100", len(events), err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkReadCommittedPage500 reads the first page of 500 events in commit
// order, as a consumer catching up (or a rebuild) does, over 50 streams.
func BenchmarkReadCommittedPage500(b *testing.B) {
	ctx := context.Background()
	s := newStore(b)
	for range 50 {
		st := eventstore.Stream{ID: "conversation-" + uuid.NewString(), Type: "conversation"}
		if _, err := s.Append(ctx, st, eventstore.NoStream, messageEvents(10), benchMetadata); err != nil {
			b.Fatal(err)
		}
	}
	// ReadCommitted stops below the oldest transaction in flight on the
	// whole server, which other databases' work may hold back for a moment.
	deadline := time.Now().Add(30 * time.Second)
	for {
		events, err := s.ReadCommitted(ctx, eventstore.Cursor{}, 500)
		if err != nil {
			b.Fatal(err)
		}
		if len(events) == 500 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of 500 events visible after 30s", len(events))
		}
		time.Sleep(10 * time.Millisecond)
	}
	for b.Loop() {
		events, err := s.ReadCommitted(ctx, eventstore.Cursor{}, 500)
		if err != nil || len(events) != 500 {
			b.Fatalf("read %d events, %v; want 500", len(events), err)
		}
	}
	b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "events/s")
}
