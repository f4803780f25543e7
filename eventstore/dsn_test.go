package eventstore_test

import (
	"testing"

	"github.com/engramhq/engram/eventstore"
)

func TestDSN(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"postgres://127.0.0.1:5432/engram?sslmode=disable", "postgres://127.0.0.1:5432/engram?binary_parameters=yes&sslmode=disable"},
		{"postgres://u:p@db/engram", "postgres://u:p@db/engram?binary_parameters=yes"},
		{"postgres://db/engram?binary_parameters=no", "postgres://db/engram?binary_parameters=no"},
		{"host=db dbname=engram", "host=db dbname=engram binary_parameters=yes"},
	} {
		if got := eventstore.DSN(c.in); got != c.want {
			t.Errorf("DSN(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
