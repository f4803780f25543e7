package user

import (
	"encoding/json"
	"errors"
	"github.com/engramhq/engram/domain/domaintest"
	"slices"
	"strings"
	"testing"

	"github.com/engramhq/engram/domain"
)

const (
	uid  = "u-1"
	hash = "$argon2id$v=19$m=65536,t=1,p=2$c2FsdA$aGFzaA"
)

func registered() Registered {
	return Registered{UserID: uid, Email: "ada@example.com", DisplayName: "Ada", PasswordHash: hash, Role: RoleUser}
}

// load builds an aggregate from stored events, as a repository does.
func load(events ...domain.Event) *User { return domaintest.Load(&User{}, events...) }

// checkOutcome asserts the error code, the invalid fields and the recorded events.

func TestRegister(t *testing.T) {
	tests := []struct {
		name                      string
		id, email, display, phash string
		then                      []domain.Event
		code                      string
		fields                    []string
	}{
		{name: "ok", id: uid, email: "ada@example.com", display: "Ada", phash: hash,
			then: []domain.Event{registered()}},
		{name: "email normalized and display name trimmed", id: uid, email: "  Ada@Example.COM ", display: "  Ada \n", phash: hash,
			then: []domain.Event{registered()}},
		{name: "unicode display name of 100 runes", id: uid, email: "ada@example.com", display: strings.Repeat("é", 100), phash: hash,
			then: []domain.Event{Registered{UserID: uid, Email: "ada@example.com", DisplayName: strings.Repeat("é", 100), PasswordHash: hash, Role: RoleUser}}},
		{name: "everything missing", code: domain.CodeInvalid,
			fields: []string{"user_id", "email", "display_name", "password_hash"}},
		{name: "id with space", id: "u 1", email: "ada@example.com", display: "Ada", phash: hash,
			code: domain.CodeInvalid, fields: []string{"user_id"}},
		{name: "email with display name", id: uid, email: "Ada <ada@example.com>", display: "Ada", phash: hash,
			code: domain.CodeInvalid, fields: []string{"email"}},
		{name: "email without at", id: uid, email: "ada.example.com", display: "Ada", phash: hash,
			code: domain.CodeInvalid, fields: []string{"email"}},
		{name: "email with comment", id: uid, email: "ada@example.com (Ada)", display: "Ada", phash: hash,
			code: domain.CodeInvalid, fields: []string{"email"}},
		{name: "email too long", id: uid, email: strings.Repeat("a", 64) + "@" + strings.Repeat("b", 186) + ".com", display: "Ada", phash: hash,
			code: domain.CodeInvalid, fields: []string{"email"}},
		{name: "email with NUL", id: uid, email: "ada\x00@example.com", display: "Ada", phash: hash,
			code: domain.CodeInvalid, fields: []string{"email"}},
		{name: "display name blank", id: uid, email: "ada@example.com", display: "   ", phash: hash,
			code: domain.CodeInvalid, fields: []string{"display_name"}},
		{name: "display name 101 runes", id: uid, email: "ada@example.com", display: strings.Repeat("é", 101), phash: hash,
			code: domain.CodeInvalid, fields: []string{"display_name"}},
		{name: "display name with NUL", id: uid, email: "ada@example.com", display: "A\x00da", phash: hash,
			code: domain.CodeInvalid, fields: []string{"display_name"}},
		{name: "display name invalid UTF-8", id: uid, email: "ada@example.com", display: "Ada\xff", phash: hash,
			code: domain.CodeInvalid, fields: []string{"display_name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := Register(tt.id, tt.email, tt.display, tt.phash)
			var got []domain.Event
			if u != nil {
				got = u.Pending()
				if u.Version() != 1 || u.ID() != tt.id || !slices.Equal(u.Roles(), []string{RoleUser}) {
					t.Fatalf("version %d, id %q, roles %v", u.Version(), u.ID(), u.Roles())
				}
			} else if err == nil {
				t.Fatal("nil user without error")
			}
			domaintest.CheckOutcome(t, err, tt.code, tt.fields, got, tt.then)
		})
	}
	if email := "254@" + strings.Repeat("b", 246) + ".com"; len(email) != 254 {
		t.Fatalf("setup: %d", len(email))
	} else if _, err := Register(uid, email, "Ada", hash); err != nil {
		t.Fatalf("254-byte e-mail rejected: %v", err)
	}
}

