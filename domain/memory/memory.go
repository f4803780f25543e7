// Package memory is the workspace memory aggregate, the whiteboard: the
// items a workspace remembers — messages, entities, files and events — each
// with content, metadata and an optional expiry. Its stream is
// "memory-<workspace id>", one per workspace.
//
// An entity is known by its name (metadata "name", compared without regard
// to case): remembering an entity that is already known updates it. A
// message is remembered at most once: every item taken from a message names
// it as its source, and a second item from the same source is refused, so
// reprocessing a message never stores it twice.
package memory

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/engramhq/engram/domain"
)

// StreamType is the stream type of memory streams.
const StreamType = "memory"

// StreamID returns the stream identifier of the memory of the workspace with
// the given id.
func StreamID(workspaceID string) string { return domain.StreamID(StreamType, workspaceID) }

// Item types.
const (
	TypeMessage = "message" // something said in a conversation
	TypeEntity  = "entity"  // a named thing: a person, a place, a project
	TypeFile    = "file"    // a document or its description
	TypeEvent   = "event"   // something that happened or will happen
)

// Types lists every item type.
var Types = []string{TypeMessage, TypeEntity, TypeFile, TypeEvent}

// Rule limits.
const (
	MaxContentRunes = 32000
	MaxNameRunes    = 200
)

// MetadataName is the metadata key that names an entity.
const MetadataName = "name"

// Whiteboard is the memory aggregate of one workspace. The zero value is an
// empty whiteboard (a workspace that remembers nothing yet), ready to have
// stored events applied.
type Whiteboard struct {
	domain.Root

	items    map[string]*item  // item id → item
	entities map[string]string // folded entity name → item id
	sources  map[string]bool   // message ids remembered
}

// item is what the whiteboard keeps of an item: enough to enforce the rules.
// Content and metadata are kept for entities only.
type item struct {
	typ      string
	name     string
	content  string
	metadata json.RawMessage
	deleted  bool
}

// Store records a new item. itemType is message, entity, file or event;
// content must not be blank and is at most 32,000 characters, stored as
// given; metadata is a JSON object of at most 16 KiB ({} when absent);
// expiresAt, when given, must be after now; sourceMessageID, when given,
// names the message the item comes from. It fails with CodeConflict when
// itemID is already used or the source message was already remembered.
func (w *Whiteboard) Store(itemID, itemType, content string, metadata json.RawMessage, expiresAt *time.Time,
	sourceMessageID string, now time.Time) error {
	var v domain.Validation
	v.ID("item_id", itemID)
	v.OneOf("type", itemType, Types...)
	checkContent(&v, content)
	metadata = v.Object("metadata", metadata)
	if expiresAt != nil {
		v.Check(expiresAt.After(now), "expires_at", "must be in the future")
		t := expiresAt.UTC()
		expiresAt = &t
	}
	if sourceMessageID != "" {
		v.ID("source_message_id", sourceMessageID)
	}
	if err := v.Err(); err != nil {
		return err
	}
	if err := w.checkNew(itemID, sourceMessageID); err != nil {
		return err
	}
	w.Record(w.Apply, ItemStored{ItemID: itemID, Type: itemType, Content: content, Metadata: metadata,
		ExpiresAt: expiresAt, SourceMessageID: sourceMessageID})
	return nil
}

// Remember records what the message sourceMessageID says about the entity
// called name (1–200 characters): when an entity of that name is known, its
// content is replaced (and it keeps its id); otherwise a new entity item
// itemID is stored with the metadata {"name": name}. It returns the id of the
// entity item. It fails with CodeConflict when the message was already
// remembered or itemID is already used by another item.
func (w *Whiteboard) Remember(itemID, name, content, sourceMessageID string) (string, error) {
	var v domain.Validation
	v.ID("item_id", itemID)
	name = v.Text("name", name, 1, MaxNameRunes)
	checkContent(&v, content)
	v.ID("source_message_id", sourceMessageID)
	if err := v.Err(); err != nil {
		return "", err
	}
	if w.sources[sourceMessageID] {
		return "", domain.Errorf(domain.CodeConflict, "message already remembered")
	}
	if id, ok := w.entities[fold(name)]; ok {
		it := w.items[id]
		ev := ItemUpdated{ItemID: id, SourceMessageID: sourceMessageID}
		if content != it.content {
			ev.Content = &content
		}
		if it.name != name {
			md, err := domain.MergePatch(it.metadata, nameObject(name))
			if err != nil {
				return "", &domain.Error{Code: domain.CodeInvalid, Message: "validation failed",
					Fields: []domain.FieldError{{Field: "name", Message: err.Error()}}}
			}
			ev.Metadata = md
		}
		w.Record(w.Apply, ev)
		return id, nil
	}
	if err := w.checkNew(itemID, sourceMessageID); err != nil {
		return "", err
	}
	w.Record(w.Apply, ItemStored{ItemID: itemID, Type: TypeEntity, Content: content, Metadata: nameObject(name),
		SourceMessageID: sourceMessageID})
	return itemID, nil
}

