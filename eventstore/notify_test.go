package eventstore_test

import (
	"database/sql"
	"log/slog"
	"testing"
	"time"

	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/test/pgtest"
)

// runNotifier starts a notifier on the database at u until the test ends,
// and returns it with a subscription to its wake-ups.
func runNotifier(t *testing.T, u string) (*eventstore.Notifier, <-chan struct{}) {
	t.Helper()
	db, err := sql.Open("postgres", u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	n := eventstore.NewNotifier(db, u, slog.New(slog.DiscardHandler))
	woken, stop := n.Subscribe()
	t.Cleanup(stop)
	ctx := t.Context()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = n.Run(ctx)
	}()
	t.Cleanup(func() { <-done })
	return n, woken
}

// wokenWithin reports whether a wake-up arrives within d.
func wokenWithin(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

// An append wakes the readers of its own process at once and those of the
// other processes through NOTIFY; a process's own NOTIFY, coming back to
// it, wakes nobody: its readers have been woken already.
func TestNotifierWakesOtherProcessesNotItself(t *testing.T) {
	u := pgtest.NewURL(t)
	a, wokenA := runNotifier(t, u)
	_, wokenB := runNotifier(t, u)
	// The listeners connect in the background: append until B hears one.
	heard := false
	for deadline := time.Now().Add(10 * time.Second); !heard && time.Now().Before(deadline); {
		a.Appended(eventstore.AppendResult{})
		if !wokenWithin(wokenA, time.Second) {
			t.Fatal("an append did not wake its own process's readers")
		}
		heard = wokenWithin(wokenB, 200*time.Millisecond)
	}
	if !heard {
		t.Fatal("the other process was never woken")
	}
	// A's NOTIFY reached B, so it reached A too by now or shortly: it must
	// not wake A.
	if wokenWithin(wokenA, 500*time.Millisecond) {
		t.Error("a process was woken by its own notification")
	}
}
