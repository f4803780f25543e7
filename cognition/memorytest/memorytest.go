// Package memorytest is the contract every cognition.Memory passes: given
// the same memory.* events, every implementation finds the same items.
package memorytest

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/engramhq/engram/cognition"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/memory"
	"github.com/engramhq/engram/eventstore"
)

// Subject is a Memory under test and the way its implementation is fed.
type Subject struct {
	Memory cognition.Memory
	// Apply applies one event of the log to the memory, as the
	// implementation's projector does in production.
	Apply func(ctx context.Context, e eventstore.Event) error
}

// T0 is the time the suite's first event is recorded at.
var T0 = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

// Run runs the contract against fresh subjects made by newSubject.
func Run(t *testing.T, newSubject func(t *testing.T) Subject) {
	tests := []struct {
		name string
		test func(t *testing.T, l *log)
	}{
		{"StoredItemsNewestFirst", testStored},
		{"Types", testTypes},
		{"Words", testWords},
		{"TimeRange", testTimeRange},
		{"Metadata", testMetadata},
		{"LimitAndCursor", testLimitAndCursor},
		{"Expiry", testExpiry},
		{"UpdatesAndDeletes", testUpdatesAndDeletes},
		{"WorkspacesApart", testWorkspacesApart},
		{"RedeliveryChangesNothing", testRedelivery},
		{"InvalidQuery", testInvalidQuery},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.test(t, &log{t: t, s: newSubject(t), versions: map[string]int{}, clock: T0})
		})
	}
}

// log writes memory events to a subject, one second apart.
type log struct {
	t        *testing.T
	s        Subject
	versions map[string]int
	clock    time.Time
	applied  []eventstore.Event
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func (l *log) append(workspaceID string, e domain.Event) eventstore.Event {
	l.t.Helper()
	data, err := json.Marshal(e)
	if err != nil {
		l.t.Fatal(err)
	}
	l.versions[workspaceID]++
	l.clock = l.clock.Add(time.Second)
	ev := eventstore.Event{GlobalPosition: int64(len(l.applied) + 1), EventID: newID(), StreamID: memory.StreamID(workspaceID),
		StreamType: memory.StreamType, StreamVersion: l.versions[workspaceID], Type: e.EventType(), SchemaVersion: 1,
		Data: data, RecordedAt: l.clock}
	l.apply(ev)
	return ev
}

func (l *log) apply(ev eventstore.Event) {
	l.t.Helper()
	if err := l.s.Apply(context.Background(), ev); err != nil {
		l.t.Fatalf("apply %s: %v", ev.Type, err)
	}
	l.applied = append(l.applied, ev)
}

// store stores an item and returns its id.
func (l *log) store(workspaceID, typ, content, metadata string, expiresAt *time.Time) string {
	l.t.Helper()
	id := newID()
	if metadata == "" {
		metadata = "{}"
	}
	l.append(workspaceID, memory.ItemStored{ItemID: id, Type: typ, Content: content, Metadata: json.RawMessage(metadata), ExpiresAt: expiresAt})
	return id
}

func (l *log) search(workspaceID string, q cognition.Query) []cognition.Item {
	l.t.Helper()
	if q.Now.IsZero() {
		q.Now = l.clock
	}
	items, err := l.s.Memory.Search(context.Background(), workspaceID, q)
	if err != nil {
		l.t.Fatalf("search %+v: %v", q, err)
	}
	return items
}

func ids(items []cognition.Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.ID
	}
	return out
}