func TestCommands(t *testing.T) {
	tests := []domaintest.Case[*User]{
		{Name: "update profile", Given: []domain.Event{registered()},
			When: func(u *User) error { return u.UpdateProfile(" Ada Lovelace ") },
			Then: []domain.Event{ProfileUpdated{DisplayName: "Ada Lovelace"}}},
		{Name: "update profile unchanged records nothing", Given: []domain.Event{registered(), ProfileUpdated{DisplayName: "Countess"}},
			When: func(u *User) error { return u.UpdateProfile("Countess ") }},
		{Name: "update profile empty", Given: []domain.Event{registered()},
			When: func(u *User) error { return u.UpdateProfile("") },
			Code: domain.CodeInvalid, Fields: []string{"display_name"}},
		{Name: "update profile too long", Given: []domain.Event{registered()},
			When: func(u *User) error { return u.UpdateProfile(strings.Repeat("x", 101)) },
			Code: domain.CodeInvalid, Fields: []string{"display_name"}},
		{Name: "change password", Given: []domain.Event{registered()},
			When: func(u *User) error { return u.ChangePassword("new-hash") },
			Then: []domain.Event{PasswordChanged{PasswordHash: "new-hash"}}},
		{Name: "change password empty", Given: []domain.Event{registered()},
			When: func(u *User) error { return u.ChangePassword("") },
			Code: domain.CodeInvalid, Fields: []string{"password_hash"}},
		{Name: "change password too long", Given: []domain.Event{registered()},
			When: func(u *User) error { return u.ChangePassword(strings.Repeat("h", domain.MaxSecretBytes+1)) },
			Code: domain.CodeInvalid, Fields: []string{"password_hash"}},
		{Name: "grant admin", Given: []domain.Event{registered()},
			When: func(u *User) error { return u.GrantRole(RoleAdmin) },
			Then: []domain.Event{RoleGranted{Role: RoleAdmin}}},
		{Name: "grant auditor", Given: []domain.Event{registered(), RoleGranted{Role: RoleAdmin}},
			When: func(u *User) error { return u.GrantRole(RoleAuditor) },
			Then: []domain.Event{RoleGranted{Role: RoleAuditor}}},
		{Name: "grant held role records nothing", Given: []domain.Event{registered(), RoleGranted{Role: RoleAdmin}},
			When: func(u *User) error { return u.GrantRole(RoleAdmin) }},
		{Name: "grant initial role records nothing", Given: []domain.Event{registered()},
			When: func(u *User) error { return u.GrantRole(RoleUser) }},
		{Name: "grant unknown role", Given: []domain.Event{registered()},
			When: func(u *User) error { return u.GrantRole("root") },
			Code: domain.CodeInvalid, Fields: []string{"role"}},
	}
	domaintest.Run(t, func() *User { return &User{} }, tests)
}

func TestState(t *testing.T) {
	u := load(registered(), ProfileUpdated{DisplayName: "Countess"}, PasswordChanged{PasswordHash: "h2"},
		RoleGranted{Role: RoleAuditor}, RoleGranted{Role: RoleAdmin})
	if u.ID() != uid || u.Email() != "ada@example.com" || u.DisplayName() != "Countess" || u.PasswordHash() != "h2" {
		t.Fatalf("state: %q %q %q %q", u.ID(), u.Email(), u.DisplayName(), u.PasswordHash())
	}
	if got := u.Roles(); !slices.Equal(got, []string{RoleAdmin, RoleAuditor, RoleUser}) {
		t.Fatalf("roles = %v", got)
	}
	u.Roles()[0] = "mutated"
	if !u.HasRole(RoleAdmin) || u.HasRole("mutated") || u.HasRole("root") {
		t.Fatal("HasRole or Roles copy wrong")
	}
	if u.Version() != 5 || len(u.Pending()) != 0 {
		t.Fatalf("version %d pending %d", u.Version(), len(u.Pending()))
	}
}

