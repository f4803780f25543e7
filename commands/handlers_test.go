package commands_test

import (
	"testing"
	"time"

	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/apikey"
	"github.com/engramhq/engram/domain/catalog"
	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/domain/memory"
	"github.com/engramhq/engram/domain/session"
	"github.com/engramhq/engram/domain/task"
	"github.com/engramhq/engram/domain/user"
	"github.com/engramhq/engram/domain/workspace"
	"github.com/engramhq/engram/eventstore"
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
				Title: new("Roadmap"), MetadataPatch: object(`{"tag":"q3"}`), IfMatch: ifMatch})
			return then(err, conversation.Updated{Title: new("Roadmap"), Metadata: object(`{"tag":"q3"}`)})
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
		{name: "If-Match of the current version", given: []given{team(), plans()}, when: rename(bob, new(2))},
		{name: "If-Match of an older version", given: []given{team(), plans()}, when: rename(bob, new(1)),
			err: commands.ErrPreconditionFailed},
		{name: "a viewer may not rename", given: []given{team(), plans()}, when: rename(cy, nil), code: domain.CodeForbidden},
		// ArchiveConversation
		{name: "an editor archives", given: []given{team(), plans()}, when: archive},
		{name: "archived twice", given: []given{team(), plans(conversation.Archived{})}, when: archive, code: domain.CodeConflict},
	})
}

func TestWorkspaceHandlers(t *testing.T) {
	create := func(actor access.Actor, name string) func(w *world) ([]domain.Event, error) {
		return func(w *world) ([]domain.Event, error) {
			r, err := w.cmds.CreateWorkspace.Handle(w.ctx, commands.CreateWorkspace{Actor: actor, Name: name, Config: object(`{"b":1,"a":2}`)})
			return then(err, workspace.Created{WorkspaceID: r.Workspace.ID, OwnerID: actor.UserID, Name: name, Config: object(`{"a":2,"b":1}`)})
		}
	}
	update := func(actor access.Actor, ifMatch *int) func(w *world) ([]domain.Event, error) {
		return func(w *world) ([]domain.Event, error) {
			_, err := w.cmds.UpdateWorkspace.Handle(w.ctx, commands.UpdateWorkspace{Actor: actor, WorkspaceID: wsID,
				Name: new("Team"), Description: new("What we do"), IfMatch: ifMatch})
			return then(err, workspace.Updated{Description: new("What we do")})
		}
	}
	archive := func(actor access.Actor) func(w *world) ([]domain.Event, error) {
		return func(w *world) ([]domain.Event, error) {
			_, err := w.cmds.ArchiveWorkspace.Handle(w.ctx, commands.ArchiveWorkspace{Actor: actor, WorkspaceID: wsID})
			return then(err, workspace.Archived{})
		}
	}
	run(t, []handlerCase{
		{name: "anyone creates a workspace, keys sorted in its config", when: create(eve, "Lab"), actor: eveID},
		{name: "a read-only key may not create one", when: create(bobKey, "Lab"), code: domain.CodeForbidden},
		{name: "a name is required", when: create(eve, ""), code: domain.CodeInvalid, fields: []string{"name"}},
		{name: "the owner updates what changed", given: []given{team()}, when: update(ada, nil), actor: adaID},
		{name: "If-Match of the current version", given: []given{team()}, when: update(ada, new(3))},
		{name: "If-Match of an older version", given: []given{team()}, when: update(ada, new(2)), err: commands.ErrPreconditionFailed},
		{name: "an editor may not update", given: []given{team()}, when: update(bob, nil), code: domain.CodeForbidden},
		{name: "an admin may", given: []given{team()}, when: update(admin, nil)},
		{name: "a stranger does not find it", given: []given{team()}, when: update(eve, nil), code: domain.CodeNotFound},
		{name: "no change to an archived workspace", given: []given{team(workspace.Archived{})}, when: update(ada, nil),
			code: domain.CodeConflict},
		{name: "the owner archives", given: []given{team()}, when: archive(ada)},
		{name: "an editor may not archive", given: []given{team()}, when: archive(bob), code: domain.CodeForbidden},
		{name: "archived twice", given: []given{team(workspace.Archived{})}, when: archive(ada), code: domain.CodeConflict},
		{name: "a missing workspace", when: archive(ada), code: domain.CodeNotFound},
	})
}

