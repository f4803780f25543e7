package projections_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/memory"
	"github.com/engramhq/engram/domain/task"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/projections"
)

// appendEvents appends domain events to a stream, expecting it at version.
func appendEvents(t *testing.T, store *eventstore.Store, stream eventstore.Stream, version int, events ...domain.Event) {
	t.Helper()
	var batch []eventstore.NewEvent
	for _, e := range events {
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, eventstore.NewEvent{ID: uuid.NewString(), Type: e.EventType(), Data: data})
	}
	if _, err := store.Append(context.Background(), stream, version, batch, eventstore.Metadata{ActorID: "test"}); err != nil {
		t.Fatal(err)
	}
}

func cognitionProjectors(t *testing.T) map[string]projections.TableProjector {
	t.Helper()
	out := map[string]projections.TableProjector{}
	for _, p := range projections.Cognition() {
		tp, ok := p.(projections.TableProjector)
		if !ok {
			t.Fatalf("cognition projector %s does not declare its tables", p.Name())
		}
		out[p.Name()] = tp
	}
	return out
}

// The tasks and memory read models follow their streams, change nothing on
// a redelivered event, and rebuild into the same tables.
func TestCognitionReadModels(t *testing.T) {
	f := newRebuildFixture(t)
	ws, conv := uuid.NewString(), uuid.NewString()
	deadline := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	submitted := func(id string) task.Submitted {
		return task.Submitted{TaskID: id, WorkspaceID: ws, ConversationID: conv, MessageID: uuid.NewString(), RequestedBy: "u",
			Expert: "echo", Input: "hello", Priority: 3}
	}
	done, failed, cancelled := uuid.NewString(), uuid.NewString(), uuid.NewString()
	reply := uuid.NewString()
	taskStream := func(id string) eventstore.Stream {
		return eventstore.Stream{ID: task.StreamID(id), Type: task.StreamType}
	}
	appendEvents(t, f.Store, taskStream(done), 0, submitted(done), task.Started{Worker: "w", Attempt: 1, Deadline: deadline},
		task.Progressed{Progress: 50, Note: "half"}, task.Completed{Output: "ECHO: hello", ReplyMessageID: reply})
	// Two appends: the second start is recorded later than the first, which
	// stays the task's start.
	appendEvents(t, f.Store, taskStream(failed), 0, submitted(failed), task.Started{Worker: "w", Attempt: 1, Deadline: deadline})
	appendEvents(t, f.Store, taskStream(failed), 2, task.Started{Worker: "w", Attempt: 2, Deadline: deadline.Add(time.Minute)},
		task.Failed{Reason: "boom", Attempts: 2})
	appendEvents(t, f.Store, taskStream(cancelled), 0, submitted(cancelled), task.Cancelled{Reason: "stop"})

	kept, gone := uuid.NewString(), uuid.NewString()
	memStream := eventstore.Stream{ID: memory.StreamID(ws), Type: memory.StreamType}
	content := "Ada wrote the first program"
	appendEvents(t, f.Store, memStream, 0,
		memory.ItemStored{ItemID: kept, Type: memory.TypeEntity, Content: "Ada", Metadata: json.RawMessage(`{"name":"Ada"}`),
			ExpiresAt: &deadline, SourceMessageID: uuid.NewString()},
		memory.ItemStored{ItemID: gone, Type: memory.TypeMessage, Content: "forget me", Metadata: json.RawMessage(`{}`)},
		memory.ItemUpdated{ItemID: kept, Content: &content},
		memory.ItemDeleted{ItemID: gone})
	f.Settle(t)

	ps := cognitionProjectors(t)
	for _, name := range []string{projections.TasksProjector, projections.MemoryProjector} {
		f.ApplyLive(t, ps[name])
	}
	var status, output, reason string
	var attempts, progress int
	if err := f.DB.QueryRow(`SELECT status, coalesce(output, ''), attempts, progress FROM tasks WHERE id = $1`, done).
		Scan(&status, &output, &attempts, &progress); err != nil || status != task.StatusCompleted || output != "ECHO: hello" ||
		attempts != 1 || progress != 100 {
		t.Fatalf("completed task row: %s %q %d %d %v", status, output, attempts, progress, err)
	}
	if err := f.DB.QueryRow(`SELECT status, reason, attempts FROM tasks WHERE id = $1`, failed).Scan(&status, &reason, &attempts); err != nil ||
		status != task.StatusFailed || reason != "boom" || attempts != 2 {
		t.Fatalf("failed task row: %s %q %d %v", status, reason, attempts, err)
	}
	var n int
	if err := f.DB.QueryRow(`SELECT count(*) FROM memory_items WHERE deleted_at IS NULL AND words @@ to_tsquery('simple', 'program')`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("memory rows found by word: %d, %v", n, err)
	}

	// A redelivered event changes nothing.
	before := map[string]map[string]string{}
	for name, p := range ps {
		before[name] = f.checksums(t, p, "public")
	}
	events, err := f.Store.ReadAll(t.Context(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := f.DB.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		for _, p := range ps {
			if err := p.Apply(t.Context(), tx, e); err != nil {
				t.Fatalf("redelivery of %s to %s: %v", e.Type, p.Name(), err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	for name, p := range ps {
		equalSums(t, "after redelivery "+name, f.checksums(t, p, "public"), before[name])
	}
	// Redelivered as one batch too (the live path's batches).
	tx, err = f.DB.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		bp, ok := p.(projections.BatchProjector)
		if !ok {
			t.Fatalf("%s does not apply batches", p.Name())
		}
		if err := bp.ApplyBatch(t.Context(), tx, events); err != nil {
			t.Fatalf("batch redelivery to %s: %v", p.Name(), err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	for name, p := range ps {
		equalSums(t, "after batch redelivery "+name, f.checksums(t, p, "public"), before[name])
	}
	// fromScratch empties the tables, applies what apply applies in one
	// transaction, and checks that the rows are those of the whole log.
	fromScratch := func(label string, apply func(tx *sql.Tx)) {
		tx, err := f.DB.BeginTx(t.Context(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(`DELETE FROM tasks; DELETE FROM memory_items`); err != nil {
			t.Fatal(err)
		}
		apply(tx)
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		for name, p := range ps {
			equalSums(t, label+", "+name, f.checksums(t, p, "public"), before[name])
		}
	}
	batch := func(tx *sql.Tx, events []eventstore.Event, label string) {
		for _, p := range ps {
			if err := p.(projections.BatchProjector).ApplyBatch(t.Context(), tx, events); err != nil {
				t.Fatalf("%s, to %s: %v", label, p.Name(), err)
			}
		}
	}
	// A batch that overlaps what the rows had applied already — rows at
	// every version in between — leaves them as applying the rest would.
	for n := range len(events) {
		label := "batch over the first " + strconv.Itoa(n) + " events applied"
		fromScratch(label, func(tx *sql.Tx) {
			for _, e := range events[:n] {
				for _, p := range ps {
					if err := p.Apply(t.Context(), tx, e); err != nil {
						t.Fatalf("apply %s to %s: %v", e.Type, p.Name(), err)
					}
				}
			}
			batch(tx, events, label)
		})
	}
	// The log cut into two batches anywhere — the second then holds new
	// tasks (items) and later events of older ones — leaves the same rows.
	for n := 1; n < len(events); n++ {
		label := "batches cut after " + strconv.Itoa(n) + " events"
		fromScratch(label, func(tx *sql.Tx) {
			batch(tx, events[:n], label)
			batch(tx, events[n:], label)
		})
	}

	// A rebuild gives the same tables, with the same indexes.
	for name, p := range ps {
		indexes := f.indexNames(t, p)
		if _, err := f.r.Rebuild(t.Context(), p, projections.RebuildOptions{}); err != nil {
			t.Fatalf("rebuild %s: %v", name, err)
		}
		equalSums(t, "rebuilt "+name, f.checksums(t, p, "public"), before[name])
		if got := f.indexNames(t, p); joined(got) != joined(indexes) {
			t.Errorf("indexes of %s after the rebuild = %v, want %v", name, got, indexes)
		}
	}
}
