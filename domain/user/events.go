package user

import (
	"github.com/engramhq/engram/domain"
)

// Event type names of the user stream; they never change once stored.
const (
	EventRegistered      = "user.registered"
	EventProfileUpdated  = "user.profile_updated"
	EventPasswordChanged = "user.password_changed"
	EventRoleGranted     = "user.role_granted"
)

// Registered records that a user account was created.
type Registered struct {
	UserID       string `json:"user_id"`
	Email        string `json:"email"`
	DisplayName  string `json:"display_name"`
	PasswordHash string `json:"password_hash"`
	Role         string `json:"role"`
}

// EventType returns "user.registered".
func (Registered) EventType() string { return EventRegistered }

// Redacted returns the event without the password hash.
func (e Registered) Redacted() domain.Event { e.PasswordHash = ""; return e }

// ProfileUpdated records a new display name.
type ProfileUpdated struct {
	DisplayName string `json:"display_name"`
}

// EventType returns "user.profile_updated".
func (ProfileUpdated) EventType() string { return EventProfileUpdated }

// PasswordChanged records a new password hash.
type PasswordChanged struct {
	PasswordHash string `json:"password_hash"`
}

// EventType returns "user.password_changed".
func (PasswordChanged) EventType() string { return EventPasswordChanged }

// Redacted returns the event without the password hash.
func (e PasswordChanged) Redacted() domain.Event { e.PasswordHash = ""; return e }

// RoleGranted records that the user received a role.
type RoleGranted struct {
	Role string `json:"role"`
}

// EventType returns "user.role_granted".
func (RoleGranted) EventType() string { return EventRoleGranted }

var (
	_ domain.Redactable = Registered{}
	_ domain.Redactable = PasswordChanged{}
)

// decoder reads the stored events of user streams.
var decoder = domain.Decoder{
	EventRegistered:      domain.As[Registered](),
	EventProfileUpdated:  domain.As[ProfileUpdated](),
	EventPasswordChanged: domain.As[PasswordChanged](),
	EventRoleGranted:     domain.As[RoleGranted](),
}

// Decode turns a stored event of the user stream back into its event struct.
// It fails with domain.ErrUnknownEvent for an unknown type or schema version;
// upcasters from older schema versions belong in its table.
func Decode(eventType string, schemaVersion int, data []byte) (domain.Event, error) {
	return decoder.Decode(eventType, schemaVersion, data)
}