func TestMemberHandlers(t *testing.T) {
	add := func(actor access.Actor, cmd commands.AddMember, role string) func(w *world) ([]domain.Event, error) {
		return func(w *world) ([]domain.Event, error) {
			cmd.Actor, cmd.WorkspaceID, cmd.Role = actor, wsID, role
			r, err := w.cmds.AddMember.Handle(w.ctx, cmd)
			return then(err, workspace.MemberAdded{UserID: r.UserID, Role: role})
		}
	}
	remove := func(actor access.Actor, userID string) func(w *world) ([]domain.Event, error) {
		return func(w *world) ([]domain.Event, error) {
			_, err := w.cmds.RemoveMember.Handle(w.ctx, commands.RemoveMember{Actor: actor, WorkspaceID: wsID, UserID: userID})
			return then(err, workspace.MemberRemoved{UserID: userID})
		}
	}
	eveAccount := registered(eveID, "eve@example.com")
	run(t, []handlerCase{
		// AddMember
		{name: "the owner adds a user by id", given: []given{team(), eveAccount},
			when: add(ada, commands.AddMember{UserID: eveID}, workspace.RoleViewer), actor: adaID},
		{name: "or by e-mail address, in any case", given: []given{team(), eveAccount},
			when: add(ada, commands.AddMember{Email: " Eve@Example.com"}, workspace.RoleEditor)},
		{name: "a member's role changes", given: []given{team(), registered(cyID, "cy@example.com")}, when: add(ada, commands.AddMember{UserID: cyID}, workspace.RoleEditor)},
		{name: "the same role again", given: []given{team(), registered(bobID, "bob@example.com")}, when: add(ada, commands.AddMember{UserID: bobID}, workspace.RoleEditor),
			code: domain.CodeConflict},
		{name: "an unknown e-mail address", given: []given{team()}, when: add(ada, commands.AddMember{Email: "nobody@example.com"}, workspace.RoleViewer),
			code: domain.CodeInvalid, fields: []string{"email"}},
		{name: "an unknown user id", given: []given{team()}, when: add(ada, commands.AddMember{UserID: missingID}, workspace.RoleViewer),
			code: domain.CodeInvalid, fields: []string{"user_id"}},
		{name: "id and e-mail address at once, and no role", given: []given{team(), eveAccount},
			when: add(ada, commands.AddMember{UserID: eveID, Email: "eve@example.com"}, ""),
			code: domain.CodeInvalid, fields: []string{"user_id", "role"}},
		{name: "an editor may not add members", given: []given{team(), eveAccount},
			when: add(bob, commands.AddMember{UserID: eveID}, workspace.RoleViewer), code: domain.CodeForbidden},
		{name: "a stranger learns nothing", given: []given{team()},
			when: add(eve, commands.AddMember{Email: "nobody@example.com"}, workspace.RoleViewer), code: domain.CodeNotFound},
		// RemoveMember
		{name: "the owner removes a member", given: []given{team()}, when: remove(ada, bobID), actor: adaID},
		{name: "a viewer leaves", given: []given{team()}, when: remove(cy, cyID)},
		{name: "a viewer may not remove another", given: []given{team()}, when: remove(cy, bobID), code: domain.CodeForbidden},
		{name: "the last owner cannot leave", given: []given{team()}, when: remove(ada, adaID), code: domain.CodeConflict},
		{name: "not a member", given: []given{team()}, when: remove(ada, eveID), code: domain.CodeNotFound},
		{name: "not an id", given: []given{team()}, when: remove(ada, "bob"), code: domain.CodeNotFound},
	})
}

