package user

import (
	"encoding/json"
	"fmt"

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

// ProfileUpdated records a new display name.
type ProfileUpdated struct {
	DisplayName string `json:"display_name"`
}

// PasswordChanged records a new password hash.
type PasswordChanged struct {
	PasswordHash string `json:"password_hash"`
}

// RoleGranted records that the user received a role.
type RoleGranted struct {
	Role string `json:"role"`
}

// EventType returns "user.registered".
func (Registered) EventType() string { return EventRegistered }

// EventType returns "user.profile_updated".
func (ProfileUpdated) EventType() string { return EventProfileUpdated }

// EventType returns "user.password_changed".
func (PasswordChanged) EventType() string { return EventPasswordChanged }

// EventType returns "user.role_granted".
func (RoleGranted) EventType() string { return EventRoleGranted }

// Redacted returns the event without the password hash.
func (e Registered) Redacted() domain.Event { e.PasswordHash = ""; return e }

// Redacted returns the event without the password hash.
func (e PasswordChanged) Redacted() domain.Event { e.PasswordHash = ""; return e }

var (
	_ domain.Redactable = Registered{}
	_ domain.Redactable = PasswordChanged{}
)

// Decode turns a stored event of the user stream back into its event struct.
// It fails with domain.ErrUnknownEvent for an unknown type or schema version;
// upcasters from older schema versions belong here.
func Decode(eventType string, schemaVersion int, data []byte) (domain.Event, error) {
	if schemaVersion != 1 {
		return nil, fmt.Errorf("decode %s v%d: %w", eventType, schemaVersion, domain.ErrUnknownEvent)
	}
	switch eventType {
	case EventRegistered:
		return decode[Registered](eventType, data)
	case EventProfileUpdated:
		return decode[ProfileUpdated](eventType, data)
	case EventPasswordChanged:
		return decode[PasswordChanged](eventType, data)
	case EventRoleGranted:
		return decode[RoleGranted](eventType, data)
	}
	return nil, fmt.Errorf("decode %s v%d: %w", eventType, schemaVersion, domain.ErrUnknownEvent)
}

func decode[E domain.Event](eventType string, data []byte) (domain.Event, error) {
	var e E
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("decode %s: %w", eventType, err)
	}
	return e, nil
}
