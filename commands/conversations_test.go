package commands_test

import (
	"testing"

	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/domain/workspace"
)

func TestConversationHandlers(t *testing.T) {
	create := func(actor access.Actor, title string) func(w *world) ([]domain.Event, error) {
		return func(w *world) ([]domain.Event, error) {
			r, err := w.cmds.CreateConversation.Handle(w.ctx, commands.CreateConversation{Actor: actor, WorkspaceID: wsID, Title: title})
			return then(err, conversation.Created{ConversationID: r.Conversation.ID, WorkspaceID: wsID, CreatedBy: actor.UserID,
				Title: title, Modality: conversation.ModalityText, Metadata: object(`{}`)})
		}
	}
	post := func(actor access.Actor, content string) func(w *world) ([]domain.Event, error) {
		return func(w *world) ([]domain.Event, error) {
			r, err := w.cmds.PostMessage.Handle(w.ctx, commands.PostMessage{Actor: actor, ConversationID: convID, Content: content})
			return then(err, conversation.MessagePosted{MessageID: r.MessageID, AuthorID: actor.UserID,
				Role: conversation.RoleUser, Content: content, Metadata: object(`{}`)})
		}
	}
	rename := func(actor access.Actor, ifMatch *int) func(w *world) ([]domain.Event, error) {
		return func(w *world) ([]domain.Event, error) {
			_, err := w.cmds.UpdateConversation.Handle(w.ctx, commands.UpdateConversation{Actor: actor, ConversationID: convID,
				Title: ptr("Roadmap"), MetadataPatch: object(`{"tag":"q3"}`), IfMatch: ifMatch})
			return then(err, conversation.Updated{Title: ptr("Roadmap"), Metadata: object(`{"tag":"q3"}`)})
		}
	}
	archive := func(w *world) ([]domain.Event, error) {
		_, err := w.cmds.ArchiveConversation.Handle(w.ctx, commands.ArchiveConversation{Actor: bob, ConversationID: convID})
		return then(err, conversation.Archived{})
	}
	run(t, []handlerCase{
		// CreateConversation
		{name: "an editor creates a conversation", given: []given{team()}, when: create(bob, "Plans"), actor: bobID},
		{name: "a viewer may not create one", given: []given{team()}, when: create(cy, "Plans"), code: domain.CodeForbidden},
		{name: "a stranger does not find the workspace", given: []given{team()}, when: create(eve, "Plans"), code: domain.CodeNotFound},
		{name: "a read-only key may not create one", given: []given{team()}, when: create(bobKey, "Plans"), code: domain.CodeForbidden},
		{name: "not in an archived workspace", given: []given{team(workspace.Archived{})}, when: create(bob, "Plans"),
			code: domain.CodeConflict},
		{name: "a blank title is invalid", given: []given{team()}, when: create(bob, "  "),
			code: domain.CodeInvalid, fields: []string{"title"}},
		{name: "no workspace, no conversation", when: create(ada, "Plans"), code: domain.CodeNotFound},
		// PostMessage
		{name: "an editor posts", given: []given{team(), plans()}, when: post(bob, "hi all"), actor: bobID},
		{name: "a viewer may not post", given: []given{team(), plans()}, when: post(cy, "hi"), code: domain.CodeForbidden},
		{name: "a blank message is invalid", given: []given{team(), plans()}, when: post(bob, " \n"),
			code: domain.CodeInvalid, fields: []string{"content"}},
		{name: "not to an archived conversation", given: []given{team(), plans(conversation.Archived{})}, when: post(bob, "hi"),
			code: domain.CodeConflict},
		{name: "not to a missing conversation", given: []given{team()}, when: post(bob, "hi"), code: domain.CodeNotFound},
		// UpdateConversation
		{name: "an editor renames", given: []given{team(), plans()}, when: rename(bob, nil), actor: bobID},
		{name: "If-Match of the current version", given: []given{team(), plans()}, when: rename(bob, ptr(2))},
		{name: "If-Match of an older version", given: []given{team(), plans()}, when: rename(bob, ptr(1)),
			err: commands.ErrPreconditionFailed},
		{name: "a viewer may not rename", given: []given{team(), plans()}, when: rename(cy, nil), code: domain.CodeForbidden},
		// ArchiveConversation
		{name: "an editor archives", given: []given{team(), plans()}, when: archive},
		{name: "archived twice", given: []given{team(), plans(conversation.Archived{})}, when: archive, code: domain.CodeConflict},
	})
}
