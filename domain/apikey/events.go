package apikey

import (
	"time"

	"github.com/engramhq/engram/domain"
)

// Event type names of the API key stream; they never change once stored.
const (
	EventIssued  = "apikey.issued"
	EventRevoked = "apikey.revoked"
)

// Issued records a new API key. Only the key's hash and its display prefix
// are recorded, never the key. ExpiresAt is null for a key that never expires.
type Issued struct {
	KeyID     string     `json:"key_id"`
	UserID    string     `json:"user_id"`
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	KeyHash   string     `json:"key_hash"`
	Prefix    string     `json:"prefix"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// EventType returns "apikey.issued".
func (Issued) EventType() string { return EventIssued }

// Redacted returns the event without the key hash.
func (e Issued) Redacted() domain.Event { e.KeyHash = ""; return e }

// Revoked records that the key was revoked; it no longer authenticates.
type Revoked struct{}

// EventType returns "apikey.revoked".
func (Revoked) EventType() string { return EventRevoked }

var _ domain.Redactable = Issued{}

// decoder reads the stored events of API key streams.
var decoder = domain.Decoder{
	EventIssued:  domain.As(func(e *Issued) error { e.ExpiresAt = domain.UTC(e.ExpiresAt); return nil }),
	EventRevoked: domain.As[Revoked](),
}

// Decode turns a stored event of the API key stream back into its event
// struct, with times in UTC. It fails with domain.ErrUnknownEvent for an
// unknown type or schema version; upcasters from older schema versions belong
// in its table.
func Decode(eventType string, schemaVersion int, data []byte) (domain.Event, error) {
	return decoder.Decode(eventType, schemaVersion, data)
}
