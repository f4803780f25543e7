package session

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/engramhq/engram/domain"
)

// Event type names of the session stream; they never change once stored.
const (
	EventStarted   = "session.started"
	EventRefreshed = "session.refreshed"
	EventRevoked   = "session.revoked"
)

// Started records a login: a new session with its first refresh token.
type Started struct {
	SessionID        string    `json:"session_id"`
	UserID           string    `json:"user_id"`
	RefreshTokenHash string    `json:"refresh_token_hash"`
	UserAgent        string    `json:"user_agent"`
	IP               string    `json:"ip"`
	ExpiresAt        time.Time `json:"expires_at"`
}

// Refreshed records that the refresh token was rotated: the previous one is
// spent and the session now expires at ExpiresAt.
type Refreshed struct {
	RefreshTokenHash string    `json:"refresh_token_hash"`
	ExpiresAt        time.Time `json:"expires_at"`
}

// Revoked records that the session was ended, and why.
type Revoked struct {
	Reason string `json:"reason"`
}

// EventType returns "session.started".
func (Started) EventType() string { return EventStarted }

// EventType returns "session.refreshed".
func (Refreshed) EventType() string { return EventRefreshed }

// EventType returns "session.revoked".
func (Revoked) EventType() string { return EventRevoked }

// Redacted returns the event without the refresh token hash.
func (e Started) Redacted() domain.Event { e.RefreshTokenHash = ""; return e }

// Redacted returns the event without the refresh token hash.
func (e Refreshed) Redacted() domain.Event { e.RefreshTokenHash = ""; return e }

var (
	_ domain.Redactable = Started{}
	_ domain.Redactable = Refreshed{}
)

// Decode turns a stored event of the session stream back into its event
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
	case EventStarted:
		var s Started
		err = json.Unmarshal(data, &s)
		s.ExpiresAt = s.ExpiresAt.UTC()
		e = s
	case EventRefreshed:
		var r Refreshed
		err = json.Unmarshal(data, &r)
		r.ExpiresAt = r.ExpiresAt.UTC()
		e = r
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