func TestValidatePassword(t *testing.T) {
	tests := []struct {
		pw string
		ok bool
	}{
		{"123456789", false},
		{"1234567890", true},
		{strings.Repeat("é", 10), true}, // 10 runes, 20 bytes
		{strings.Repeat("é", 9) + "a", true},
		{strings.Repeat("é", 9), false},
		{strings.Repeat("x", 1024), true},
		{strings.Repeat("x", 1025), false},
		{"", false},
	}
	for _, tt := range tests {
		err := ValidatePassword(tt.pw)
		if tt.ok != (err == nil) {
			t.Errorf("ValidatePassword(%d bytes) = %v, want ok=%v", len(tt.pw), err, tt.ok)
		}
		if err != nil {
			var de *domain.Error
			if !errors.As(err, &de) || de.Code != domain.CodeInvalid || len(de.Fields) != 1 || de.Fields[0].Field != "password" {
				t.Errorf("error = %#v", err)
			}
			if strings.Contains(err.Error(), tt.pw) && tt.pw != "" {
				t.Errorf("error repeats the password")
			}
		}
	}
}

func TestNormalizeEmail(t *testing.T) {
	if got := NormalizeEmail("  Ada@Example.COM\t"); got != "ada@example.com" {
		t.Fatalf("NormalizeEmail = %q", got)
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	events := []domain.Event{
		registered(),
		ProfileUpdated{DisplayName: "Countess"},
		PasswordChanged{PasswordHash: "h2"},
		RoleGranted{Role: RoleAdmin},
	}
	domaintest.RoundTrip(t, Decode, events...)
	data, _ := json.Marshal(registered())
	if !strings.Contains(string(data), `"password_hash":`) || !strings.Contains(string(data), `"display_name":"Ada"`) {
		t.Fatalf("snake_case JSON expected: %s", data)
	}
	domaintest.Unknown(t, Decode, EventRegistered)
	if _, err := Decode(EventRegistered, 1, []byte(`[`)); err == nil {
		t.Fatal("bad JSON decoded")
	}
}

func TestRedacted(t *testing.T) {
	for _, e := range []domain.Event{registered(), PasswordChanged{PasswordHash: hash}} {
		data, _ := json.Marshal(domain.Redact(e))
		if strings.Contains(string(data), hash) {
			t.Fatalf("%s leaks the hash: %s", e.EventType(), data)
		}
	}
	if r := domain.Redact(registered()).(Registered); r.Email != "ada@example.com" {
		t.Fatalf("redaction dropped more than the secret: %#v", r)
	}
}

func TestLoadFromStoredEvents(t *testing.T) {
	u, err := Register(uid, "ada@example.com", "Ada", hash)
	domaintest.Must(t, err)
	domaintest.Must(t, u.UpdateProfile("Countess"))
	domaintest.Must(t, u.ChangePassword("h2"))
	domaintest.Must(t, u.GrantRole(RoleAuditor))
	domaintest.Must(t, u.GrantRole(RoleAdmin))

	loaded := domaintest.Reload(t, u, &User{}, Decode)
	if loaded.Version() != 5 {
		t.Fatalf("loaded version %d, want 5", loaded.Version())
	}
	if loaded.Email() != u.Email() || loaded.DisplayName() != "Countess" || !slices.Equal(loaded.Roles(), u.Roles()) {
		t.Fatal("accessors differ")
	}
}

func TestStreamID(t *testing.T) { domaintest.StreamID(t, StreamID, StreamType) }
