package projections_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/projections"
	"github.com/engramhq/engram/projections/projectionstest"
)

// A read-your-writes waiter learns from this instance's batches (Moved)
// without asking the database again, and from the database what another
// instance or a rebuild moved.
func TestWaitForHearsLocalBatchesAndAsksForTheRest(t *testing.T) {
	ctx := context.Background()
	log := projectionstest.New(t)
	for i := range 2 {
		if _, err := log.Store.Append(ctx, eventstore.Stream{ID: fmt.Sprintf("wait-%d", i), Type: "test"}, 0,
			[]eventstore.NewEvent{{ID: fmt.Sprintf("00000000-0000-7000-8000-00000000010%d", i), Type: "test.happened",
				Data: json.RawMessage(`{}`)}}, eventstore.Metadata{}); err != nil {
			t.Fatal(err)
		}
	}
	last, err := log.Store.LastPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	at, err := log.Store.CursorOf(ctx, last)
	if err != nil {
		t.Fatal(err)
	}
	setCheckpoint := func(name string, c eventstore.Cursor) {
		t.Helper()
		if _, err := log.DB.ExecContext(ctx, `INSERT INTO consumer_offsets (consumer_group, offset_acked, last_processed_transaction_id)
			VALUES ($1, $2, $3::text::xid8) ON CONFLICT (consumer_group) DO UPDATE
			SET offset_acked = excluded.offset_acked, last_processed_transaction_id = excluded.last_processed_transaction_id`,
			name, c.Position, strconv.FormatUint(c.TxID, 10)); err != nil {
			t.Fatal(err)
		}
	}
	wait := func(cp *projections.Checkpoints, position int64, names ...string) <-chan error {
		done := make(chan error, 1)
		go func() { done <- cp.WaitFor(ctx, position, names...) }()
		return done
	}
	pending := func(done <-chan error) {
		t.Helper()
		select {
		case err := <-done:
			t.Fatalf("the waiter returned %v before its projectors reached the position", err)
		case <-time.After(100 * time.Millisecond):
		}
	}

	t.Run("a position the log does not hold", func(t *testing.T) {
		err := projections.NewCheckpoints(log.DB.DB, time.Second).WaitFor(ctx, last+100, "local")
		if !errors.Is(err, projections.ErrUnknownPosition) {
			t.Fatalf("err = %v, want ErrUnknownPosition", err)
		}
	})

	t.Run("a local batch answers without the database", func(t *testing.T) {
		// The database holds no checkpoint for "local": only the report of
		// the batch can end the wait.
		cp := projections.NewCheckpoints(log.DB.DB, 10*time.Second)
		done := wait(cp, last, "local")
		pending(done)
		cp.Moved([]string{"local"}, eventstore.Cursor{TxID: at.TxID, Position: at.Position - 1})
		pending(done) // a batch short of the event does not end it
		cp.Moved([]string{"local"}, at)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a projector moved elsewhere is asked for, while local batches move others", func(t *testing.T) {
		setCheckpoint("busy", at) // committed by the batches below
		cp := projections.NewCheckpoints(log.DB.DB, 10*time.Second)
		done := wait(cp, last, "busy", "elsewhere", "busy")
		stop := make(chan struct{})
		defer close(stop)
		go func() { // this instance's batches keep coming, for "busy" only
			for {
				select {
				case <-stop:
					return
				case <-time.After(2 * time.Millisecond):
					cp.Moved([]string{"busy"}, at)
				}
			}
		}()
		pending(done) // "elsewhere" has not moved
		setCheckpoint("elsewhere", at)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a projector local batches advance is left to them until they stop", func(t *testing.T) {
		short := eventstore.Cursor{TxID: at.TxID, Position: at.Position - 1}
		// batches reports, every 2 ms, a batch of this instance that moved
		// "advanced" to the last cursor sent on the channel it returns,
		// until that channel is closed.
		batches := func(cp *projections.Checkpoints) (chan<- eventstore.Cursor, <-chan struct{}) {
			reports, stopped := make(chan eventstore.Cursor), make(chan struct{})
			go func() {
				defer close(stopped)
				to := short
				for {
					select {
					case c, ok := <-reports:
						if !ok {
							return
						}
						to = c
					case <-time.After(2 * time.Millisecond):
						cp.Moved([]string{"advanced"}, to)
					}
				}
			}()
			return reports, stopped
		}

		setCheckpoint("advanced", short)
		cp := projections.NewCheckpoints(log.DB.DB, 10*time.Second)
		reports, stopped := batches(cp)
		done := wait(cp, last, "advanced")
		pending(done)
		// The database says the projector is there, but its batches run
		// here: the waiter listens to them rather than asking again.
		setCheckpoint("advanced", at)
		pending(done)
		reports <- at
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		close(reports)
		<-stopped

		// Once the batches stop (the lease went elsewhere), the database is
		// asked again.
		setCheckpoint("advanced", short)
		cp = projections.NewCheckpoints(log.DB.DB, 10*time.Second)
		reports, stopped = batches(cp)
		done = wait(cp, last, "advanced")
		pending(done)
		close(reports)
		<-stopped
		setCheckpoint("advanced", at)
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the waiter did not ask the database again once the local batches had stopped")
		}
	})

	t.Run("the database answers at once when the projectors are there", func(t *testing.T) {
		setCheckpoint("there", at)
		if err := projections.NewCheckpoints(log.DB.DB, time.Second).WaitFor(ctx, last, "there", "elsewhere"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a projector that does not reach the position times out", func(t *testing.T) {
		setCheckpoint("behind", eventstore.Cursor{TxID: at.TxID, Position: at.Position - 1})
		err := projections.NewCheckpoints(log.DB.DB, 200*time.Millisecond).WaitFor(ctx, last, "there", "behind")
		if !errors.Is(err, projections.ErrNotCaughtUp) {
			t.Fatalf("err = %v, want ErrNotCaughtUp", err)
		}
	})
}
