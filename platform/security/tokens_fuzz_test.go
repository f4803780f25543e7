package security_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/engramhq/engram/platform/security"
)

// FuzzTokensParse checks that Parse never panics, that every refusal wraps
// ErrInvalidToken, and that whatever it accepts carries exactly the claims
// of a token it issued: a changed payload never verifies.
func FuzzTokensParse(f *testing.F) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	tokens, err := security.NewTokens([]byte("fuzz-secret-0123456789abcdef0123"), "engram", "engram-api", 15*time.Minute, clock)
	if err != nil {
		f.Fatal(err)
	}
	other, err := security.NewTokens([]byte("another-secret-0123456789abcdef"), "engram", "engram-api", 15*time.Minute, clock)
	if err != nil {
		f.Fatal(err)
	}
	good, _, err := tokens.Issue("user-1", "session-1", []string{"admin"})
	if err != nil {
		f.Fatal(err)
	}
	forged, _, err := other.Issue("user-1", "session-1", nil)
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(good, ".")
	for _, s := range []string{good, forged, "", ".", "..", "a.b.c", good + "x", parts[0] + "." + parts[1] + ".",
		"eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + ".", strings.Repeat("eyJ", 1000) + "." + parts[1] + "." + parts[2]} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		c, err := tokens.Parse(token)
		if err != nil {
			if !errors.Is(err, security.ErrInvalidToken) {
				t.Fatalf("Parse(%q) error %v does not wrap ErrInvalidToken", token, err)
			}
			if c.Subject != "" || c.SessionID != "" || c.Roles != nil {
				t.Fatalf("Parse(%q) refused but returned claims %+v", token, c)
			}
			return
		}
		if c.Subject != "user-1" || c.SessionID != "session-1" || !slices.Equal(c.Roles, []string{"admin"}) {
			t.Fatalf("Parse(%q) accepted claims %+v that were never issued", token, c)
		}
		if !c.ExpiresAt.Equal(now.Add(15 * time.Minute)) {
			t.Fatalf("Parse(%q) accepted expiry %v", token, c.ExpiresAt)
		}
	})
}
