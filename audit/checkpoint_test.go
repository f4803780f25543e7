package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/engramhq/engram/audit"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/test/pgtest"
)

// checkpointed is a log of more than one block, and a checkpoint of it.
type checkpointed struct {
	*fixture
	key ed25519.PrivateKey
	cp  *audit.Checkpoint
	// big is the stream whose one event holds an integer beyond 2^53.
	big string
}

func newCheckpointed(t *testing.T) *checkpointed {
	t.Helper()
	f := newFixture(t)
	batch := make([][2]string, 300)
	for i := range batch {
		batch[i] = [2]string{"gadget.counted", fmt.Sprintf(`{"i":%d}`, i)}
	}
	f.append(t, "gadget", "many", 0, "loader", batch...) // positions 1-300
	for v := range 3 {
		f.clock.set(t0.Add(time.Duration(v+1) * time.Minute))
		f.append(t, "gadget", "three", v, "u-1", [2]string{"gadget.tuned", fmt.Sprintf(`{"dial":%d}`, v)}) // 301-303
	}
	f.append(t, "gadget", "big", 0, "u-2", [2]string{"gadget.weighed", `{"grams": 9007199254740993}`}) // 304
	key, err := audit.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	cp, err := f.svc.Checkpoint(context.Background(), auditor, key, func(b eventstore.Break) error {
		return fmt.Errorf("break in an intact log: %+v", b)
	})
	if err != nil {
		t.Fatal(err)
	}
	if cp.Events != 304 || cp.Position != 304 || len(cp.Blocks) != 2 || cp.Blocks[0].Positions.String() != "1-256" ||
		cp.Blocks[1].Positions.String() != "257-304" {
		t.Fatalf("checkpoint = %d events up to %d, blocks %+v", cp.Events, cp.Position, cp.Blocks)
	}
	// Through its file, as an auditor keeps it.
	raw, err := json.Marshal(cp)
	if err != nil {
		t.Fatal(err)
	}
	if cp, err = audit.ReadCheckpoint(bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	return &checkpointed{fixture: f, key: key, cp: cp, big: "gadget-big"}
}

// verify verifies the log against the checkpoint with its signer's public
// key and returns the changes, as text, and the report.
func (c *checkpointed) verify(t *testing.T) ([]string, audit.CheckpointReport) {
	t.Helper()
	var changes []string
	report, err := c.svc.VerifyCheckpoint(context.Background(), auditor, c.cp, c.key.Public().(ed25519.PublicKey),
		func(ch audit.CheckpointChange) error {
			changes = append(changes, fmt.Sprintf("%s %s %d", ch.Change, ch.Positions, ch.Events))
			return nil
		})
	if err != nil {
		t.Fatalf("verify against the checkpoint: %v", err)
	}
	if report.Changes != int64(len(changes)) || report.Events != c.cp.Events {
		t.Fatalf("report %+v, changes %v", report, changes)
	}
	return changes, report
}

// chainBreaks runs the verification of the hash chains alone.
func (c *checkpointed) chainBreaks(t *testing.T) []string {
	t.Helper()
	var breaks []string
	if _, err := c.svc.Verify(context.Background(), auditor, "", func(b eventstore.Break) error {
		breaks = append(breaks, fmt.Sprintf("%s v%d %s", b.StreamID, b.Version, b.Reason))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return breaks
}

// rewrite replaces the events of a stream from version from on with events
// of the same ids, types, times, metadata, positions and transactions but
// other data, their hashes and the chain recomputed — by the event store
// itself, as anyone who knows the (public) hashing scheme can.
func (c *checkpointed) rewrite(t *testing.T, streamID string, from int, data ...string) {
	t.Helper()
	ctx := context.Background()
	db := c.store.DB()
	type row struct {
		Position   int64     `db:"global_position"`
		TxID       string    `db:"tx_id"`
		EventID    string    `db:"event_id"`
		StreamType string    `db:"stream_type"`
		Type       string    `db:"type"`
		Metadata   string    `db:"metadata"`
		RecordedAt time.Time `db:"recorded_at"`
	}
	var rows []row
	if err := db.SelectContext(ctx, &rows, `SELECT global_position, tx_id::text, event_id, stream_type, type, metadata::text, recorded_at
		FROM events WHERE stream_id = $1 AND stream_version >= $2 ORDER BY stream_version`, streamID, from); err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(data) {
		t.Fatalf("rewrite %s: %d events from version %d, %d data", streamID, len(rows), from, len(data))
	}
	pgtest.AsSuperuser(t, c.store.DB(), fmt.Sprintf(`DELETE FROM events WHERE stream_id = '%s' AND stream_version >= %d`, streamID, from))
	for i, r := range rows {
		var md eventstore.Metadata
		if err := json.Unmarshal([]byte(r.Metadata), &md); err != nil {
			t.Fatal(err)
		}
		c.clock.set(r.RecordedAt)
		res, err := c.store.Append(ctx, eventstore.Stream{ID: streamID, Type: r.StreamType}, from-1+i,
			[]eventstore.NewEvent{{ID: r.EventID, Type: r.Type, Data: json.RawMessage(data[i])}}, md)
		if err != nil {
			t.Fatalf("rewrite %s: %v", streamID, err)
		}
		pgtest.AsSuperuser(t, c.store.DB(), fmt.Sprintf(`WITH moved AS (DELETE FROM events WHERE global_position = %d RETURNING *)
			INSERT INTO events (global_position, tx_id, event_id, stream_id, stream_type, stream_version, type,
				schema_version, data, metadata, recorded_at, prev_hash, hash) OVERRIDING SYSTEM VALUE
			SELECT %d, '%s'::xid8, event_id, stream_id, stream_type, stream_version, type,
				schema_version, data, metadata, recorded_at, prev_hash, hash FROM moved`,
			res.Events[0].GlobalPosition, r.Position, r.TxID))
	}
}

func TestCheckpointPassesAnUntouchedLogThatHasGrown(t *testing.T) {
	c := newCheckpointed(t)
	c.append(t, "gadget", "three", 3, "u-1", [2]string{"gadget.tuned", `{"dial":3}`})
	c.append(t, "gadget", "new", 0, "u-3", [2]string{"gadget.tuned", `{"dial":1}`})
	changes, report := c.verify(t)
	if len(changes) != 0 || report.Found != 304 || report.Position != 304 || report.SignedBy != audit.Fingerprint(c.key.Public().(ed25519.PublicKey)) {
		t.Fatalf("grown log: changes %v, report %+v", changes, report)
	}
	// An event written after the checkpoint passed off as one it covers.
	pgtest.AsSuperuser(t, c.store.DB(), `UPDATE events SET tx_id = '3'::xid8 WHERE stream_id = 'gadget-new'`)
	var pos int64
	if err := c.store.DB().Get(&pos, `SELECT global_position FROM events WHERE stream_id = 'gadget-new'`); err != nil {
		t.Fatal(err)
	}
	if changes, _ := c.verify(t); !slices.Equal(changes, []string{fmt.Sprintf("inserted %d 1", pos)}) {
		t.Fatalf("changes = %v", changes)
	}
}

func TestCheckpointCatchesTheDeletionOfAStreamsLastEvent(t *testing.T) {
	c := newCheckpointed(t)
	pgtest.AsSuperuser(t, c.store.DB(), `DELETE FROM events WHERE stream_id = 'gadget-three' AND stream_version = 3`)
	if breaks := c.chainBreaks(t); len(breaks) != 0 {
		t.Fatalf("the chains were expected to see nothing: %v", breaks)
	}
	if changes, report := c.verify(t); !slices.Equal(changes, []string{"deleted 303 1"}) || report.Found != 303 {
		t.Fatalf("changes = %v, report %+v", changes, report)
	}
}

func TestCheckpointCatchesARewriteWithRecomputedHashes(t *testing.T) {
	c := newCheckpointed(t)
	c.rewrite(t, "gadget-three", 2, `{"dial":1000}`, `{"dial":2000}`)
	if breaks := c.chainBreaks(t); len(breaks) != 0 {
		t.Fatalf("the rewrite was expected to fool the chains: %v", breaks)
	}
	var dial int
	if err := c.store.DB().Get(&dial, `SELECT (data->>'dial')::int FROM events WHERE global_position = 303`); err != nil || dial != 2000 {
		t.Fatalf("the rewrite did not happen: %d, %v", dial, err)
	}
	if changes, _ := c.verify(t); !slices.Equal(changes, []string{"altered 257-304 48"}) {
		t.Fatalf("changes = %v", changes)
	}
}

func TestCheckpointCatchesAChangeBeyondDoublePrecision(t *testing.T) {
	c := newCheckpointed(t)
	// 9007199254740993 and 9007199254740992 are one and the same double.
	pgtest.AsSuperuser(t, c.store.DB(), `UPDATE events SET data = '{"grams": 9007199254740992}' WHERE stream_id = 'gadget-big'`)
	if breaks := c.chainBreaks(t); !slices.Equal(breaks, []string{"gadget-big v1 hash mismatch"}) {
		t.Fatalf("breaks = %v", breaks)
	}
	if changes, _ := c.verify(t); !slices.Equal(changes, []string{"altered 257-304 48"}) {
		t.Fatalf("changes = %v", changes)
	}
}

func TestCheckpointCatchesATruncatedLog(t *testing.T) {
	c := newCheckpointed(t)
	pgtest.AsSuperuser(t, c.store.DB(), `DELETE FROM events WHERE global_position >= 250`)
	if breaks := c.chainBreaks(t); len(breaks) != 0 {
		t.Fatalf("the chains were expected to see nothing: %v", breaks)
	}
	changes, report := c.verify(t)
	if !slices.Equal(changes, []string{"deleted 250-304 55"}) || report.Found != 249 {
		t.Fatalf("changes = %v, report %+v", changes, report)
	}
}

func TestCheckpointNamesEveryChange(t *testing.T) {
	c := newCheckpointed(t)
	pgtest.AsSuperuser(t, c.store.DB(),
		`DELETE FROM events WHERE global_position IN (10, 11, 256)`,
		`UPDATE events SET data = '{"i": -1}' WHERE global_position = 100`, // hidden by the deletions of its block
		`UPDATE events SET stream_version = 9 WHERE global_position = 304`)
	want := []string{"deleted 10-11,256 3", "altered 257-304 48"}
	if changes, _ := c.verify(t); !slices.Equal(changes, want) {
		t.Fatalf("changes = %v, want %v", changes, want)
	}
}

func TestCheckpointIsNotSignedForABrokenLog(t *testing.T) {
	c := newCheckpointed(t)
	pgtest.AsSuperuser(t, c.store.DB(), `UPDATE events SET data = '{"dial": 7}' WHERE stream_id = 'gadget-three' AND stream_version = 2`)
	var breaks int
	_, err := c.svc.Checkpoint(context.Background(), auditor, c.key, func(eventstore.Break) error { breaks++; return nil })
	if !errors.Is(err, audit.ErrLogBroken) || breaks != 1 {
		t.Fatalf("checkpoint of a broken log: %v, %d breaks", err, breaks)
	}
}

func TestCheckpointFileIsChecked(t *testing.T) {
	c := newCheckpointed(t)
	pub := c.key.Public().(ed25519.PublicKey)
	if key, err := c.cp.Check(nil); err != nil || !key.Equal(pub) {
		t.Fatalf("intact checkpoint: %v", err)
	}
	other, err := audit.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	forged := func(change func(cp *audit.Checkpoint)) *audit.Checkpoint {
		cp := *c.cp
		cp.Blocks = slices.Clone(c.cp.Blocks)
		change(&cp)
		return &cp
	}
	cases := map[string]struct {
		cp   *audit.Checkpoint
		key  ed25519.PublicKey
		want string
	}{
		"fewer events":   {forged(func(cp *audit.Checkpoint) { cp.Events, cp.Position = 300, 300 }), pub, "the blocks cover"},
		"a block less":   {forged(func(cp *audit.Checkpoint) { cp.Blocks = cp.Blocks[:1]; cp.Events, cp.Position = 256, 256 }), pub, "do not give the head"},
		"another digest": {forged(func(cp *audit.Checkpoint) { cp.Blocks[1].Digest = strings.Repeat("0", 64) }), pub, "do not give the head"},
		"re-headed": {forged(func(cp *audit.Checkpoint) {
			cp.Blocks = cp.Blocks[:1]
			cp.Events, cp.Position = 256, 256
			head, err := audit.HeadOf(cp.Blocks) // the format is public: only the signature stops a forger
			if err != nil {
				t.Fatal(err)
			}
			cp.Head = head
		}), pub, "signature does not verify"},
		"another key":    {c.cp, other.Public().(ed25519.PublicKey), "not by the key given"},
		"another format": {forged(func(cp *audit.Checkpoint) { cp.Format = "x" }), pub, "format"},
	}
	for name, tc := range cases {
		_, err := tc.cp.Check(tc.key)
		if !errors.Is(err, audit.ErrCheckpointInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
		if _, err := c.svc.VerifyCheckpoint(context.Background(), auditor, tc.cp, tc.key, func(audit.CheckpointChange) error { return nil }); !errors.Is(err, audit.ErrCheckpointInvalid) {
			t.Errorf("%s: verify: %v", name, err)
		}
	}
	if _, err := audit.ReadCheckpoint(strings.NewReader(`{"format":"engram-audit-checkpoint/1","extra":1}`)); !errors.Is(err, audit.ErrCheckpointInvalid) {
		t.Errorf("unknown field: %v", err)
	}
	if _, err := audit.ReadCheckpoint(strings.NewReader(`{"blocks":[{"positions":"5-3","digest":""}]}`)); !errors.Is(err, audit.ErrCheckpointInvalid) {
		t.Errorf("bad positions: %v", err)
	}
}
