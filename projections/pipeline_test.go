package projections_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jmoiron/sqlx"

	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/projections"
	"github.com/engramhq/engram/projections/projectionstest"
)

// runProjectors runs what serve runs for the projectors: a tail of the log
// feeding a pipeline that queues events for an agent of ps. It returns a
// function that stops it all.
func runProjectors(t *testing.T, db *sqlx.DB, store *eventstore.Store, ps ...projections.Projector) func() {
	t.Helper()
	return runPipeline(t, db, store, nil, ps...)
}

func runPipeline(t *testing.T, db *sqlx.DB, store *eventstore.Store, lease *projections.Lease, ps ...projections.Projector) func() {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	consumer, err := projections.NewProjectors(db.DB, logger, ps...)
	if err != nil {
		t.Fatal(err)
	}
	agent, err := projections.NewAgent(consumer, projections.AgentConfig{Log: store, Lease: lease, PollInterval: 20 * time.Millisecond, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	tailer, err := eventstore.NewTailer(store, eventstore.TailerConfig{PollInterval: 10 * time.Millisecond}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	router.AddConsumerHandler("pipeline", eventstore.Topic, tailer, projections.NewPipeline(logger, []*projections.Agent{agent}).Handle)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = router.Run(ctx) })
	wg.Go(func() { agent.Run(ctx) })
	<-router.Running()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			_ = router.Close()
		})
	}
	t.Cleanup(stop)
	return stop
}

// countingProjector records every event it applies, in a table of its own,
// so that a test can compare what it saw with the log.
type countingProjector struct{ name string }

func (p countingProjector) Name() string { return p.name }

func (p countingProjector) Apply(ctx context.Context, tx projections.Execer, e eventstore.Event) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO seen (projector, position) VALUES ($1, $2) ON CONFLICT DO NOTHING`, p.name, e.GlobalPosition)
	return err
}

// newSeenLog returns a log of the test's own (see projectionstest.New) with
// the table in which the counting projectors note what they saw.
func newSeenLog(t *testing.T) (*sqlx.DB, *eventstore.Store) {
	t.Helper()
	log := projectionstest.New(t)
	if _, err := log.DB.Exec(`CREATE TABLE seen (projector text, position bigint, PRIMARY KEY (projector, position))`); err != nil {
		t.Fatal(err)
	}
	return log.DB, log.Store
}

// waitSeen waits until the projector named name has seen every event of the
// log, and fails on any event seen that the log does not hold.
func waitSeen(t *testing.T, db *sqlx.DB, name string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var missing, extra int
		if err := db.QueryRow(`SELECT
				(SELECT count(*) FROM events e WHERE NOT EXISTS (SELECT 1 FROM seen s WHERE s.projector = $1 AND s.position = e.global_position)),
				(SELECT count(*) FROM seen s WHERE s.projector = $1 AND NOT EXISTS (SELECT 1 FROM events e WHERE e.global_position = s.position))`,
			name).Scan(&missing, &extra); err != nil {
			t.Fatal(err)
		}
		if extra > 0 {
			t.Fatalf("%s saw %d events the log does not hold", name, extra)
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still misses %d events", name, missing)
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
}

func appendOne(t *testing.T, ctx context.Context, store *eventstore.Store, streamID string, version int) {
	t.Helper()
	_, err := store.Append(ctx, eventstore.Stream{ID: streamID, Type: "test"}, version, []eventstore.NewEvent{{
		ID: newUUID(t), Type: "test.happened", Data: json.RawMessage(`{"v":` + strconv.Itoa(version+1) + `}`),
	}}, eventstore.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
}

var uuidSeq struct {
	sync.Mutex
	n int
}

func newUUID(t *testing.T) string {
	t.Helper()
	uuidSeq.Lock()
	defer uuidSeq.Unlock()
	uuidSeq.n++
	return fmt.Sprintf("00000000-0000-7000-8000-%012d", uuidSeq.n+1_000_000)
}

// Many writers at once, and a transaction that takes its id early and
// commits late: the agent applies every event exactly where the log has
// it, the late one included, and its checkpoint is the last event in
// commit order.
func TestPipelineSkipsNothingUnderConcurrentAndLateCommits(t *testing.T) {
	ctx := context.Background()
	db, store := newSeenLog(t)
	stop := runProjectors(t, db, store, countingProjector{name: "counting"})
	defer stop()

	// A transaction with an early id (it writes first), committed last.
	late, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer late.Rollback()
	if _, err := late.ExecContext(ctx, `INSERT INTO events (event_id, stream_id, stream_type, stream_version, type, data, hash)
		VALUES ('00000000-0000-7000-8000-000000000001', 'test-late', 'test', 1, 'test.happened', '{}', '\x00')`); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for v := range 25 {
				appendOne(t, ctx, store, fmt.Sprintf("test-w%d", w), v)
			}
		})
	}
	wg.Wait()
	if err := late.Commit(); err != nil {
		t.Fatal(err)
	}
	for v := range 5 {
		appendOne(t, ctx, store, "test-after", v)
	}
	waitSeen(t, db, "counting")

	var checkpoint, last int64
	if err := db.QueryRow(`SELECT offset_acked FROM consumer_offsets WHERE consumer_group = 'counting'`).Scan(&checkpoint); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT global_position FROM events ORDER BY tx_id DESC, global_position DESC LIMIT 1`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	if checkpoint != last {
		t.Fatalf("checkpoint at %d, the last event in commit order is %d", checkpoint, last)
	}
}

