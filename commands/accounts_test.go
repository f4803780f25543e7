package commands_test

import (
	"testing"
	"time"

	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/catalog"
	"github.com/engramhq/engram/domain/session"
	"github.com/engramhq/engram/domain/user"
	"github.com/engramhq/engram/eventstore"
)

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
