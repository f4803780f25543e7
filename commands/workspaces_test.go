package commands_test

import (
	"testing"

	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/workspace"
)

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
				Name: ptr("Team"), Description: ptr("What we do"), IfMatch: ifMatch})
			return then(err, workspace.Updated{Description: ptr("What we do")})
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
		{name: "If-Match of the current version", given: []given{team()}, when: update(ada, ptr(3))},
		{name: "If-Match of an older version", given: []given{team()}, when: update(ada, ptr(2)), err: commands.ErrPreconditionFailed},
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
