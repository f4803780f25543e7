package eventstore_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/test/pgtest"
)

// instances opens n event stores on one database, each over a connection
// pool of its own, as n processes would.
func instances(t *testing.T, n int) []*eventstore.Store {
	t.Helper()
	u := pgtest.NewURL(t)
	stores := make([]*eventstore.Store, n)
	for i := range stores {
		db, err := sqlx.Open("postgres", eventstore.DSN(u))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		if stores[i], err = eventstore.New(db); err != nil {
			t.Fatal(err)
		}
	}
	return stores
}

// runLease starts s's read lease; it is given up when the returned stop is
// called or the test ends.
func runLease(t *testing.T, s *eventstore.Store) (*eventstore.ReadLease, func()) {
	t.Helper()
	l, err := s.NewReadLease(t.Context(), slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return l, stop
}

// leasedPair opens two instances on one database, the first running its
// read lease, once it holds it.
func leasedPair(t *testing.T) ([]*eventstore.Store, *eventstore.ReadLease, func()) {
	t.Helper()
	pgtest.SkipIfShort(t)
	s := instances(t, 2)
	lease, stop := runLease(t, s[0])
	eventually(t, 3*time.Second, "the only running instance did not take the lease", lease.Holds)
	return s, lease, stop
}

// eventually waits up to d for cond.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// While an instance trusts its lease, its Head is never behind an event
// committed before it was asked — even as another writer tries to append
// all along: that writer's appends are held back until the lease has
// lapsed (the holder sees the writer and stops renewing), then all go in.
func TestReadLeaseHeadIsNeverBehindTheLog(t *testing.T) {
	ctx := t.Context()
	s, lease, _ := leasedPair(t)
	holder, other := s[0], s[1]

	// The holder's own appends move the head at once.
	res, err := holder.Append(ctx, stream(uuid.NewString()), 0, one(), eventstore.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	if h, ok := lease.Head(); !ok || h != res.Events[0].Cursor() {
		t.Fatalf("Head after an own append = %v, %v; want %v, true", h, ok, res.Events[0].Cursor())
	}

	// Another writer appends 20 events, one after the other.
	written := make(chan error, 1)
	start := time.Now()
	go func() {
		for range 20 {
			if _, err := other.Append(ctx, stream(uuid.NewString()), 0, one(), eventstore.Metadata{}); err != nil {
				written <- err
				return
			}
		}
		written <- nil
	}()
	checked, trusted := 0, 0
	for {
		select {
		case err := <-written:
			if err != nil {
				t.Fatalf("the other writer's append failed: %v", err)
			}
			if waited := time.Since(start); waited > eventstore.LeaseTerm+2*eventstore.LeaseRenewal+time.Second {
				t.Errorf("the other writer waited %s for the lease to lapse", waited)
			}
			if lease.Holds() {
				t.Error("the lease is still trusted while another writer runs")
			}
			if checked == 0 || trusted == 0 {
				t.Fatalf("checked %d heads, %d while trusted: the test proved nothing", checked, trusted)
			}
			return
		default:
		}
		tip, err := holder.Tip(ctx) // committed before Head is asked
		if err != nil {
			t.Fatal(err)
		}
		if h, ok := lease.Head(); ok {
			trusted++
			if tip.After(h) {
				t.Fatalf("Head %v is behind the tip %v read before it", h, tip)
			}
		}
		checked++
	}
}

// A holder that stops gives the lease up: the next writer does not wait.
func TestReadLeaseGivenUpOnStop(t *testing.T) {
	ctx := t.Context()
	s, lease, stop := leasedPair(t)
	stop()
	if lease.Holds() {
		t.Fatal("a stopped lease is still trusted")
	}
	start := time.Now()
	if _, err := s[1].Append(ctx, stream(uuid.NewString()), 0, one(), eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited > eventstore.LeaseTerm/2 {
		t.Fatalf("an append after the holder stopped waited %s", waited)
	}
}

// Two instances running at once: neither keeps the lease, and their
// appends — grouped or alone — all go in.
func TestReadLeaseNotKeptWhileTwoInstancesRun(t *testing.T) {
	ctx := t.Context()
	s, a, _ := leasedPair(t)
	b, _ := runLease(t, s[1])
	eventually(t, eventstore.LeaseTerm+2*eventstore.LeaseRenewal, "the lease is still trusted with two instances running", func() bool {
		return !a.Holds() && !b.Holds()
	})
	for range 3 * int(eventstore.LeaseTerm/eventstore.LeaseRenewal) {
		if a.Holds() || b.Holds() {
			t.Fatal("an instance took the lease while another runs")
		}
		for _, st := range s {
			if _, err := st.Append(ctx, stream(uuid.NewString()), 0, one(), eventstore.Metadata{}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(eventstore.LeaseRenewal / 3)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
