package eventstore

import (
	"strings"
	"testing"
)

func TestDSN(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"postgres://127.0.0.1:5432/engram?sslmode=disable", "postgres://127.0.0.1:5432/engram?application_name=engram-x1&binary_parameters=yes&sslmode=disable"},
		{"postgres://u:p@db/engram", "postgres://u:p@db/engram?application_name=engram-x1&binary_parameters=yes"},
		{"postgres://db/engram?binary_parameters=no", "postgres://db/engram?application_name=engram-x1&binary_parameters=no"},
		{"postgres://db/engram?application_name=api", "postgres://db/engram?application_name=api-x1&binary_parameters=yes"},
		{"host=db dbname=engram", "host=db dbname=engram binary_parameters=yes application_name=engram-x1"},
		{"host=db application_name=api binary_parameters=no", "host=db application_name=api binary_parameters=no application_name=api-x1"},
	} {
		if got := dsn(c.in, "x1"); got != c.want {
			t.Errorf("dsn(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestDSNNamesEveryPoolApart(t *testing.T) {
	a, b := DSN("postgres://db/engram"), DSN("postgres://db/engram")
	if a == b || !strings.Contains(a, "application_name=engram-") {
		t.Fatalf("two pools share a name, or have none: %q, %q", a, b)
	}
}
