// Package apikey is the API key aggregate: a long-lived credential that a
// user issues for programs, limited to a set of scopes and optionally to a
// lifetime. Its stream is "apikey-<id>".
package apikey

import (
	"slices"
	"time"

	"github.com/engramhq/engram/domain"
)

// StreamType is the stream type of API key streams.
const StreamType = "apikey"

// StreamID returns the stream identifier of the API key with the given id.
func StreamID(id string) string { return domain.StreamID(StreamType, id) }

// Scopes an API key may carry.
const (
	ScopeRead  = "read"  // queries
	ScopeWrite = "write" // commands
	ScopeAudit = "audit" // the audit API (the user must also be an auditor or admin)
)

// Rule limits.
const (
	MaxNameRunes   = 100
	MaxPrefixBytes = 32
)

// APIKey is the API key aggregate. The zero value is an empty aggregate ready
// to have stored events applied.
type APIKey struct {
	domain.Root

	id        string
	userID    string
	name      string
	scopes    []string
	keyHash   string
	prefix    string
	expiresAt *time.Time
	revoked   bool
}

// Issue validates a new key and records apikey.issued. The name is 1–100
// characters; scopes is a non-empty subset of read, write and audit, stored
// de-duplicated and sorted; keyHash is the hash of the secret key and prefix
// its public beginning shown to the user (at most 32 bytes); expiresAt is nil
// for a key that never expires, and is stored in UTC otherwise.
func Issue(id, userID, name string, scopes []string, keyHash, prefix string, expiresAt *time.Time) (*APIKey, error) {
	var v domain.Validation
	v.ID("key_id", id)
	v.ID("user_id", userID)
	name = v.Text("name", name, 1, MaxNameRunes)
	scopes = checkScopes(&v, scopes)
	v.Secret("key_hash", keyHash)
	switch {
	case prefix == "":
		v.Add("prefix", "is required")
	case len(prefix) > MaxPrefixBytes:
		v.Add("prefix", "must be at most %d bytes", MaxPrefixBytes)
	default:
		v.ID("prefix", prefix)
	}
	var expires *time.Time
	if expiresAt != nil {
		v.Check(!expiresAt.IsZero(), "expires_at", "must be a time or null")
		t := expiresAt.UTC()
		expires = &t
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	k := &APIKey{}
	k.Record(k.Apply, Issued{KeyID: id, UserID: userID, Name: name, Scopes: scopes, KeyHash: keyHash, Prefix: prefix, ExpiresAt: expires})
	return k, nil
}

func checkScopes(v *domain.Validation, scopes []string) []string {
	if len(scopes) == 0 {
		v.Add("scopes", "must name at least one scope")
		return nil
	}
	out := make([]string, 0, len(scopes))
	for _, s := range scopes {
		switch s {
		case ScopeRead, ScopeWrite, ScopeAudit:
			out = append(out, s)
		default:
			v.Add("scopes", "unknown scope %q: must be one of: read, write, audit", s)
			return nil
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Revoke revokes the key. Revoking a revoked key records nothing and succeeds.
func (k *APIKey) Revoke() error {
	if k.revoked {
		return nil
	}
	k.Record(k.Apply, Revoked{})
	return nil
}

// Apply changes the state by one event; it is used both when recording new
// events and when loading stored ones, and it never fails.
func (k *APIKey) Apply(e domain.Event) {
	k.Applied()
	switch e := e.(type) {
	case Issued:
		k.id = e.KeyID
		k.userID = e.UserID
		k.name = e.Name
		k.scopes = slices.Clone(e.Scopes)
		k.keyHash = e.KeyHash
		k.prefix = e.Prefix
		k.expiresAt = e.ExpiresAt
	case Revoked:
		k.revoked = true
	}
}

// ID returns the key's identifier.
func (k *APIKey) ID() string { return k.id }

// UserID returns the user who owns the key.
func (k *APIKey) UserID() string { return k.userID }

// Name returns the key's name.
func (k *APIKey) Name() string { return k.name }

// Scopes returns a sorted copy of the key's scopes.
func (k *APIKey) Scopes() []string { return slices.Clone(k.scopes) }

// HasScope reports whether the key carries scope.
func (k *APIKey) HasScope(scope string) bool { return slices.Contains(k.scopes, scope) }

// KeyHash returns the hash of the secret key.
func (k *APIKey) KeyHash() string { return k.keyHash }

// Prefix returns the public beginning of the key, shown to identify it.
func (k *APIKey) Prefix() string { return k.prefix }

// ExpiresAt returns a copy of the expiry time in UTC, or nil when the key
// never expires.
func (k *APIKey) ExpiresAt() *time.Time {
	if k.expiresAt == nil {
		return nil
	}
	t := *k.expiresAt
	return &t
}

// Revoked reports whether the key was revoked.
func (k *APIKey) Revoked() bool { return k.revoked }

// Active reports whether the key authenticates at now: not revoked and not
// expired.
func (k *APIKey) Active(now time.Time) bool {
	return !k.revoked && (k.expiresAt == nil || now.Before(*k.expiresAt))
}