// A projector whose checkpoint goes back (a reset) is left out of the live
// batches and catches up from the log while the others go on; both end
// with every event.
func TestProjectorBehindCatchesUpAlone(t *testing.T) {
	ctx := context.Background()
	db, store := newSeenLog(t)
	a, b := countingProjector{name: "a"}, countingProjector{name: "b"}
	stop := runProjectors(t, db, store, a, b)
	defer stop()
	for v := range 20 {
		appendOne(t, ctx, store, "test-one", v)
	}
	waitSeen(t, db, "a")
	waitSeen(t, db, "b")
	if _, err := db.Exec(`DELETE FROM seen WHERE projector = 'b'`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE consumer_offsets SET offset_acked = 0, last_processed_transaction_id = '0' WHERE consumer_group = 'b'`); err != nil {
		t.Fatal(err)
	}
	for v := 20; v < 40; v++ {
		appendOne(t, ctx, store, "test-one", v)
	}
	waitSeen(t, db, "a")
	waitSeen(t, db, "b")
}

// Two instances: only the holder of the lease applies; when it stops, the
// other takes the lease over and goes on from the checkpoint.
func TestLeaseHandsOverBetweenInstances(t *testing.T) {
	ctx := context.Background()
	db, store := newSeenLog(t)
	first := projections.NewLease(db.DB, "test")
	if !first.TryAcquire(ctx) {
		t.Fatal("the first instance cannot take a free lease")
	}
	second := projections.NewLease(db.DB, "test")
	if second.TryAcquire(ctx) {
		t.Fatal("two instances hold the lease")
	}
	stopFirst := runPipeline(t, db, store, first, countingProjector{name: "counting"})
	stopSecond := runPipeline(t, db, store, second, countingProjector{name: "counting"})
	defer stopSecond()
	for v := range 10 {
		appendOne(t, ctx, store, "test-lease", v)
	}
	waitSeen(t, db, "counting")
	if second.Held() {
		t.Fatal("the second instance took a lease the first still holds")
	}
	stopFirst() // releases the lease
	for v := 10; v < 20; v++ {
		appendOne(t, ctx, store, "test-lease", v)
	}
	waitSeen(t, db, "counting")
	if !second.Held() {
		t.Fatal("the second instance did not take the lease over")
	}
}
