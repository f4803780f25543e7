// Package user is the user aggregate: an account with an e-mail address, a
// display name, a password hash and a set of roles. Its stream is "user-<id>".
package user

import (
	"net/mail"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/engramhq/engram/domain"
)

// StreamType is the stream type of user streams.
const StreamType = "user"

// StreamID returns the stream identifier of the user with the given id.
func StreamID(id string) string { return domain.StreamID(StreamType, id) }

// Roles a user may hold.
const (
	RoleUser    = "user"    // every registered user
	RoleAdmin   = "admin"   // administers Engram
	RoleAuditor = "auditor" // reads, verifies and replays the event log
)

// Rule limits.
const (
	MaxEmailBytes       = 254
	MaxDisplayNameRunes = 100
	MinPasswordRunes    = 10
	MaxPasswordBytes    = 1024
)

// User is the user aggregate. The zero value is an empty aggregate ready to
// have stored events applied.
type User struct {
	domain.Root

	id           string
	email        string
	displayName  string
	passwordHash string
	roles        map[string]bool
}

// NormalizeEmail returns email trimmed and lower-cased, the form in which
// e-mail addresses are stored and compared.
func NormalizeEmail(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}

// ValidatePassword checks a plain-text password before it is hashed: at
// least MinPasswordRunes characters and at most MaxPasswordBytes bytes. It
// returns a CodeInvalid *domain.Error on the field "password".
func ValidatePassword(pw string) error {
	var v domain.Validation
	switch {
	case utf8.RuneCountInString(pw) < MinPasswordRunes:
		v.Add("password", "must be at least %d characters", MinPasswordRunes)
	case len(pw) > MaxPasswordBytes:
		v.Add("password", "must be at most %d bytes", MaxPasswordBytes)
	}
	return v.Err()
}

// Register validates a new account and records user.registered with the
// initial role "user". The e-mail address is normalized (NormalizeEmail) and
// must be a bare address (no display name) of at most 254 bytes; the display
// name is 1–100 characters; passwordHash is the already hashed password.
func Register(id, email, displayName, passwordHash string) (*User, error) {
	var v domain.Validation
	v.ID("user_id", id)
	email = checkEmail(&v, email)
	displayName = v.Text("display_name", displayName, 1, MaxDisplayNameRunes)
	v.Secret("password_hash", passwordHash)
	if err := v.Err(); err != nil {
		return nil, err
	}
	u := &User{}
	u.Record(u.Apply, Registered{
		UserID:       id,
		Email:        email,
		DisplayName:  displayName,
		PasswordHash: passwordHash,
		Role:         RoleUser,
	})
	return u, nil
}

func checkEmail(v *domain.Validation, email string) string {
	email = NormalizeEmail(email)
	switch {
	case email == "":
		v.Add("email", "is required")
	case len(email) > MaxEmailBytes:
		v.Add("email", "must be at most %d bytes", MaxEmailBytes)
	case domain.TextProblem(email) != "":
		v.Add("email", "%s", domain.TextProblem(email))
	default:
		addr, err := mail.ParseAddress(email)
		if err != nil || addr.Name != "" || addr.Address != email {
			v.Add("email", "must be a valid e-mail address")
		}
	}
	return email
}

// UpdateProfile changes the display name (1–100 characters). An unchanged
// name records nothing.
func (u *User) UpdateProfile(displayName string) error {
	var v domain.Validation
	displayName = v.Text("display_name", displayName, 1, MaxDisplayNameRunes)
	if err := v.Err(); err != nil {
		return err
	}
	if displayName == u.displayName {
		return nil
	}
	u.Record(u.Apply, ProfileUpdated{DisplayName: displayName})
	return nil
}

// ChangePassword records a new password hash.
func (u *User) ChangePassword(passwordHash string) error {
	var v domain.Validation
	v.Secret("password_hash", passwordHash)
	if err := v.Err(); err != nil {
		return err
	}
	u.Record(u.Apply, PasswordChanged{PasswordHash: passwordHash})
	return nil
}

// GrantRole gives the user one of the roles user, admin or auditor. A role
// already held records nothing.
func (u *User) GrantRole(role string) error {
	var v domain.Validation
	v.OneOf("role", role, RoleUser, RoleAdmin, RoleAuditor)
	if err := v.Err(); err != nil {
		return err
	}
	if u.roles[role] {
		return nil
	}
	u.Record(u.Apply, RoleGranted{Role: role})
	return nil
}

// Apply changes the state by one event; it is used both when recording new
// events and when loading stored ones, and it never fails.
func (u *User) Apply(e domain.Event) {
	u.Applied()
	switch e := e.(type) {
	case Registered:
		u.id = e.UserID
		u.email = e.Email
		u.displayName = e.DisplayName
		u.passwordHash = e.PasswordHash
		u.roles = map[string]bool{e.Role: true}
	case ProfileUpdated:
		u.displayName = e.DisplayName
	case PasswordChanged:
		u.passwordHash = e.PasswordHash
	case RoleGranted:
		if u.roles == nil {
			u.roles = map[string]bool{}
		}
		u.roles[e.Role] = true
	}
}

// ID returns the user's identifier.
func (u *User) ID() string { return u.id }

// Email returns the normalized e-mail address.
func (u *User) Email() string { return u.email }

// DisplayName returns the display name.
func (u *User) DisplayName() string { return u.displayName }

// PasswordHash returns the current password hash.
func (u *User) PasswordHash() string { return u.passwordHash }

// Roles returns the roles held, sorted.
func (u *User) Roles() []string {
	roles := make([]string, 0, len(u.roles))
	for r := range u.roles {
		roles = append(roles, r)
	}
	slices.Sort(roles)
	return roles
}

// HasRole reports whether the user holds role.
func (u *User) HasRole(role string) bool { return u.roles[role] }