func expectIDs(t *testing.T, what string, items []cognition.Item, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if got := ids(items); !slices.Equal(got, want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func testStored(t *testing.T, l *log) {
	ws := newID()
	source := newID()
	exp := T0.Add(time.Hour)
	first := newID()
	l.append(ws, memory.ItemStored{ItemID: first, Type: memory.TypeMessage, Content: "Hello there", Metadata: json.RawMessage(`{"role":"user"}`),
		ExpiresAt: &exp, SourceMessageID: source})
	second := l.store(ws, memory.TypeEntity, "Ada is a mathematician", `{"name":"Ada"}`, nil)

	items := l.search(ws, cognition.Query{})
	expectIDs(t, "items", items, second, first)
	got := items[1]
	if got.WorkspaceID != ws || got.Type != memory.TypeMessage || got.Content != "Hello there" || got.SourceMessageID != source ||
		got.ExpiresAt == nil || !got.ExpiresAt.Equal(exp) || !got.CreatedAt.Equal(T0.Add(time.Second)) || !got.UpdatedAt.Equal(got.CreatedAt) {
		t.Fatalf("stored item = %+v", got)
	}
	var md map[string]string
	if err := json.Unmarshal(got.Metadata, &md); err != nil || md["role"] != "user" {
		t.Fatalf("metadata = %s (%v)", got.Metadata, err)
	}
	if items[0].ExpiresAt != nil || items[0].SourceMessageID != "" {
		t.Fatalf("item without expiry or source = %+v", items[0])
	}
	expectIDs(t, "another workspace", l.search(newID(), cognition.Query{}))
}

func testTypes(t *testing.T, l *log) {
	ws := newID()
	msg := l.store(ws, memory.TypeMessage, "m", "", nil)
	ent := l.store(ws, memory.TypeEntity, "e", "", nil)
	file := l.store(ws, memory.TypeFile, "f", "", nil)
	ev := l.store(ws, memory.TypeEvent, "v", "", nil)
	expectIDs(t, "entities", l.search(ws, cognition.Query{Types: []string{memory.TypeEntity}}), ent)
	expectIDs(t, "files and messages", l.search(ws, cognition.Query{Types: []string{memory.TypeFile, memory.TypeMessage, memory.TypeFile}}), file, msg)
	expectIDs(t, "all", l.search(ws, cognition.Query{}), ev, file, ent, msg)
}

func testWords(t *testing.T, l *log) {
	ws := newID()
	ada := l.store(ws, memory.TypeEntity, "Ada Lovelace wrote the first program.", "", nil)
	paris := l.store(ws, memory.TypeEvent, "Meeting in PARIS on Friday", "", nil)
	both := l.store(ws, memory.TypeMessage, "Ada flies to Paris, on Friday!", "", nil)
	expectIDs(t, "ada", l.search(ws, cognition.Query{Words: "ada"}), both, ada)
	expectIDs(t, "every word", l.search(ws, cognition.Query{Words: "Paris friday"}), both, paris)
	expectIDs(t, "every word, none has all", l.search(ws, cognition.Query{Words: "lovelace paris"}))
	expectIDs(t, "any word", l.search(ws, cognition.Query{Words: "lovelace paris", AnyWord: true}), both, paris, ada)
	expectIDs(t, "whole words only", l.search(ws, cognition.Query{Words: "prog"}))
	expectIDs(t, "punctuation is not a word", l.search(ws, cognition.Query{Words: "program."}), ada)
	expectIDs(t, "no words is no filter", l.search(ws, cognition.Query{Words: " ?! "}), both, paris, ada)
	expectIDs(t, "words and type", l.search(ws, cognition.Query{Words: "friday", Types: []string{memory.TypeEvent}}), paris)
}

func testTimeRange(t *testing.T, l *log) {
	ws := newID()
	a := l.store(ws, memory.TypeMessage, "a", "", nil) // T0+1s
	b := l.store(ws, memory.TypeMessage, "b", "", nil) // T0+2s
	c := l.store(ws, memory.TypeMessage, "c", "", nil) // T0+3s
	expectIDs(t, "from", l.search(ws, cognition.Query{From: T0.Add(2 * time.Second)}), c, b)
	expectIDs(t, "to", l.search(ws, cognition.Query{To: T0.Add(2 * time.Second)}), a)
	expectIDs(t, "from and to", l.search(ws, cognition.Query{From: T0.Add(2 * time.Second), To: T0.Add(3 * time.Second)}), b)
}

func testMetadata(t *testing.T, l *log) {
	ws := newID()
	a := l.store(ws, memory.TypeFile, "a", `{"topic":"plans","size":42,"draft":true}`, nil)
	b := l.store(ws, memory.TypeFile, "b", `{"topic":"plans","size":7}`, nil)
	l.store(ws, memory.TypeFile, "c", `{"topic":"other","nested":{"topic":"plans"}}`, nil)
	expectIDs(t, "topic", l.search(ws, cognition.Query{Metadata: map[string]string{"topic": "plans"}}), b, a)
	expectIDs(t, "number", l.search(ws, cognition.Query{Metadata: map[string]string{"size": "42"}}), a)
	expectIDs(t, "boolean", l.search(ws, cognition.Query{Metadata: map[string]string{"draft": "true"}}), a)
	expectIDs(t, "every key", l.search(ws, cognition.Query{Metadata: map[string]string{"topic": "plans", "size": "7"}}), b)
	expectIDs(t, "missing key", l.search(ws, cognition.Query{Metadata: map[string]string{"owner": "ada"}}))
}

func testLimitAndCursor(t *testing.T, l *log) {
	ws := newID()
	var all []string
	for range 5 {
		all = append([]string{l.store(ws, memory.TypeMessage, "x", "", nil)}, all...)
	}
	page := l.search(ws, cognition.Query{Limit: 2})
	expectIDs(t, "first page", page, all[:2]...)
	last := page[1]
	page = l.search(ws, cognition.Query{Limit: 2, Before: &cognition.Cursor{CreatedAt: last.CreatedAt, ID: last.ID}})
	expectIDs(t, "second page", page, all[2:4]...)
	last = page[1]
	page = l.search(ws, cognition.Query{Limit: 2, Before: &cognition.Cursor{CreatedAt: last.CreatedAt, ID: last.ID}})
	expectIDs(t, "last page", page, all[4])
	if n := len(l.search(ws, cognition.Query{})); n != 5 {
		t.Fatalf("default limit returned %d of 5", n)
	}
}

func testExpiry(t *testing.T, l *log) {
	ws := newID()
	soon := T0.Add(10 * time.Second)
	expiring := l.store(ws, memory.TypeEvent, "standup today", "", &soon)
	lasting := l.store(ws, memory.TypeEvent, "standup every day", "", nil)
	expectIDs(t, "before expiry", l.search(ws, cognition.Query{Now: soon.Add(-time.Second)}), lasting, expiring)
	expectIDs(t, "at expiry", l.search(ws, cognition.Query{Now: soon}), lasting)
	expectIDs(t, "after expiry", l.search(ws, cognition.Query{Now: soon.Add(time.Hour), Words: "standup"}), lasting)
	expectIDs(t, "expired included", l.search(ws, cognition.Query{Now: soon.Add(time.Hour), IncludeExpired: true}), lasting, expiring)
}

func testUpdatesAndDeletes(t *testing.T, l *log) {
	ws := newID()
	ent := l.store(ws, memory.TypeEntity, "Ada is a mathematician", `{"name":"Ada"}`, nil)
	gone := l.store(ws, memory.TypeMessage, "forget me", "", nil)
	content := "Ada wrote the first program"
	l.append(ws, memory.ItemUpdated{ItemID: ent, Content: &content, Metadata: json.RawMessage(`{"name":"Ada","born":"1815"}`)})
	l.append(ws, memory.ItemDeleted{ItemID: gone})

	expectIDs(t, "after delete", l.search(ws, cognition.Query{IncludeExpired: true}), ent)
	expectIDs(t, "old words", l.search(ws, cognition.Query{Words: "mathematician"}))
	items := l.search(ws, cognition.Query{Words: "program", Metadata: map[string]string{"born": "1815"}})
	expectIDs(t, "new words and metadata", items, ent)
	if items[0].Content != content || !items[0].UpdatedAt.After(items[0].CreatedAt) {
		t.Fatalf("updated item = %+v", items[0])
	}
	l.append(ws, memory.ItemUpdated{ItemID: ent, SourceMessageID: newID()})
	if got := l.search(ws, cognition.Query{})[0]; got.Content != content || string(got.Metadata) == "{}" {
		t.Fatalf("an update of nothing changed the item: %+v", got)
	}
}

func testWorkspacesApart(t *testing.T, l *log) {
	a, b := newID(), newID()
	inA := l.store(a, memory.TypeMessage, "shared word", "", nil)
	inB := l.store(b, memory.TypeMessage, "shared word", "", nil)
	expectIDs(t, "workspace a", l.search(a, cognition.Query{Words: "shared"}), inA)
	expectIDs(t, "workspace b", l.search(b, cognition.Query{Words: "shared"}), inB)
}

func testRedelivery(t *testing.T, l *log) {
	ws := newID()
	id := newID()
	stored := l.append(ws, memory.ItemStored{ItemID: id, Type: memory.TypeMessage, Content: "original", Metadata: json.RawMessage(`{}`)})
	content := "changed"
	updated := l.append(ws, memory.ItemUpdated{ItemID: id, Content: &content})
	deleted := l.append(ws, memory.ItemDeleted{ItemID: id})
	other := l.store(ws, memory.TypeMessage, "other", "", nil)
	for _, ev := range []eventstore.Event{stored, updated, stored, deleted, updated} {
		l.apply(ev)
	}
	expectIDs(t, "after redelivery", l.search(ws, cognition.Query{IncludeExpired: true}), other)
}

func testInvalidQuery(t *testing.T, l *log) {
	ws := newID()
	l.store(ws, memory.TypeMessage, "x", "", nil)
	_, err := l.s.Memory.Search(context.Background(), ws, cognition.Query{Types: []string{"fact"}, Limit: cognition.MaxLimit + 1,
		From: T0.Add(time.Hour), To: T0})
	if domain.ErrorCode(err) != domain.CodeInvalid {
		t.Fatalf("invalid query: %v", err)
	}
}