// Delete forgets an item. It fails with CodeNotFound when there is no such
// item or it was already deleted.
func (w *Whiteboard) Delete(itemID string) error {
	it, ok := w.items[itemID]
	if !ok || it.deleted {
		return domain.Errorf(domain.CodeNotFound, "memory item not found")
	}
	w.Record(w.Apply, ItemDeleted{ItemID: itemID})
	return nil
}

func checkContent(v *domain.Validation, content string) {
	switch {
	case domain.TextProblem(content) != "":
		v.Add("content", "%s", domain.TextProblem(content))
	case strings.TrimSpace(content) == "":
		v.Add("content", "is required")
	case utf8.RuneCountInString(content) > MaxContentRunes:
		v.Add("content", "must be at most %d characters", MaxContentRunes)
	}
}

func (w *Whiteboard) checkNew(itemID, sourceMessageID string) error {
	if _, ok := w.items[itemID]; ok {
		return domain.Errorf(domain.CodeConflict, "memory item already stored")
	}
	if sourceMessageID != "" && w.sources[sourceMessageID] {
		return domain.Errorf(domain.CodeConflict, "message already remembered")
	}
	return nil
}

// nameObject returns the canonical metadata {"name": name}.
func nameObject(name string) json.RawMessage {
	b, _ := json.Marshal(map[string]string{MetadataName: name})
	return b
}

// entityName returns the "name" of an entity's metadata, or "".
func entityName(metadata json.RawMessage) string {
	var md map[string]any
	if json.Unmarshal(metadata, &md) != nil {
		return ""
	}
	name, _ := md[MetadataName].(string)
	return strings.TrimSpace(name)
}

func fold(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

// Apply changes the state by one event; it is used both when recording new
// events and when loading stored ones, and it never fails.
func (w *Whiteboard) Apply(e domain.Event) {
	w.Applied()
	if w.items == nil {
		w.items = map[string]*item{}
		w.entities = map[string]string{}
		w.sources = map[string]bool{}
	}
	switch e := e.(type) {
	case ItemStored:
		it := &item{typ: e.Type}
		if e.Type == TypeEntity {
			it.content = e.Content
			it.metadata = bytes.Clone(e.Metadata)
			it.name = entityName(e.Metadata)
		}
		w.items[e.ItemID] = it
		w.index(e.ItemID, it)
		w.remembered(e.SourceMessageID)
	case ItemUpdated:
		if it, ok := w.items[e.ItemID]; ok && it.typ == TypeEntity {
			if e.Content != nil {
				it.content = *e.Content
			}
			if e.Metadata != nil {
				w.unindex(e.ItemID, it)
				it.metadata = bytes.Clone(e.Metadata)
				it.name = entityName(e.Metadata)
				w.index(e.ItemID, it)
			}
		}
		w.remembered(e.SourceMessageID)
	case ItemDeleted:
		if it, ok := w.items[e.ItemID]; ok {
			it.deleted = true
			w.unindex(e.ItemID, it)
		}
	}
}

func (w *Whiteboard) index(id string, it *item) {
	if it.typ == TypeEntity && it.name != "" && !it.deleted {
		w.entities[fold(it.name)] = id
	}
}

func (w *Whiteboard) unindex(id string, it *item) {
	if key := fold(it.name); w.entities[key] == id {
		delete(w.entities, key)
	}
}

func (w *Whiteboard) remembered(sourceMessageID string) {
	if sourceMessageID != "" {
		w.sources[sourceMessageID] = true
	}
}

// Has reports whether the item exists and was not deleted.
func (w *Whiteboard) Has(itemID string) bool {
	it, ok := w.items[itemID]
	return ok && !it.deleted
}

// Remembered reports whether an item was taken from the message.
func (w *Whiteboard) Remembered(messageID string) bool { return w.sources[messageID] }

// Entity returns the id of the entity called name, if one is known.
func (w *Whiteboard) Entity(name string) (string, bool) {
	id, ok := w.entities[fold(name)]
	return id, ok
}
