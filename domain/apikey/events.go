package apikey

import (
	"encoding/json"
	"fmt"
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

// Revoked records that the key was revoked; it no longer authenticates.
type Revoked struct{}

// EventType returns "apikey.issued".
func (Issued) EventType() string { return EventIssued }

// EventType returns "apikey.revoked".
func (Revoked) EventType() string { return EventRevoked }

// Redacted returns the event without the key hash.
func (e Issued) Redacted() domain.Event { e.KeyHash = ""; return e }

var _ domain.Redactable = Issued{}

// Decode turns a stored event of the API key stream back into its event
// struct, with times in UTC. It fails with domain.ErrUnknownEvent for an
// unknown type or schema version; upcasters from older schema versions belong
// here.
func Decode(eventType string, schemaVersion int, data []byte) (domain.Event, error) {
	if schemaVersion != 1 {
		return nil, fmt.Errorf("decode %s v%d: %w", eventType, schemaVersion, domain.ErrUnknownEvent)
	}
	var (
		e   domain.Event
		err error
	)
	switch eventType {
	case EventIssued:
		var i Issued
		err = json.Unmarshal(data, &i)
		if i.ExpiresAt != nil {
			t := i.ExpiresAt.UTC()
			i.ExpiresAt = &t
		}
		e = i
	case EventRevoked:
		var r Revoked
		err = json.Unmarshal(data, &r)
		e = r
	default:
		return nil, fmt.Errorf("decode %s v%d: %w", eventType, schemaVersion, domain.ErrUnknownEvent)
	}
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", eventType, err)
	}
	return e, nil
}