const sessionID = "0190a6f4-0000-7000-8000-0000000000a1"

// adaSession is a login of ada's whose refresh token is "rt_<id>.first";
// more events follow its start.
func adaSession(more ...domain.Event) given {
	return stream(catalog.Sessions.Kind, sessionID, append([]domain.Event{session.Started{SessionID: sessionID, UserID: adaID,
		RefreshTokenHash: "h:" + refreshToken("first"), UserAgent: "curl/8", ExpiresAt: t0.Add(time.Hour)}}, more...)...)
}

func refreshToken(secret string) string { return "rt_" + sessionID + "." + secret }

func TestAccountHandlers(t *testing.T) {
	register := func(email, password string) func(w *world) ([]domain.Event, error) {
		return func(w *world) ([]domain.Event, error) {
			r, err := w.cmds.Register.Handle(w.ctx, commands.Register{Email: email, Password: password, DisplayName: "Ada"})
			if err == nil {
				if owner, _ := w.store.ClaimOwner(w.ctx, eventstore.Claim{Scope: commands.EmailClaimScope, Value: user.NormalizeEmail(email)}); owner != user.StreamID(r.User.ID) {
					t.Errorf("the e-mail address is claimed by %q", owner)
				}
			}
			return then(err, user.Registered{UserID: r.User.ID, Email: user.NormalizeEmail(email), DisplayName: "Ada",
				PasswordHash: "hash:" + password, Role: user.RoleUser})
		}
	}
	login := func(email, password string) func(w *world) ([]domain.Event, error) {
		return func(w *world) ([]domain.Event, error) {
			r, err := w.cmds.Login.Handle(w.ctx, commands.Login{Email: email, Password: password, UserAgent: "curl/8", IP: "192.0.2.1"})
			if err == nil && r.AccessToken != "access:"+adaID+":"+r.SessionID {
				t.Errorf("access token %q", r.AccessToken)
			}
			return then(err, session.Started{SessionID: r.SessionID, UserID: adaID, RefreshTokenHash: "h:" + r.RefreshToken,
				UserAgent: "curl/8", IP: "192.0.2.1", ExpiresAt: t0.Add(time.Hour)})
		}
	}
	refresh := func(token string) func(w *world) ([]domain.Event, error) {
		return func(w *world) ([]domain.Event, error) {
			r, err := w.cmds.Login.Refresh(w.ctx, commands.Refresh{RefreshToken: token})
			return then(err, session.Refreshed{RefreshTokenHash: "h:" + r.RefreshToken, ExpiresAt: t0.Add(time.Hour)})
		}
	}
	revoke := func(actor access.Actor) func(w *world) ([]domain.Event, error) {
		return func(w *world) ([]domain.Event, error) {
			_, err := w.cmds.RevokeSession.Handle(w.ctx, commands.RevokeSession{Actor: actor, SessionID: sessionID, Reason: session.ReasonLogout})
			return then(err, session.Revoked{Reason: session.ReasonLogout})
		}
	}
	grant := func(email, role string) func(w *world) ([]domain.Event, error) {
		return func(w *world) ([]domain.Event, error) {
			_, err := w.grant.Handle(w.ctx, commands.GrantRole{Email: email, Role: role, By: "cli:ops"})
			return then(err, user.RoleGranted{Role: role})
		}
	}
	const adaEmail, adaPassword = "ada@example.com", "password-ada@example.com"
	account := registered(adaID, adaEmail)
	run(t, []handlerCase{
		// Register
		{name: "register, the e-mail address normalized and claimed", when: register(" Ada@Example.com ", "long enough password")},
		{name: "an e-mail address in use", given: []given{account}, when: register("ADA@example.com", "long enough password"),
			code: domain.CodeConflict},
		{name: "every invalid field at once", when: register("not an address", "short"),
			code: domain.CodeInvalid, fields: []string{"email", "password"}},
		// Login
		{name: "a login starts a session", given: []given{account}, when: login(adaEmail, adaPassword), actor: adaID},
		{name: "a wrong password", given: []given{account}, when: login(adaEmail, "password-guess"), code: domain.CodeUnauthorized},
		{name: "an unknown account", when: login(adaEmail, adaPassword), code: domain.CodeUnauthorized},
		// Refresh
		{name: "a refresh rotates the token", given: []given{account, adaSession()}, when: refresh(refreshToken("first")), actor: adaID},
		{name: "a spent token revokes the session", given: []given{account, adaSession(session.Refreshed{
			RefreshTokenHash: "h:" + refreshToken("second"), ExpiresAt: t0.Add(time.Hour)})},
			when: func(w *world) ([]domain.Event, error) {
				_, err := w.cmds.Login.Refresh(w.ctx, commands.Refresh{RefreshToken: refreshToken("first")})
				return []domain.Event{session.Revoked{Reason: session.ReasonRefreshTokenReuse}}, err
			},
			code: domain.CodeUnauthorized},
		{name: "an unknown token", given: []given{account, adaSession()}, when: refresh(refreshToken("guess")), code: domain.CodeUnauthorized},
		{name: "a revoked session", given: []given{account, adaSession(session.Revoked{Reason: session.ReasonLogout})},
			when: refresh(refreshToken("first")), code: domain.CodeUnauthorized},
		// RevokeSession
		{name: "the user logs out", given: []given{adaSession()}, when: revoke(ada), actor: adaID},
		{name: "an admin revokes anyone's", given: []given{adaSession()}, when: revoke(admin)},
		{name: "another user does not find it", given: []given{adaSession()}, when: revoke(eve), code: domain.CodeNotFound},
		{name: "not with an API key", given: []given{adaSession()}, when: revoke(bobKey), code: domain.CodeForbidden},
		{name: "revoked twice records nothing", given: []given{adaSession(session.Revoked{Reason: session.ReasonLogout})},
			when: func(w *world) ([]domain.Event, error) {
				_, err := w.cmds.RevokeSession.Handle(w.ctx, commands.RevokeSession{Actor: ada, SessionID: sessionID})
				return nil, err
			}},
		// GrantRole
		{name: "the operator grants a role", given: []given{account}, when: grant(adaEmail, user.RoleAuditor), actor: "cli:ops"},
		{name: "a role held records nothing", given: []given{registered(adaID, adaEmail, user.RoleGranted{Role: user.RoleAdmin})},
			when: func(w *world) ([]domain.Event, error) {
				_, err := w.grant.Handle(w.ctx, commands.GrantRole{Email: adaEmail, Role: user.RoleAdmin, By: "cli:ops"})
				return nil, err
			}},
		{name: "an unknown e-mail address", when: grant(adaEmail, user.RoleAdmin), code: domain.CodeNotFound},
		{name: "an unknown role", given: []given{account}, when: grant(adaEmail, "root"), code: domain.CodeInvalid, fields: []string{"role"}},
	})
}

