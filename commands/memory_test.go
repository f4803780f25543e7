package commands_test

import (
	"testing"
	"time"

	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/catalog"
	"github.com/engramhq/engram/domain/memory"
	"github.com/engramhq/engram/domain/workspace"
)

const (
	itemID  = "0190a6f4-0000-7000-8000-0000000000b2"
	otherID = "0190a6f4-0000-7000-8000-0000000000b3"
)

// board is the team's memory.
func board(events ...domain.Event) given { return stream(catalog.Memories.Kind, wsID, events...) }

func TestMemoryHandlers(t *testing.T) {
	store := func(actor access.Actor, typ string, expiresAt time.Time) func(w *world) ([]domain.Event, error) {
		return func(w *world) ([]domain.Event, error) {
			r, err := w.cmds.StoreMemoryItem.Handle(w.ctx, commands.StoreMemoryItem{Actor: actor, WorkspaceID: wsID, Type: typ,
				Content: "the spec", Metadata: object(`{"b":1,"a":2}`), ExpiresAt: &expiresAt})
			return then(err, memory.ItemStored{ItemID: r.ItemID, Type: typ, Content: "the spec", Metadata: object(`{"a":2,"b":1}`),
				ExpiresAt: &expiresAt})
		}
	}
	remove := func(actor access.Actor, id string) func(w *world) ([]domain.Event, error) {
		return func(w *world) ([]domain.Event, error) {
			_, err := w.cmds.DeleteMemoryItem.Handle(w.ctx, commands.DeleteMemoryItem{Actor: actor, WorkspaceID: wsID, ItemID: id})
			return then(err, memory.ItemDeleted{ItemID: id})
		}
	}
	rememberMessage := func(w *world) ([]domain.Event, error) {
		r, err := w.cmds.RememberMessage.Handle(w.ctx, commands.RememberMessage{ConversationID: convID, MessageID: msgID,
			ItemID: itemID, Role: "user", AuthorID: bobID, Content: "hello"})
		if r.AlreadyRemembered {
			return nil, err
		}
		return then(err, memory.ItemStored{ItemID: itemID, Type: memory.TypeMessage, Content: "hello", SourceMessageID: msgID,
			Metadata: object(`{"author_id":"` + bobID + `","conversation_id":"` + convID + `","message_id":"` + msgID + `","role":"user"}`)})
	}
	rememberEntity := func(w *world) ([]domain.Event, error) {
		r, err := w.cmds.RememberEntity.Handle(w.ctx, commands.RememberEntity{ConversationID: convID, MessageID: msgID,
			ItemID: itemID, Name: "Ada", Content: "Ada writes programs"})
		if r.ItemID == otherID {
			// Known as "ada": the content is replaced and the name takes the new spelling.
			return then(err, memory.ItemUpdated{ItemID: otherID, Content: ptr("Ada writes programs"),
				Metadata: object(`{"name":"Ada"}`), SourceMessageID: msgID})
		}
		return then(err, memory.ItemStored{ItemID: itemID, Type: memory.TypeEntity, Content: "Ada writes programs",
			Metadata: object(`{"name":"Ada"}`), SourceMessageID: msgID})
	}
	tomorrow := t0.Add(24 * time.Hour)
	stored := memory.ItemStored{ItemID: itemID, Type: memory.TypeFile, Content: "the spec", Metadata: object(`{}`)}
	run(t, []handlerCase{
		// StoreMemoryItem
		{name: "an editor stores an item", given: []given{team()}, when: store(bob, memory.TypeFile, tomorrow), actor: bobID},
		{name: "a viewer may not", given: []given{team()}, when: store(cy, memory.TypeFile, tomorrow), code: domain.CodeForbidden},
		{name: "not in an archived workspace", given: []given{team(workspace.Archived{})}, when: store(bob, memory.TypeFile, tomorrow),
			code: domain.CodeConflict},
		{name: "an unknown type, an expiry in the past", given: []given{team()}, when: store(bob, "gossip", t0.Add(-time.Second)),
			code: domain.CodeInvalid, fields: []string{"type", "expires_at"}},
		// DeleteMemoryItem
		{name: "an editor deletes an item", given: []given{team(), board(stored)}, when: remove(bob, itemID), actor: bobID},
		{name: "deleted twice", given: []given{team(), board(stored, memory.ItemDeleted{ItemID: itemID})}, when: remove(bob, itemID),
			code: domain.CodeNotFound},
		{name: "an unknown item", given: []given{team()}, when: remove(bob, itemID), code: domain.CodeNotFound},
		{name: "not an id", given: []given{team()}, when: remove(bob, "item"), code: domain.CodeNotFound},
		{name: "a viewer may not delete", given: []given{team(), board(stored)}, when: remove(cy, itemID), code: domain.CodeForbidden},
		// RememberMessage
		{name: "a message is remembered", given: []given{team(), plans()}, when: rememberMessage},
		{name: "and only once", given: []given{team(), plans(), board(memory.ItemStored{ItemID: otherID, Type: memory.TypeMessage,
			Content: "hello", Metadata: object(`{}`), SourceMessageID: msgID})}, when: rememberMessage},
		{name: "a missing conversation", given: []given{team()}, when: rememberMessage, code: domain.CodeNotFound},
		// RememberEntity
		{name: "a new entity", given: []given{team(), plans()}, when: rememberEntity},
		{name: "a known entity is updated", given: []given{team(), plans(), board(memory.ItemStored{ItemID: otherID,
			Type: memory.TypeEntity, Content: "Ada counts", Metadata: object(`{"name":"ada"}`)})}, when: rememberEntity},
	})
}
