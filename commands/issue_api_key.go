package commands

import (
	"context"
	"time"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/apikey"
)

// APIKeyPrefix starts every API key, so that keys are told from access
// tokens at a glance (and by secret scanners).
const APIKeyPrefix = "sk-"

// Limits of API keys.
const (
	// MaxAPIKeyDays is the longest lifetime a key may be given, in days.
	MaxAPIKeyDays = 365
	// apiKeyDisplayBytes is how much of a key is kept to identify it in
	// lists: the prefix and 8 random characters, far too few to guess the
	// other 35.
	apiKeyDisplayBytes = len(APIKeyPrefix) + 8
)

// IssueAPIKey issues an API key to the actor's own account.
type IssueAPIKey struct {
	Actor  access.Actor
	Name   string
	Scopes []string
	// ExpiresInDays is the key's lifetime, 1–365 days; nil means the key
	// never expires.
	ExpiresInDays *int
}

// APIKeyResult is a newly issued key. Key is the secret: it is returned
// this once and stored nowhere, only its hash is.
type APIKeyResult struct {
	ID        string
	Key       string
	Name      string
	Scopes    []string
	Prefix    string
	CreatedAt time.Time
	ExpiresAt *time.Time
	Written
}

// IssueAPIKeyHandler handles IssueAPIKey.
type IssueAPIKeyHandler struct {
	repos   *repositories
	secrets SecretGenerator
	now     func() time.Time
}

// Handle issues the key. Only session credentials issue keys, and a key never
// exceeds its owner: the audit scope needs the admin or auditor role
// (access.CheckKeyScopes, CodeForbidden). Every invalid field is reported
// at once (CodeInvalid).
func (h *IssueAPIKeyHandler) Handle(ctx context.Context, cmd IssueAPIKey) (APIKeyResult, error) {
	if err := access.CheckKeyScopes(cmd.Actor, cmd.Scopes); err != nil {
		return APIKeyResult{}, err
	}
	var v domain.Validation
	var expiresAt *time.Time
	if cmd.ExpiresInDays != nil {
		days := *cmd.ExpiresInDays
		if days >= 1 && days <= MaxAPIKeyDays {
			t := h.now().Add(time.Duration(days) * 24 * time.Hour).UTC().Truncate(time.Second)
			expiresAt = &t
		} else {
			v.Add("expires_in_days", "must be from 1 to %d days, or null for a key that never expires", MaxAPIKeyDays)
		}
	}
	key, err := h.secrets.NewSecret(APIKeyPrefix)
	if err != nil {
		return APIKeyResult{}, err
	}
	id := newID()
	prefix := key[:apiKeyDisplayBytes]
	k, err := apikey.Issue(id, cmd.Actor.UserID, cmd.Name, cmd.Scopes, h.secrets.HashSecret(key), prefix, expiresAt)
	if err != nil || v.Err() != nil {
		return APIKeyResult{}, mergeInvalid(err, v.Err())
	}
	out := APIKeyResult{ID: id, Key: key, Name: k.Name(), Scopes: k.Scopes(), Prefix: prefix, ExpiresAt: k.ExpiresAt()}
	if out.Written, err = h.repos.apiKeys.create(withActor(ctx, cmd.Actor.UserID), id, k); err != nil {
		return APIKeyResult{}, err
	}
	if len(out.Events) > 0 {
		out.CreatedAt = out.Events[0].RecordedAt
	}
	return out, nil
}
