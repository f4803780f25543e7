package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/test/pgtest"
)

func TestVerifyLogWalksEveryStreamAndReportsEachBreak(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	// One stream longer than a page, so that a chain continues across pages,
	// and a few short ones around it.
	long := stream("b-" + uuid.NewString())
	batch := make([]eventstore.NewEvent, 2100)
	for i := range batch {
		batch[i] = ev("test.counted", fmt.Sprintf(`{"n":%d}`, i))
	}
	if _, err := s.Append(ctx, long, eventstore.NoStream, batch, eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	short := []eventstore.Stream{stream("a-" + uuid.NewString()), stream("c-" + uuid.NewString()), stream("d-" + uuid.NewString())}
	for _, st := range short {
		for v := range 3 {
			if _, err := s.Append(ctx, st, v, []eventstore.NewEvent{ev("test.step", fmt.Sprintf(`{"v":%d}`, v+1))}, eventstore.Metadata{ActorID: "u"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	collect := func(streamID string) ([]eventstore.Break, eventstore.VerifyReport) {
		t.Helper()
		var breaks []eventstore.Break
		report, err := s.VerifyLog(ctx, streamID, func(b eventstore.Break) error {
			breaks = append(breaks, b)
			return nil
		})
		if err != nil {
			t.Fatalf("VerifyLog(%q): %v", streamID, err)
		}
		return breaks, report
	}
	breaks, report := collect("")
	if len(breaks) != 0 || report != (eventstore.VerifyReport{Streams: 4, Events: 2109}) {
		t.Fatalf("intact log: breaks %v, report %+v", breaks, report)
	}

	// Tamper as a superuser would: change one event's data, delete another.
	pgtest.AsSuperuser(t, s.DB(),
		`UPDATE events SET data = '{"n": 9999}' WHERE stream_id = '`+long.ID+`' AND stream_version = 2050`,
		`DELETE FROM events WHERE stream_id = '`+short[1].ID+`' AND stream_version = 2`)
	var pos3 int64
	if err := s.DB().GetContext(ctx, &pos3, `SELECT global_position FROM events WHERE stream_id = $1 AND stream_version = 3`, short[1].ID); err != nil {
		t.Fatal(err)
	}

	breaks, report = collect("")
	reasons := func(bs []eventstore.Break) []string {
		var out []string
		for _, b := range bs {
			out = append(out, fmt.Sprintf("%s v%d %s", b.StreamID, b.Version, b.Reason))
		}
		slices.Sort(out)
		return out
	}
	want := []string{
		fmt.Sprintf("%s v2050 hash mismatch", long.ID),
		fmt.Sprintf("%s v2 missing version", short[1].ID),
		fmt.Sprintf("%s v3 prev_hash mismatch", short[1].ID),
	}
	slices.Sort(want)
	if got := reasons(breaks); !slices.Equal(got, want) {
		t.Fatalf("breaks = %v, want %v", got, want)
	}
	if report != (eventstore.VerifyReport{Streams: 4, Events: 2108, Breaks: 3}) {
		t.Fatalf("report = %+v", report)
	}
	for _, b := range breaks {
		if b.StreamID == short[1].ID && b.Position != pos3 {
			t.Fatalf("break %+v: position, want %d", b, pos3)
		}
	}
	// The same breaks as VerifyStream, one stream at a time.
	for _, st := range append(short, long) {
		one, rep := collect(st.ID)
		old, err := s.VerifyStream(ctx, st.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(reasons(one), reasons(old)) || rep.Streams != 1 {
			t.Fatalf("stream %s: VerifyLog %v (%+v), VerifyStream %v", st.ID, one, rep, old)
		}
	}
	// An error from the callback stops the walk.
	stop := errors.New("stop")
	if _, err := s.VerifyLog(ctx, "", func(eventstore.Break) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("callback error = %v", err)
	}
}
