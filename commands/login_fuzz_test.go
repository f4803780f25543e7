package commands

import (
	"strings"
	"testing"

	"github.com/google/uuid"
)

// FuzzSessionOfRefreshToken checks the refresh-token parser: it never
// panics, and it accepts exactly "rt_<canonical session uuid>.<secret>"
// with a non-empty secret, returning that session id.
func FuzzSessionOfRefreshToken(f *testing.F) {
	id := "0b7c1c4e-7a6f-4c55-9b7e-1d2f3a4b5c6d"
	for _, s := range []string{"rt_" + id + ".c2VjcmV0", "rt_" + id + ".", "rt_" + id, "rt_.x", "rt_" + id + "..",
		"RT_" + id + ".x", "rt_{" + id + "}.x", "rt_" + strings.ReplaceAll(id, "-", "") + ".x", "", "rt_", "sk-abc.def"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		got, ok := sessionOfRefreshToken(token)
		if !ok {
			if got != "" {
				t.Fatalf("sessionOfRefreshToken(%q) refused but returned %q", token, got)
			}
			return
		}
		if len(got) != 36 {
			t.Fatalf("sessionOfRefreshToken(%q) = %q, not a 36-character id", token, got)
		}
		if _, err := uuid.Parse(got); err != nil {
			t.Fatalf("sessionOfRefreshToken(%q) = %q: %v", token, got, err)
		}
		secret, found := strings.CutPrefix(token, refreshPrefix+got+".")
		if !found || secret == "" {
			t.Fatalf("sessionOfRefreshToken(%q) = %q, but the token is not rt_<id>.<secret>", token, got)
		}
		if again, ok := sessionOfRefreshToken(refreshPrefix + got + "." + secret); !ok || again != got {
			t.Fatalf("rebuilt token of %q parses as %q, %v", token, again, ok)
		}
	})
}
