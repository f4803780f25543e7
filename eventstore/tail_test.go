package eventstore_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/test/pgtest"
)

// receive waits for the next message, failing the test after a deadline.
func receive(t *testing.T, msgs <-chan *message.Message) eventstore.Event {
	t.Helper()
	select {
	case m, ok := <-msgs:
		if !ok {
			t.Fatal("message channel closed")
		}
		e, err := eventstore.FromMessage(m)
		if err != nil {
			t.Fatal(err)
		}
		m.Ack()
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10s")
	}
	return eventstore.Event{}
}

// quiet fails the test if a message arrives within d.
func quiet(t *testing.T, msgs <-chan *message.Message, d time.Duration) {
	t.Helper()
	select {
	case m := <-msgs:
		t.Fatalf("unexpected message at position %s", m.Metadata.Get(eventstore.MetaPosition))
	case <-time.After(d):
	}
}

// tail subscribes to the log of s through a Tailer closed when t ends.
func tail(t *testing.T, s *eventstore.Store, cfg eventstore.TailerConfig) <-chan *message.Message {
	t.Helper()
	tailer, err := eventstore.NewTailer(s, cfg, watermill.NopLogger{})
	return subscribe(t, tailer, err)
}

// Transaction A takes its position first but commits after B: the tailer
// waits while A is in flight, then delivers A and B in commit order, once each.
func TestTailerSurvivesOutOfOrderCommits(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	before, err := s.Append(ctx, stream("before"), 0, []eventstore.NewEvent{ev("test.created", `{}`)}, eventstore.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	// Start after it. (The head may lag behind it for a moment: the commit
	// horizon is the whole cluster's, and other databases' transactions
	// hold it back too.)
	from, err := s.CursorOf(ctx, before.LastPosition())
	if err != nil {
		t.Fatal(err)
	}
	msgs := tail(t, s, eventstore.TailerConfig{From: &from, PollInterval: 20 * time.Millisecond})

	txA, posA, posB := commitOutOfOrder(t, s)
	// Nothing is delivered while A is in flight: not the event the tailer
	// started after, and not B, which would let A be skipped.
	quiet(t, msgs, 200*time.Millisecond)
	if err := txA.Commit(); err != nil {
		t.Fatal(err)
	}
	if a, b := receive(t, msgs), receive(t, msgs); a.GlobalPosition != posA || b.GlobalPosition != posB {
		t.Fatalf("received %d then %d, want %d then %d", a.GlobalPosition, b.GlobalPosition, posA, posB)
	}
	quiet(t, msgs, 200*time.Millisecond)
}

// A wake-up ends the idle wait: with a poll interval of a minute, an append
// still arrives at once. A nacked message is delivered again.
func TestTailerWakesAndRedeliversNacked(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	wake := make(chan struct{}, 1)
	from := eventstore.Cursor{}
	msgs := tail(t, s, eventstore.TailerConfig{
		From: &from, PollInterval: time.Minute, RetryInterval: 10 * time.Millisecond,
		Wake: func() (<-chan struct{}, func()) { return wake, func() {} },
	})
	res, err := s.Append(ctx, stream("w"), 0, []eventstore.NewEvent{ev("test.created", `{}`), ev("test.changed", `{}`)}, eventstore.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	// Wake it as appends do. The events become readable once the cluster's
	// commit horizon passes them, so wake again until they arrive.
	m := nudgeUntilReceived(t, wake, msgs, "the wake-ups did not end the idle wait")
	if m.UUID != res.Events[0].EventID {
		t.Fatalf("first message %s, want %s", m.UUID, res.Events[0].EventID)
	}
	m.Nack()
	for i, want := range res.Events {
		if got := receive(t, msgs); got.EventID != want.EventID || got.TxID != want.TxID {
			t.Fatalf("message %d = %s (tx %d), want %s (tx %d)", i, got.EventID, got.TxID, want.EventID, want.TxID)
		}
	}
}

// A transaction that took an id and wrote no event (as the projectors'
// batch does) keeps a new event unreadable; when it ends, Settled ends the
// reader's short wait at once: with a hot interval and a poll interval of a
// minute, the event still arrives.
func TestTailerSettledEndsTheShortWait(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	from, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wake, settled := make(chan struct{}, 1), make(chan struct{}, 1)
	msgs := tail(t, s, eventstore.TailerConfig{
		From: &from, PollInterval: time.Minute, HotInterval: time.Minute,
		Wake:    func() (<-chan struct{}, func()) { return wake, func() {} },
		Settled: func() (<-chan struct{}, func()) { return settled, func() {} },
	})
	blocker := s.DB().MustBeginTx(ctx, nil)
	defer func() { _ = blocker.Rollback() }()
	blocker.MustExecContext(ctx, `SELECT pg_current_xact_id()`)
	res, err := s.Append(ctx, stream("s"), 0, []eventstore.NewEvent{ev("test.created", `{}`)}, eventstore.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	wake <- struct{}{} // as the append's hook does: the reader finds nothing readable
	quiet(t, msgs, 100*time.Millisecond)
	if err := blocker.Commit(); err != nil {
		t.Fatal(err)
	}
	// Other databases' transactions may hold the cluster's horizon a moment
	// longer: tell the reader again until the event arrives.
	m := nudgeUntilReceived(t, settled, msgs, "Settled did not end the short wait")
	if m.UUID != res.Events[0].EventID {
		t.Fatalf("message %s, want %s", m.UUID, res.Events[0].EventID)
	}
	m.Ack()
}

// nudgeUntilReceived signals ch (never blocking) every 20 ms until a message
// arrives and returns it; it fails the test with why after 10 s.
func nudgeUntilReceived(t *testing.T, ch chan<- struct{}, msgs <-chan *message.Message, why string) *message.Message {
	t.Helper()
	ticker := time.NewTicker(20 * time.Millisecond)
	defer ticker.Stop()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ch <- struct{}{}:
		default:
		}
		select {
		case m := <-msgs:
			return m
		case <-ticker.C:
		case <-deadline:
			t.Fatal(why)
			return nil
		}
	}
}

// Woken again soon after a read, the reader waits until MinGap has passed
// since that read began, so that one query reads what the appends of that
// time wrote.
func TestTailerSpacesReadsByMinGap(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	from, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const gap = 500 * time.Millisecond
	wake := make(chan struct{}, 1)
	msgs := tail(t, s, eventstore.TailerConfig{
		From: &from, PollInterval: time.Minute, MinGap: gap,
		Wake: func() (<-chan struct{}, func()) { return wake, func() {} },
	})
	if _, err := s.Append(ctx, stream("g"), 0, []eventstore.NewEvent{ev("test.created", `{}`)}, eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	first := nudgeUntilReceived(t, wake, msgs, "the first event never came")
	first.Ack()
	received := time.Now()
	if _, err := s.Append(ctx, stream("g"), 1, []eventstore.NewEvent{ev("test.changed", `{}`)}, eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	second := nudgeUntilReceived(t, wake, msgs, "the second event never came")
	second.Ack()
	// The read that found the first event began before it was received.
	if waited := time.Since(received); waited < gap-200*time.Millisecond {
		t.Errorf("the next read came %v after the last, want at least %v", waited, gap)
	}
}

func TestTailerCloseEndsSubscriptions(t *testing.T) {
	s := newStore(t)
	tailer, err := eventstore.NewTailer(s, eventstore.TailerConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tailer.Subscribe(context.Background(), "other"); err == nil {
		t.Error("subscribing to another topic succeeded")
	}
	msgs, err := tailer.Subscribe(context.Background(), eventstore.Topic)
	if err != nil {
		t.Fatal(err)
	}
	if err := tailer.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-msgs:
		if ok {
			t.Fatal("message after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed by Close")
	}
	if _, err := tailer.Subscribe(context.Background(), eventstore.Topic); err == nil {
		t.Error("Subscribe after Close succeeded")
	}
}

func TestCursorOfAndFirstEvent(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	st := stream(uuid.NewString())
	res, err := s.Append(ctx, st, 0, []eventstore.NewEvent{ev("test.created", `{"n":1}`), ev("test.changed", `{"n":2}`)}, eventstore.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	second := res.Events[1]
	c, err := s.CursorOf(ctx, second.GlobalPosition)
	if err != nil || c != second.Cursor() {
		t.Fatalf("CursorOf = %+v, %v", c, err)
	}
	if c, err := s.CursorOf(ctx, 0); err != nil || c != (eventstore.Cursor{}) {
		t.Fatalf("CursorOf(0) = %+v, %v", c, err)
	}
	for _, p := range []int64{-1, second.GlobalPosition + 1000} {
		if _, err := s.CursorOf(ctx, p); !errors.Is(err, eventstore.ErrUnknownPosition) {
			t.Errorf("CursorOf(%d): err = %v, want ErrUnknownPosition", p, err)
		}
	}
	// Resuming from the first event's cursor gives exactly the second, once
	// the cluster's commit horizon has passed it.
	first, _ := s.CursorOf(ctx, res.Events[0].GlobalPosition)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		rest, err := s.ReadCommitted(ctx, first, 10)
		if err != nil || len(rest) > 1 || len(rest) == 1 && rest[0].EventID != second.EventID {
			t.Fatalf("ReadCommitted after the first = %d events, %v", len(rest), err)
		}
		if len(rest) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second event did not become readable within 10s")
		}
	}
	if !c.After(first) || first.After(c) {
		t.Error("After does not order the cursors")
	}

	e, ok, err := s.FirstEvent(ctx, st.ID)
	if err != nil || !ok || e.EventID != res.Events[0].EventID {
		t.Fatalf("FirstEvent = %+v, %v, %v", e, ok, err)
	}
	if _, ok, err := s.FirstEvent(ctx, "test-missing"); ok || err != nil {
		t.Fatalf("FirstEvent of a missing stream = %v, %v", ok, err)
	}
}

// commitOutOfOrder inserts event A in a transaction it leaves open, then
// appends event B, which commits first: A holds the earlier position and
// commits (through txA) after B. Commit or roll back txA to end it.
func commitOutOfOrder(t *testing.T, s *eventstore.Store) (txA *sqlx.Tx, posA, posB int64) {
	t.Helper()
	ctx := t.Context()
	txA, err := s.DB().BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = txA.Rollback() })
	if err := txA.QueryRowxContext(ctx, `INSERT INTO events (event_id, stream_id, stream_type, stream_version, type, data, hash)
		VALUES ($1, 'test-a', 'test', 1, 'test.created', '{}', '\x00') RETURNING global_position`, uuid.NewString()).Scan(&posA); err != nil {
		t.Fatal(err)
	}
	resB, err := s.Append(ctx, stream("b"), 0, []eventstore.NewEvent{ev("test.created", `{}`)}, eventstore.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	return txA, posA, resB.LastPosition()
}

// A transaction that writes no events, once named a bystander, no longer
// holds the readers of the log back; a transaction that is not named does,
// and so does one that inserts events, whatever else is named.
//
// Snapshots span the whole PostgreSQL server: another database's
// transaction in flight may hold a reader back for a moment too, so a read
// that must reach further is tried until it does (it must never read more).
func TestReadCommittedPassesBystanders(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	by, err := s.DB().BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = by.Rollback() })
	var raw string
	if err := by.QueryRowxContext(ctx, `SELECT pg_current_xact_id()::text`).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	id, err := strconv.ParseUint(raw, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Append(ctx, stream("after"), 0, []eventstore.NewEvent{ev("test.created", `{}`)}, eventstore.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	read := func() []int64 {
		t.Helper()
		events, err := s.ReadCommitted(ctx, eventstore.Cursor{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, e := range events {
			out = append(out, e.GlobalPosition)
		}
		return out
	}
	// reaches reads until it reads want, failing at once on a read that is
	// not a beginning of want.
	reaches := func(why string, want ...int64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			got := read()
			if len(got) > len(want) || !slices.Equal(got, want[:len(got)]) {
				t.Fatalf("%s: read %v, want %v", why, got, want)
			}
			if len(got) == len(want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: read %v after 5 s, want %v", why, got, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	reaches("a transaction in flight, not named")
	release := s.Bystander(id)
	after := res.LastPosition()
	reaches("the transaction in flight named a bystander", after)

	// A writer in flight: the reader stops below it, bystander or not.
	txA, posA, posB := commitOutOfOrder(t, s)
	reaches("a writer in flight", after)
	if got := read(); len(got) != 1 {
		t.Fatalf("read %v with a writer in flight, want [%d]", got, after)
	}
	if err := txA.Commit(); err != nil {
		t.Fatal(err)
	}
	reaches("the writer committed", after, posA, posB)

	// Released, the bystander holds the readers back again: only what
	// committed before it started is readable.
	release()
	reaches("a transaction in flight no longer named")
}

// A store remembers the first event of a stream it started, so that asking
// who the stream belongs to right after writing it needs no read; the
// first event of a stream started elsewhere is still read.
func TestFirstEventOfAStreamItStartedIsKnownWithoutARead(t *testing.T) {
	ctx := t.Context()
	db, s := pgtest.NewStore(t)
	elsewhere, err := eventstore.New(db)
	if err != nil {
		t.Fatal(err)
	}
	mine, theirs := stream(uuid.NewString()), stream(uuid.NewString())
	started, err := s.Append(ctx, mine, eventstore.NoStream, []eventstore.NewEvent{ev("test.created", `{"n":1}`)}, eventstore.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := elsewhere.Append(ctx, theirs, eventstore.NoStream, []eventstore.NewEvent{ev("test.created", `{"n":1}`)}, eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	// s writes the second event of theirs: it did not start it.
	if _, err := s.Append(ctx, theirs, 1, []eventstore.NewEvent{ev("test.changed", `{"n":2}`)}, eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	e, ok, err := s.FirstEvent(ctx, mine.ID)
	if err != nil || !ok || e.EventID != started.Events[0].EventID || e.GlobalPosition != started.Events[0].GlobalPosition {
		t.Fatalf("FirstEvent of a stream it started, database closed = %+v, %v, %v", e, ok, err)
	}
	if _, _, err := s.FirstEvent(ctx, theirs.ID); err == nil {
		t.Fatal("FirstEvent of a stream started elsewhere answered without reading it")
	}
}

// The tailer marks every event of a read but the last with MetaMore, so
// that a live sink can wake its readers once per read.
func TestTailerMarksTheEventsThatMoreFollow(t *testing.T) {
	s := newStore(t)
	if _, err := s.Append(t.Context(), stream(uuid.NewString()), 0, []eventstore.NewEvent{ev("test.created", `{}`),
		ev("test.changed", `{}`), ev("test.changed", `{}`)}, eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	msgs := tail(t, s, eventstore.TailerConfig{From: &eventstore.Cursor{}})
	var marks []string
	for range 3 {
		select {
		case m := <-msgs:
			marks = append(marks, m.Metadata.Get(eventstore.MetaMore))
			m.Ack()
		case <-time.After(10 * time.Second):
			t.Fatalf("no message within 10s (marks so far %q)", marks)
		}
	}
	if want := []string{"1", "1", ""}; !slices.Equal(marks, want) {
		t.Fatalf("MetaMore of one read's events = %q, want %q", marks, want)
	}
}
