package cli

import (
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"testing"
)

// The server's collector goal is gcPercent, unless GOGC says otherwise.
func TestTuneGC(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	defer debug.SetGCPercent(debug.SetGCPercent(100))

	t.Setenv("GOGC", "150") // restored after the test, unset or not
	debug.SetGCPercent(150)
	tuneGC(logger)
	if got := debug.SetGCPercent(150); got != 150 {
		t.Errorf("with GOGC=150 the goal is %d, want 150", got)
	}

	if err := os.Unsetenv("GOGC"); err != nil {
		t.Fatal(err)
	}
	tuneGC(logger)
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Errorf("without GOGC the goal is %d, want %d", got, gcPercent)
	}
}
