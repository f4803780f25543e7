package session

import (
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

// EventType returns "session.started".
func (Started) EventType() string { return EventStarted }

// Redacted returns the event without the refresh token hash.
func (e Started) Redacted() domain.Event { e.RefreshTokenHash = ""; return e }

// Refreshed records that the refresh token was rotated: the previous one is
// spent and the session now expires at ExpiresAt.
type Refreshed struct {
	RefreshTokenHash string    `json:"refresh_token_hash"`
	ExpiresAt        time.Time `json:"expires_at"`
}

// EventType returns "session.refreshed".
func (Refreshed) EventType() string { return EventRefreshed }

// Redacted returns the event without the refresh token hash.
func (e Refreshed) Redacted() domain.Event { e.RefreshTokenHash = ""; return e }

// Revoked records that the session was ended, and why.
type Revoked struct {
	Reason string `json:"reason"`
}

// EventType returns "session.revoked".
func (Revoked) EventType() string { return EventRevoked }

var (
	_ domain.Redactable = Started{}
	_ domain.Redactable = Refreshed{}
)

// decoder reads the stored events of session streams.
var decoder = domain.Decoder{
	EventStarted:   domain.As(func(e *Started) error { e.ExpiresAt = e.ExpiresAt.UTC(); return nil }),
	EventRefreshed: domain.As(func(e *Refreshed) error { e.ExpiresAt = e.ExpiresAt.UTC(); return nil }),
	EventRevoked:   domain.As[Revoked](),
}

// Decode turns a stored event of the session stream back into its event
// struct, with times in UTC. It fails with domain.ErrUnknownEvent for an
// unknown type or schema version; upcasters from older schema versions belong
// in its table.
func Decode(eventType string, schemaVersion int, data []byte) (domain.Event, error) {
	return decoder.Decode(eventType, schemaVersion, data)
}
