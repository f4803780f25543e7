package memory

import (
	"encoding/json"
	"errors"
	"github.com/engramhq/engram/domain/domaintest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/engramhq/engram/domain"
)

const (
	i1 = "i-1"
	i2 = "i-2"
	m1 = "m-1"
	m2 = "m-2"
)

var (
	now    = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	future = now.Add(time.Hour)
)

func ptr[T any](v T) *T { return &v }

func load(events ...domain.Event) *Whiteboard {
	w := &Whiteboard{}
	for _, e := range events {
		w.Apply(e)
	}
	return w
}

func stored(id string) ItemStored {
	return ItemStored{ItemID: id, Type: TypeMessage, Content: "hello", Metadata: json.RawMessage(`{}`), SourceMessageID: m1}
}

func entity(id, name, content, source string) ItemStored {
	return ItemStored{ItemID: id, Type: TypeEntity, Content: content, Metadata: nameObject(name), SourceMessageID: source}
}

func TestCommands(t *testing.T) {
	withEntity := []domain.Event{entity(i1, "Ada", "Ada is a mathematician", m1)}
	tests := []struct {
		name   string
		given  []domain.Event
		when   func(*Whiteboard) error
		then   []domain.Event
		code   string
		fields []string
	}{
		// Store
		{name: "store a message item",
			when: func(w *Whiteboard) error { return w.Store(i1, TypeMessage, "hello", nil, nil, m1, now) },
			then: []domain.Event{stored(i1)}},
		{name: "store an expiring event with metadata",
			when: func(w *Whiteboard) error {
				return w.Store(i1, TypeEvent, " launch ", json.RawMessage(`{"b":1, "a":"x"}`), ptr(future.In(time.FixedZone("x", 3600))), "", now)
			},
			then: []domain.Event{ItemStored{ItemID: i1, Type: TypeEvent, Content: " launch ", Metadata: json.RawMessage(`{"a":"x","b":1}`), ExpiresAt: &future}}},
		{name: "store everything invalid",
			when: func(w *Whiteboard) error {
				return w.Store("", "fact", " ", json.RawMessage(`[1]`), ptr(now), "a b", now)
			},
			code: domain.CodeInvalid, fields: []string{"item_id", "type", "content", "metadata", "expires_at", "source_message_id"}},
		{name: "content too long",
			when: func(w *Whiteboard) error {
				return w.Store(i1, TypeFile, strings.Repeat("ü", MaxContentRunes+1), nil, nil, "", now)
			},
			code: domain.CodeInvalid, fields: []string{"content"}},
		{name: "content with NUL",
			when: func(w *Whiteboard) error { return w.Store(i1, TypeFile, "a\x00", nil, nil, "", now) },
			code: domain.CodeInvalid, fields: []string{"content"}},
		{name: "item id used", given: []domain.Event{stored(i1)},
			when: func(w *Whiteboard) error { return w.Store(i1, TypeMessage, "again", nil, nil, "", now) },
			code: domain.CodeConflict},
		{name: "item id of a deleted item", given: []domain.Event{stored(i1), ItemDeleted{ItemID: i1}},
			when: func(w *Whiteboard) error { return w.Store(i1, TypeMessage, "again", nil, nil, "", now) },
			code: domain.CodeConflict},
		{name: "message remembered twice", given: []domain.Event{stored(i1)},
			when: func(w *Whiteboard) error { return w.Store(i2, TypeMessage, "hello", nil, nil, m1, now) },
			code: domain.CodeConflict},
		// Remember
		{name: "remember a new entity",
			when: func(w *Whiteboard) error { _, err := w.Remember(i1, " Ada ", "Ada is a mathematician", m1); return err },
			then: []domain.Event{entity(i1, "Ada", "Ada is a mathematician", m1)}},
		{name: "remember a known entity updates it", given: withEntity,
			when: func(w *Whiteboard) error {
				id, err := w.Remember(i2, "ada", "Ada wrote the first program", m2)
				if id != i1 {
					t.Errorf("remembered item %q, want %q", id, i1)
				}
				return err
			},
			then: []domain.Event{ItemUpdated{ItemID: i1, Content: ptr("Ada wrote the first program"),
				Metadata: json.RawMessage(`{"name":"ada"}`), SourceMessageID: m2}}},
		{name: "remember the same again records the source only", given: withEntity,
			when: func(w *Whiteboard) error { _, err := w.Remember(i2, "Ada", "Ada is a mathematician", m2); return err },
			then: []domain.Event{ItemUpdated{ItemID: i1, SourceMessageID: m2}}},
		{name: "a message is remembered once", given: withEntity,
			when: func(w *Whiteboard) error { _, err := w.Remember(i2, "Bob", "Bob builds", m1); return err },
			code: domain.CodeConflict},
		{name: "remember after the entity was deleted stores a new one", given: []domain.Event{withEntity[0], ItemDeleted{ItemID: i1}},
			when: func(w *Whiteboard) error { _, err := w.Remember(i2, "Ada", "Ada again", m2); return err },
			then: []domain.Event{entity(i2, "Ada", "Ada again", m2)}},
		{name: "remember invalid",
			when: func(w *Whiteboard) error {
				_, err := w.Remember("", strings.Repeat("n", MaxNameRunes+1), "", "")
				return err
			},
			code: domain.CodeInvalid, fields: []string{"item_id", "name", "content", "source_message_id"}},
		// Delete
		{name: "delete", given: []domain.Event{stored(i1)},
			when: func(w *Whiteboard) error { return w.Delete(i1) },
			then: []domain.Event{ItemDeleted{ItemID: i1}}},
		{name: "delete unknown",
			when: func(w *Whiteboard) error { return w.Delete(i1) },
			code: domain.CodeNotFound},
		{name: "delete twice", given: []domain.Event{stored(i1), ItemDeleted{ItemID: i1}},
			when: func(w *Whiteboard) error { return w.Delete(i1) },
			code: domain.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := load(tt.given...)
			before := w.Version()
			err := tt.when(w)
			got := w.Pending()
			if err != nil && len(got) != 0 {
				t.Fatalf("failed command recorded %v", got)
			}
			if w.Version() != before+len(got) {
				t.Fatalf("version %d after %d events from %d", w.Version(), len(got), before)
			}
			domaintest.CheckOutcome(t, err, tt.code, tt.fields, got, tt.then)
		})
	}
}

