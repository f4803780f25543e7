package memory

import (
	"encoding/json"
	"github.com/engramhq/engram/domain/domaintest"
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

func load(events ...domain.Event) *Whiteboard { return domaintest.Load(&Whiteboard{}, events...) }

func stored(id string) ItemStored {
	return ItemStored{ItemID: id, Type: TypeMessage, Content: "hello", Metadata: json.RawMessage(`{}`), SourceMessageID: m1}
}

func entity(id, name, content, source string) ItemStored {
	return ItemStored{ItemID: id, Type: TypeEntity, Content: content, Metadata: nameObject(name), SourceMessageID: source}
}

func TestCommands(t *testing.T) {
	withEntity := []domain.Event{entity(i1, "Ada", "Ada is a mathematician", m1)}
	tests := []domaintest.Case[*Whiteboard]{
		// Store
		{Name: "store a message item",
			When: func(w *Whiteboard) error { return w.Store(i1, TypeMessage, "hello", nil, nil, m1, now) },
			Then: []domain.Event{stored(i1)}},
		{Name: "store an expiring event with metadata",
			When: func(w *Whiteboard) error {
				return w.Store(i1, TypeEvent, " launch ", json.RawMessage(`{"b":1, "a":"x"}`), new(future.In(time.FixedZone("x", 3600))), "", now)
			},
			Then: []domain.Event{ItemStored{ItemID: i1, Type: TypeEvent, Content: " launch ", Metadata: json.RawMessage(`{"a":"x","b":1}`), ExpiresAt: &future}}},
		{Name: "store everything invalid",
			When: func(w *Whiteboard) error {
				return w.Store("", "fact", " ", json.RawMessage(`[1]`), new(now), "a b", now)
			},
			Code: domain.CodeInvalid, Fields: []string{"item_id", "type", "content", "metadata", "expires_at", "source_message_id"}},
		{Name: "content too long",
			When: func(w *Whiteboard) error {
				return w.Store(i1, TypeFile, strings.Repeat("ü", MaxContentRunes+1), nil, nil, "", now)
			},
			Code: domain.CodeInvalid, Fields: []string{"content"}},
		{Name: "content with NUL",
			When: func(w *Whiteboard) error { return w.Store(i1, TypeFile, "a\x00", nil, nil, "", now) },
			Code: domain.CodeInvalid, Fields: []string{"content"}},
		{Name: "item id used", Given: []domain.Event{stored(i1)},
			When: func(w *Whiteboard) error { return w.Store(i1, TypeMessage, "again", nil, nil, "", now) },
			Code: domain.CodeConflict},
		{Name: "item id of a deleted item", Given: []domain.Event{stored(i1), ItemDeleted{ItemID: i1}},
			When: func(w *Whiteboard) error { return w.Store(i1, TypeMessage, "again", nil, nil, "", now) },
			Code: domain.CodeConflict},
		{Name: "message remembered twice", Given: []domain.Event{stored(i1)},
			When: func(w *Whiteboard) error { return w.Store(i2, TypeMessage, "hello", nil, nil, m1, now) },
			Code: domain.CodeConflict},
		// Remember
		{Name: "remember a new entity",
			When: func(w *Whiteboard) error { _, err := w.Remember(i1, " Ada ", "Ada is a mathematician", m1); return err },
			Then: []domain.Event{entity(i1, "Ada", "Ada is a mathematician", m1)}},
		{Name: "remember a known entity updates it", Given: withEntity,
			When: func(w *Whiteboard) error {
				id, err := w.Remember(i2, "ada", "Ada wrote the first program", m2)
				if id != i1 {
					t.Errorf("remembered item %q, want %q", id, i1)
				}
				return err
			},
			Then: []domain.Event{ItemUpdated{ItemID: i1, Content: new("Ada wrote the first program"),
				Metadata: json.RawMessage(`{"name":"ada"}`), SourceMessageID: m2}}},
		{Name: "remember the same again records the source only", Given: withEntity,
			When: func(w *Whiteboard) error { _, err := w.Remember(i2, "Ada", "Ada is a mathematician", m2); return err },
			Then: []domain.Event{ItemUpdated{ItemID: i1, SourceMessageID: m2}}},
		{Name: "a message is remembered once", Given: withEntity,
			When: func(w *Whiteboard) error { _, err := w.Remember(i2, "Bob", "Bob builds", m1); return err },
			Code: domain.CodeConflict},
		{Name: "remember after the entity was deleted stores a new one", Given: []domain.Event{withEntity[0], ItemDeleted{ItemID: i1}},
			When: func(w *Whiteboard) error { _, err := w.Remember(i2, "Ada", "Ada again", m2); return err },
			Then: []domain.Event{entity(i2, "Ada", "Ada again", m2)}},
		{Name: "remember invalid",
			When: func(w *Whiteboard) error {
				_, err := w.Remember("", strings.Repeat("n", MaxNameRunes+1), "", "")
				return err
			},
			Code: domain.CodeInvalid, Fields: []string{"item_id", "name", "content", "source_message_id"}},
		// Delete
		{Name: "delete", Given: []domain.Event{stored(i1)},
			When: func(w *Whiteboard) error { return w.Delete(i1) },
			Then: []domain.Event{ItemDeleted{ItemID: i1}}},
		{Name: "delete unknown",
			When: func(w *Whiteboard) error { return w.Delete(i1) },
			Code: domain.CodeNotFound},
		{Name: "delete twice", Given: []domain.Event{stored(i1), ItemDeleted{ItemID: i1}},
			When: func(w *Whiteboard) error { return w.Delete(i1) },
			Code: domain.CodeNotFound},
	}
	domaintest.Run(t, func() *Whiteboard { return &Whiteboard{} }, tests)
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
		ItemUpdated{ItemID: i1, Content: new("new"), Metadata: json.RawMessage(`{"name":"x"}`), SourceMessageID: m2},
		ItemUpdated{ItemID: i1},
		ItemDeleted{ItemID: i1},
	}
	domaintest.RoundTrip(t, Decode, events...)
	// jsonb reformats what it stores: decoding canonicalises it again.
	got, err := Decode(EventItemStored, 1, []byte(`{"item_id":"i","type":"file","content":"c","metadata":{"b": 2, "a": 1}}`))
	if err != nil || string(got.(ItemStored).Metadata) != `{"a":1,"b":2}` {
		t.Fatalf("decode = %#v, %v", got, err)
	}
	domaintest.Unknown(t, Decode, EventItemDeleted)
}

func TestStreamID(t *testing.T) { domaintest.StreamID(t, StreamID, StreamType) }