const keyID = "0190a6f4-0000-7000-8000-0000000000b1"

// adaKey is an API key of ada's; more events follow its issue.
func adaKey(more ...domain.Event) given {
	return stream(catalog.APIKeys.Kind, keyID, append([]domain.Event{apikey.Issued{KeyID: keyID, UserID: adaID, Name: "CI",
		Scopes: []string{apikey.ScopeRead}, KeyHash: "h:sk-key", Prefix: "sk-key"}}, more...)...)
}

func TestAPIKeyHandlers(t *testing.T) {
	issue := func(actor access.Actor, scopes []string, days *int) func(w *world) ([]domain.Event, error) {
		return func(w *world) ([]domain.Event, error) {
			r, err := w.cmds.IssueAPIKey.Handle(w.ctx, commands.IssueAPIKey{Actor: actor, Name: " CI ", Scopes: scopes, ExpiresInDays: days})
			var expires *time.Time
			if days != nil {
				expires = new(t0.AddDate(0, 0, *days))
			}
			if err == nil && (len(r.Key) < 40 || r.Prefix != r.Key[:len(r.Prefix)]) {
				t.Errorf("key %q, prefix %q", r.Key, r.Prefix)
			}
			return then(err, apikey.Issued{KeyID: r.ID, UserID: actor.UserID, Name: "CI", Scopes: []string{apikey.ScopeRead, apikey.ScopeWrite},
				KeyHash: "h:" + r.Key, Prefix: r.Prefix, ExpiresAt: expires})
		}
	}
	revoke := func(actor access.Actor) func(w *world) ([]domain.Event, error) {
		return func(w *world) ([]domain.Event, error) {
			_, err := w.cmds.RevokeAPIKey.Handle(w.ctx, commands.RevokeAPIKey{Actor: actor, KeyID: keyID})
			return then(err, apikey.Revoked{})
		}
	}
	readWrite := []string{apikey.ScopeWrite, apikey.ScopeRead, apikey.ScopeRead}
	run(t, []handlerCase{
		// IssueAPIKey
		{name: "a key that expires, scopes sorted once each", when: issue(ada, readWrite, new(30)), actor: adaID},
		{name: "a key that never expires", when: issue(ada, readWrite, nil)},
		{name: "the audit scope needs an auditor", when: issue(ada, []string{apikey.ScopeAudit}, nil), code: domain.CodeForbidden},
		{name: "not with an API key", when: issue(bobKey, readWrite, nil), code: domain.CodeForbidden},
		{name: "every invalid field at once", when: issue(ada, []string{"admin"}, new(0)),
			code: domain.CodeInvalid, fields: []string{"scopes", "expires_in_days"}},
		// RevokeAPIKey
		{name: "the owner revokes", given: []given{adaKey()}, when: revoke(ada), actor: adaID},
		{name: "an admin revokes anyone's", given: []given{adaKey()}, when: revoke(admin)},
		{name: "another user does not find it", given: []given{adaKey()}, when: revoke(eve), code: domain.CodeNotFound},
		{name: "a missing key", when: revoke(ada), code: domain.CodeNotFound},
		{name: "revoked twice records nothing", given: []given{adaKey(apikey.Revoked{})},
			when: func(w *world) ([]domain.Event, error) {
				_, err := w.cmds.RevokeAPIKey.Handle(w.ctx, commands.RevokeAPIKey{Actor: ada, KeyID: keyID})
				return nil, err
			}},
	})
}

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
			return then(err, memory.ItemStored{ItemID: r.Item.ItemID, Type: typ, Content: "the spec", Metadata: object(`{"a":2,"b":1}`),
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
			return then(err, memory.ItemUpdated{ItemID: otherID, Content: new("Ada writes programs"),
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

const replyID = "0190a6f4-0000-7000-8000-0000000000d2"

var (
	submitted = task.Submitted{TaskID: taskID, WorkspaceID: wsID, ConversationID: convID, MessageID: msgID, RequestedBy: bobID,
		Expert: "echo", Input: "hello", Priority: 3}
	running   = task.Started{Worker: "w1", Attempt: 1, Deadline: t0.Add(time.Minute)}
	completed = task.Completed{Output: "ECHO: hello", ReplyMessageID: replyID}
	// reply is the message that carries the completed task's output.
	reply = conversation.MessagePosted{MessageID: replyID, AuthorID: "expert:echo", Role: conversation.RoleAssistant,
		Content: "ECHO: hello", Metadata: object(`{"expert":"echo","task_id":"` + taskID + `"}`)}
)

// echo is the team's task for bob's message; more events follow its
// submission.
func echo(more ...domain.Event) given {
	return stream(catalog.Tasks.Kind, taskID, append([]domain.Event{submitted}, more...)...)
}

func TestTaskHandlers(t *testing.T) {
	submit := func(w *world) ([]domain.Event, error) {
		_, err := w.cmds.SubmitTask.Handle(w.ctx, commands.SubmitTask{TaskID: taskID, WorkspaceID: wsID, ConversationID: convID,
			MessageID: msgID, RequestedBy: bobID, Expert: "echo", Input: "hello", Priority: 3})
		return then(err, submitted)
	}
	start := func(worker string, retry bool, attempt int) func(w *world) ([]domain.Event, error) {
		return func(w *world) ([]domain.Event, error) {
			_, err := w.cmds.StartTask.Handle(w.ctx, commands.StartTask{TaskID: taskID, Worker: worker, Timeout: time.Minute, Retry: retry})
			return then(err, task.Started{Worker: worker, Attempt: attempt, Deadline: t0.Add(time.Minute)})
		}
	}
	progress := func(worker string) func(w *world) ([]domain.Event, error) {
		return func(w *world) ([]domain.Event, error) {
			_, err := w.cmds.ReportTaskProgress.Handle(w.ctx, commands.ReportTaskProgress{TaskID: taskID, Worker: worker, Progress: 50, Note: "half"})
			return then(err, task.Progressed{Progress: 50, Note: "half"})
		}
	}
	complete := func(w *world) ([]domain.Event, error) {
		_, err := w.cmds.CompleteTask.Handle(w.ctx, commands.CompleteTask{TaskID: taskID, Worker: "w1", Output: "ECHO: hello", ReplyMessageID: replyID})
		return then(err, completed)
	}
	fail := func(worker string) func(w *world) ([]domain.Event, error) {
		return func(w *world) ([]domain.Event, error) {
			_, err := w.cmds.FailTask.Handle(w.ctx, commands.FailTask{TaskID: taskID, Worker: worker, Reason: "boom"})
			return then(err, task.Failed{Reason: "boom", Attempts: 1})
		}
	}
	cancel := func(actor access.Actor) func(w *world) ([]domain.Event, error) {
		return func(w *world) ([]domain.Event, error) {
			_, err := w.cmds.CancelTask.Handle(w.ctx, commands.CancelTask{Actor: actor, TaskID: taskID})
			return then(err, task.Cancelled{Reason: task.ReasonCancelled})
		}
	}
	run(t, []handlerCase{
		// SubmitTask
		{name: "a task is submitted", when: submit},
		{name: "and only once", given: []given{echo()}, when: submit, code: domain.CodeConflict},
		{name: "an invalid task", when: func(w *world) ([]domain.Event, error) {
			_, err := w.cmds.SubmitTask.Handle(w.ctx, commands.SubmitTask{TaskID: taskID, WorkspaceID: wsID, ConversationID: convID,
				MessageID: msgID, RequestedBy: bobID, Expert: "two words", Priority: 9})
			return nil, err
		}, code: domain.CodeInvalid, fields: []string{"expert", "priority"}},
		// StartTask
		{name: "a worker claims it", given: []given{echo()}, when: start("w1", false, 1)},
		{name: "not while it runs for another", given: []given{echo(running)}, when: start("w2", false, 2), code: domain.CodeConflict},
		{name: "its worker retries it", given: []given{echo(running)}, when: start("w1", true, 2)},
		{name: "a missing task", when: start("w1", false, 1), code: domain.CodeNotFound},
		// ReportTaskProgress, CompleteTask, FailTask
		{name: "its worker reports progress", given: []given{echo(running)}, when: progress("w1")},
		{name: "another worker may not", given: []given{echo(running)}, when: progress("w2"), code: domain.CodeConflict},
		{name: "its worker completes it", given: []given{echo(running)}, when: complete},
		{name: "not once cancelled", given: []given{echo(running, task.Cancelled{Reason: "stop"})}, when: complete,
			code: domain.CodeConflict},
		{name: "its worker fails it", given: []given{echo(running)}, when: fail("w1")},
		{name: "not after it ended", given: []given{echo(running, completed)}, when: fail("w1"), code: domain.CodeConflict},
		// CancelTask
		{name: "an editor cancels it", given: []given{team(), echo()}, when: cancel(bob), actor: bobID},
		{name: "a viewer may not", given: []given{team(), echo()}, when: cancel(cy), code: domain.CodeForbidden},
		{name: "a stranger does not find it", given: []given{team(), echo()}, when: cancel(eve), code: domain.CodeNotFound},
		{name: "not after it ended", given: []given{team(), echo(running, completed)}, when: cancel(bob), code: domain.CodeConflict},
	})
}

func TestReplyAndRoutingHandlers(t *testing.T) {
	postReplyOf := func(cmd commands.PostReply) func(w *world) ([]domain.Event, error) {
		return func(w *world) ([]domain.Event, error) {
			r, err := w.cmds.PostReply.Handle(w.ctx, cmd)
			if r.AlreadyPosted {
				return nil, err
			}
			return then(err, reply)
		}
	}
	postReply := postReplyOf(commands.PostReply{TaskID: taskID})
	// The completion carried along, as a reactor or the worker has it: the
	// same answer without reading the task back.
	postCarried := postReplyOf(commands.PostReply{TaskID: taskID, Completed: &completed})
	// decide asks to delegate messageID to the echo expert; the answer
	// must be onRecord's decision, recorded by this command when fresh.
	decide := func(messageID string, onRecord conversation.RoutingDecided, fresh bool) func(w *world) ([]domain.Event, error) {
		return func(w *world) ([]domain.Event, error) {
			r, err := w.cmds.DecideRouting.Handle(w.ctx, commands.DecideRouting{ConversationID: convID, MessageID: messageID,
				Action: conversation.ActionDelegate, Expert: "echo", Priority: 3, Reason: "a greeting"})
			if err == nil && (r.Decision != onRecord || r.AlreadyDecided == fresh) {
				t.Errorf("decision %+v (already decided: %v), want %+v", r.Decision, r.AlreadyDecided, onRecord)
			}
			if !fresh {
				return nil, err
			}
			return then(err, onRecord)
		}
	}
	delegated := conversation.RoutingDecided{MessageID: msgID, Action: conversation.ActionDelegate, Expert: "echo", Priority: 3,
		Reason: "a greeting"}
	decided := conversation.RoutingDecided{MessageID: msgID, Action: conversation.ActionIgnore, Priority: 1}
	run(t, []handlerCase{
		// PostReply
		{name: "the answer of a completed task is posted", given: []given{team(), plans(), echo(running, completed)},
			when: postReply, actor: "expert:echo"},
		{name: "and only once", given: []given{team(), plans(reply), echo(running, completed)}, when: postReply},
		{name: "the completion carried along", given: []given{team(), plans(), echo(running, completed)},
			when: postCarried, actor: "expert:echo"},
		{name: "carried, only once", given: []given{team(), plans(reply), echo(running, completed)}, when: postCarried},
		{name: "carried, for a task never submitted", given: []given{team(), plans()}, when: postCarried, code: domain.CodeNotFound},
		{name: "not before it is completed", given: []given{team(), plans(), echo(running)}, when: postReply, code: domain.CodeConflict},
		{name: "not into an archived conversation", given: []given{team(), plans(conversation.Archived{}), echo(running, completed)},
			when: postReply, code: domain.CodeConflict},
		// DecideRouting
		{name: "the router decides on a message", given: []given{team(), plans()}, when: decide(msgID, delegated, true)},
		{name: "a decision on record is kept", given: []given{team(), plans(decided)}, when: decide(msgID, decided, false)},
		{name: "a message not in the conversation", given: []given{team(), plans()}, when: decide(missingID, delegated, true),
			code: domain.CodeNotFound},
		{name: "not in an archived conversation", given: []given{team(), plans(conversation.Archived{})},
			when: decide(msgID, delegated, true), code: domain.CodeConflict},
	})
}
