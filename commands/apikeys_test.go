package commands_test

import (
	"testing"
	"time"

	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/apikey"
	"github.com/engramhq/engram/domain/catalog"
)

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
				expires = ptr(t0.AddDate(0, 0, *days))
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
		{name: "a key that expires, scopes sorted once each", when: issue(ada, readWrite, ptr(30)), actor: adaID},
		{name: "a key that never expires", when: issue(ada, readWrite, nil)},
		{name: "the audit scope needs an auditor", when: issue(ada, []string{apikey.ScopeAudit}, nil), code: domain.CodeForbidden},
		{name: "not with an API key", when: issue(bobKey, readWrite, nil), code: domain.CodeForbidden},
		{name: "every invalid field at once", when: issue(ada, []string{"admin"}, ptr(0)),
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