func TestState(t *testing.T) {
	w := load(stored(i1), entity(i2, "Ada", "a", m2))
	if !w.Has(i1) || !w.Has(i2) || !w.Remembered(m1) || !w.Remembered(m2) || w.Remembered("m-3") {
		t.Fatal("stored items not known")
	}
	if id, ok := w.Entity("ADA"); !ok || id != i2 {
		t.Fatalf("entity Ada = %q %v", id, ok)
	}
	w.Apply(ItemUpdated{ItemID: i2, Metadata: nameObject("Lovelace")})
	if _, ok := w.Entity("Ada"); ok {
		t.Fatal("renamed entity still known by its old name")
	}
	if id, _ := w.Entity("lovelace"); id != i2 {
		t.Fatal("renamed entity not known by its new name")
	}
	w.Apply(ItemDeleted{ItemID: i2})
	if w.Has(i2) {
		t.Fatal("deleted item still there")
	}
	if _, ok := w.Entity("Lovelace"); ok {
		t.Fatal("deleted entity still known")
	}
	if w.Version() != 4 {
		t.Fatalf("version = %d", w.Version())
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	events := []domain.Event{
		ItemStored{ItemID: i1, Type: TypeEvent, Content: "c", Metadata: json.RawMessage(`{"a":1}`), ExpiresAt: &future, SourceMessageID: m1},
		stored(i2),
		ItemUpdated{ItemID: i1, Content: ptr("new"), Metadata: json.RawMessage(`{"name":"x"}`), SourceMessageID: m2},
		ItemUpdated{ItemID: i1},
		ItemDeleted{ItemID: i1},
	}
	for _, e := range events {
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(e.EventType(), 1, data)
		if err != nil {
			t.Fatalf("decode %s: %v", e.EventType(), err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("round trip of %s = %#v, want %#v", e.EventType(), got, e)
		}
	}
	// jsonb reformats what it stores: decoding canonicalises it again.
	got, err := Decode(EventItemStored, 1, []byte(`{"item_id":"i","type":"file","content":"c","metadata":{"b": 2, "a": 1}}`))
	if err != nil || string(got.(ItemStored).Metadata) != `{"a":1,"b":2}` {
		t.Fatalf("decode = %#v, %v", got, err)
	}
	if _, err := Decode(EventItemDeleted, 2, []byte(`{}`)); !errors.Is(err, domain.ErrUnknownEvent) {
		t.Fatalf("schema version 2: %v", err)
	}
	if _, err := Decode("memory.melted", 1, []byte(`{}`)); !errors.Is(err, domain.ErrUnknownEvent) {
		t.Fatalf("unknown type: %v", err)
	}
}
