package projections_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/projections"
	"github.com/engramhq/engram/projections/projectionstest"
)

// rebuildFixture is a log of its own (projectionstest.Log) with a
// rebuilder.
type rebuildFixture struct {
	*projectionstest.Log
	r *projections.Rebuilder
}

func newRebuildFixture(t *testing.T) *rebuildFixture {
	t.Helper()
	l := projectionstest.New(t)
	r, err := projections.NewRebuilder(l.Store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return &rebuildFixture{Log: l, r: r}
}

// checksums returns, per table of p, the md5 of its rows in order, as
// found in schema.
func (f *rebuildFixture) checksums(t *testing.T, p projections.TableProjector, schema string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, table := range p.Tables() {
		var sum string
		err := f.DB.QueryRowContext(t.Context(), `SELECT count(*) || ':' || coalesce(md5(string_agg(r::text, E'\n' ORDER BY r::text)), '')
			FROM `+schema+`.`+table+` r`).Scan(&sum)
		if err != nil {
			t.Fatalf("checksum of %s.%s: %v", schema, table, err)
		}
		out[table] = sum
	}
	return out
}

func (f *rebuildFixture) indexNames(t *testing.T, p projections.TableProjector) []string {
	t.Helper()
	var names []string
	for _, table := range p.Tables() {
		var got []string
		if err := f.DB.SelectContext(t.Context(), &got, `SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = $1
			ORDER BY indexname`, table); err != nil {
			t.Fatal(err)
		}
		names = append(names, got...)
	}
	return names
}

// storage returns the storage parameters of p's live tables (a fillfactor
// kept for in-place updates), table by table.
func (f *rebuildFixture) storage(t *testing.T, p projections.TableProjector) []string {
	t.Helper()
	var out []string
	for _, table := range p.Tables() {
		var options string
		if err := f.DB.GetContext(t.Context(), &options, `SELECT coalesce(array_to_string(reloptions, ','), '')
			FROM pg_class WHERE oid = ('public.' || quote_ident($1))::regclass`, table); err != nil {
			t.Fatal(err)
		}
		out = append(out, table+":"+options)
	}
	return out
}

func (f *rebuildFixture) schemaExists(t *testing.T, name string) bool {
	t.Helper()
	var ok bool
	if err := f.DB.QueryRowContext(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, name).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

func sqlProjectors(t *testing.T) []projections.TableProjector {
	t.Helper()
	var out []projections.TableProjector
	for _, p := range projections.SQL() {
		tp, ok := p.(projections.TableProjector)
		if !ok {
			t.Fatalf("SQL projector %s does not declare its tables", p.Name())
		}
		out = append(out, tp)
	}
	return out
}

func equalSums(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for table, w := range want {
		if got[table] != w {
			t.Errorf("%s: table %s = %s, want %s", what, table, got[table], w)
		}
	}
}

// A rebuild swapped in equals the read model the live projector built, with
// the same index names, and takes the checkpoint of the head; events that
// arrived since the live model last moved are applied by the swap.
func TestRebuildSwapsInTheSameReadModel(t *testing.T) {
	f := newRebuildFixture(t)
	head := f.Generate(t, 1000)
	for _, p := range sqlProjectors(t) {
		f.ApplyLive(t, p)
		live := f.checksums(t, p, "public")
		indexes, storage := f.indexNames(t, p), f.storage(t, p)

		res, err := f.r.Rebuild(t.Context(), p, projections.RebuildOptions{PageSize: 700})
		if err != nil {
			t.Fatalf("rebuild %s: %v", p.Name(), err)
		}
		if !res.Swapped || res.Schema != "public" || res.Events == 0 || res.Cursor != head {
			t.Errorf("rebuild %s = %+v, want swapped into public at %+v", p.Name(), res, head)
		}
		equalSums(t, "rebuilt "+p.Name(), f.checksums(t, p, "public"), live)
		if got := f.indexNames(t, p); len(got) != len(indexes) || joined(got) != joined(indexes) {
			t.Errorf("indexes of %s after the swap = %v, want %v", p.Name(), got, indexes)
		}
		if got := f.storage(t, p); joined(got) != joined(storage) {
			t.Errorf("storage parameters of %s after the swap = %v, want %v", p.Name(), got, storage)
		}
		if got := f.Checkpoint(t, p.Name()); got != head {
			t.Errorf("checkpoint of %s = %+v, want %+v", p.Name(), got, head)
		}
		if f.schemaExists(t, projections.ShadowSchema(p.Name())) {
			t.Errorf("shadow schema of %s left behind", p.Name())
		}
	}

	// The live model lags: the swap catches up with the log.
	f.Generate(t, 600)
	conv := sqlProjectors(t)[2]
	res, err := f.r.Rebuild(t.Context(), conv, projections.RebuildOptions{PageSize: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	head, _ = f.Store.Head(t.Context())
	if res.Cursor != head || f.Checkpoint(t, conv.Name()) != head {
		t.Errorf("after a catching-up rebuild: cursor %+v, checkpoint %+v, want %+v", res.Cursor, f.Checkpoint(t, conv.Name()), head)
	}
	if _, err := f.r.Rebuild(t.Context(), conv, projections.RebuildOptions{Into: "fresh"}); err != nil {
		t.Fatal(err)
	}
	equalSums(t, "swapped after catching up vs fresh", f.checksums(t, conv, "public"), f.checksums(t, conv, "fresh"))
	f.ApplyLive(t, conv) // from the new checkpoint: nothing left to apply
	equalSums(t, "live after the swap", f.checksums(t, conv, "public"), f.checksums(t, conv, "fresh"))
}

func joined(ss []string) string {
	b, _ := json.Marshal(ss)
	return string(b)
}

// An interrupted rebuild leaves the live read model as it was; the next
// rebuild drops what the interrupted one left.
func TestRebuildInterruptedLeavesTheLiveModel(t *testing.T) {
	f := newRebuildFixture(t)
	f.Generate(t, 800)
	p := sqlProjectors(t)[2]
	f.ApplyLive(t, p)
	before := f.checksums(t, p, "public")
	checkpoint := f.Checkpoint(t, p.Name())

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, err := f.r.Rebuild(ctx, p, projections.RebuildOptions{PageSize: 100, Progress: func(projections.RebuildProgress) { cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted rebuild: %v, want context.Canceled", err)
	}
	equalSums(t, "live after an interrupted rebuild", f.checksums(t, p, "public"), before)
	if f.Checkpoint(t, p.Name()) != checkpoint {
		t.Error("an interrupted rebuild moved the checkpoint")
	}
	if !f.schemaExists(t, projections.ShadowSchema(p.Name())) {
		t.Fatal("the interrupted rebuild left no shadow schema: the test interrupted nothing")
	}
	if _, err := f.r.Rebuild(t.Context(), p, projections.RebuildOptions{}); err != nil {
		t.Fatalf("rebuild after an interrupted one: %v", err)
	}
	equalSums(t, "rebuilt after an interruption", f.checksums(t, p, "public"), before)
}

// A point-in-time rebuild equals the live read model as it stood then,
// whether the point is a position or a time, and leaves the live one alone.
func TestRebuildAsOf(t *testing.T) {
	f := newRebuildFixture(t)
	mid := f.Generate(t, 800)
	var at time.Time
	if err := f.DB.QueryRowContext(t.Context(), `SELECT max(recorded_at) FROM events`).Scan(&at); err != nil {
		t.Fatal(err)
	}
	for !time.Now().After(at.Add(time.Millisecond)) { // later events are recorded strictly after
	}
	ps := sqlProjectors(t)
	then := map[string]map[string]string{}
	for _, p := range ps {
		f.ApplyLive(t, p)
		then[p.Name()] = f.checksums(t, p, "public")
	}
	f.Generate(t, 500)
	for _, p := range ps {
		f.ApplyLive(t, p)
	}

	for _, p := range ps {
		now := f.checksums(t, p, "public")
		byPos := "pit_pos_" + p.Name()
		res, err := f.r.Rebuild(t.Context(), p, projections.RebuildOptions{Into: byPos, AsOf: projections.AsOf{Position: mid.Position}, PageSize: 300})
		if err != nil {
			t.Fatalf("rebuild %s as of %d: %v", p.Name(), mid.Position, err)
		}
		if res.Swapped || res.Schema != byPos {
			t.Errorf("as-of rebuild result = %+v", res)
		}
		equalSums(t, p.Name()+" as of position", f.checksums(t, p, byPos), then[p.Name()])
		byTime := "pit_time_" + p.Name()
		if _, err := f.r.Rebuild(t.Context(), p, projections.RebuildOptions{Into: byTime, AsOf: projections.AsOf{Time: at}}); err != nil {
			t.Fatalf("rebuild %s as of %s: %v", p.Name(), at, err)
		}
		equalSums(t, p.Name()+" as of time", f.checksums(t, p, byTime), then[p.Name()])
		equalSums(t, p.Name()+" live after as-of rebuilds", f.checksums(t, p, "public"), now)
	}
}

// Events the projector fails on are parked by the rebuild as by the live
// consumer, and replace the projector's parked events at the swap.
func TestRebuildParksWhatFails(t *testing.T) {
	f := newRebuildFixture(t)
	f.Generate(t, 300)
	ctx := t.Context()
	// A conversation whose creation the projector cannot decode, and a
	// message to it (which the projector then ignores).
	id := uuid.NewString()
	stream := eventstore.Stream{ID: conversation.StreamType + "-" + id, Type: conversation.StreamType}
	bad, err := f.Store.Append(ctx, stream, 0, []eventstore.NewEvent{
		{ID: uuid.NewString(), Type: conversation.EventCreated, SchemaVersion: 99, Data: json.RawMessage(`{"conversation_id":"` + id + `"}`)},
		{ID: uuid.NewString(), Type: conversation.EventMessagePosted, Data: json.RawMessage(`{"message_id":"` + uuid.NewString() + `","author_id":"a","role":"user","content":"x"}`)},
	}, eventstore.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	f.Generate(t, 300)
	p := sqlProjectors(t)[2]
	f.ApplyLive(t, p)
	live := f.checksums(t, p, "public")
	if _, err := f.DB.ExecContext(ctx, `INSERT INTO parked_events (consumer_group, global_position, event_id, type, error)
		VALUES ($1, 1, $2, 'stale', 'from an older run')`, p.Name(), uuid.NewString()); err != nil {
		t.Fatal(err)
	}

	res, err := f.r.Rebuild(ctx, p, projections.RebuildOptions{PageSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	want := bad.Events[0].GlobalPosition
	if len(res.Parked) != 1 || res.Parked[0].Position != want {
		t.Fatalf("parked = %+v, want only position %d", res.Parked, want)
	}
	var parked []int64
	if err := f.DB.SelectContext(ctx, &parked, `SELECT global_position FROM parked_events WHERE consumer_group = $1`, p.Name()); err != nil {
		t.Fatal(err)
	}
	if len(parked) != 1 || parked[0] != want {
		t.Errorf("parked_events after the swap = %v, want [%d]", parked, want)
	}
	equalSums(t, "rebuilt with a parked event", f.checksums(t, p, "public"), live)
}

func TestRebuildRefuses(t *testing.T) {
	f := newRebuildFixture(t)
	f.Generate(t, 100)
	p := sqlProjectors(t)[0]
	ctx := t.Context()
	for _, o := range []projections.RebuildOptions{
		{Into: "public"}, {Into: "Bad-Name"}, {Into: "rebuild_users"}, {Into: "pg_x"},
		{AsOf: projections.AsOf{Position: 3}},
	} {
		if _, err := f.r.Rebuild(ctx, p, o); err == nil {
			t.Errorf("Rebuild with %+v succeeded", o)
		}
	}
	if _, err := f.r.Rebuild(ctx, p, projections.RebuildOptions{Into: "copy"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.r.Rebuild(ctx, p, projections.RebuildOptions{Into: "copy"}); err == nil {
		t.Error("a rebuild into an existing schema succeeded")
	}

	// One rebuild of a projector at a time.
	started, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		once := false
		_, err := f.r.Rebuild(ctx, p, projections.RebuildOptions{PageSize: 10, Progress: func(projections.RebuildProgress) {
			if !once {
				once = true
				close(started)
				<-release
			}
		}})
		done <- err
	}()
	<-started
	if running, err := projections.Rebuilding(ctx, f.DB.DB, p.Name()); err != nil || !running {
		t.Errorf("Rebuilding during a rebuild = %v, %v", running, err)
	}
	if _, err := f.r.Rebuild(ctx, p, projections.RebuildOptions{}); !errors.Is(err, projections.ErrRebuildRunning) {
		t.Errorf("concurrent rebuild: %v, want ErrRebuildRunning", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if running, err := projections.Rebuilding(ctx, f.DB.DB, p.Name()); err != nil || running {
		t.Errorf("Rebuilding after the rebuild = %v, %v", running, err)
	}
}

// The projectors' batches run prepared statements; a rebuild swaps a read
// model in under the same name, and the next batches go into the new
// tables (PostgreSQL plans a statement again when its tables change).
func TestProjectorsFollowASwap(t *testing.T) {
	f := newRebuildFixture(t)
	ctx := t.Context()
	var ps []projections.Projector
	for _, p := range sqlProjectors(t) {
		ps = append(ps, p)
	}
	c, err := projections.NewProjectors(f.DB.DB, nil, ps...)
	if err != nil {
		t.Fatal(err)
	}
	handleAll := func() {
		t.Helper()
		cur, err := c.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for {
			page, err := f.Store.ReadCommitted(ctx, cur, 25) // many batches: past PostgreSQL's custom plans
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				return
			}
			if cur, err = c.Handle(ctx, cur, page); err != nil {
				t.Fatal(err)
			}
		}
	}
	f.Generate(t, 400)
	handleAll()
	conv := sqlProjectors(t)[2]
	if conv.Name() != projections.ConversationsProjector {
		t.Fatalf("projector 2 is %s, want the conversations", conv.Name())
	}
	if _, err := f.r.Rebuild(ctx, conv, projections.RebuildOptions{}); err != nil {
		t.Fatal(err)
	}
	f.Generate(t, 400)
	handleAll()
	if _, err := f.r.Rebuild(ctx, conv, projections.RebuildOptions{Into: "fresh"}); err != nil {
		t.Fatal(err)
	}
	equalSums(t, "batches after a swap vs a fresh rebuild", f.checksums(t, conv, "public"), f.checksums(t, conv, "fresh"))
}
