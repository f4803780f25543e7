package redistest

import (
	"context"
	"strings"
	"testing"
)

// TestMain checks this package as it checks the others.
func TestMain(m *testing.M) { Main(m) }

func TestLeftoverPrefixesAreReportedAndRemoved(t *testing.T) {
	client, err := open(URL())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := client.Ping(t.Context()).Err(); err != nil {
		t.Skipf("Redis unreachable: %v", err)
	}
	prefix := NewPrefix() // no Clean: a test that forgot its prefix
	if err := client.Set(t.Context(), prefix+"forgotten", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	report := checkHandedOut()
	if !strings.Contains(report, "1 keys under "+prefix) {
		t.Errorf("report = %q, want it to name %s", report, prefix)
	}
	if n, err := client.Exists(context.Background(), prefix+"forgotten").Result(); err != nil || n != 0 {
		t.Errorf("the forgotten key is still there (%d, %v)", n, err)
	}
	if again := checkHandedOut(); again != "" {
		t.Errorf("second check = %q, want nothing left", again)
	}
}
