// Package projectionstest gives the tests of projectors a log of their own:
// a fresh database with an event store and a generator of realistic
// traffic, and a way to run a projector over it as its consumer group does.
package projectionstest

import (
	"database/sql"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/projections"
	"github.com/engramhq/engram/test/eventgen"
	"github.com/engramhq/engram/test/pgtest"
)

// Log is a fresh database with a store and a generator appending to it.
type Log struct {
	DB    *sqlx.DB
	Store *eventstore.Store
	Gen   *eventgen.Generator
}

// New returns a Log over a database of t's own (see pgtest.New).
func New(t *testing.T) *Log {
	t.Helper()
	db, store := pgtest.NewStore(t)
	return &Log{DB: db, Store: store, Gen: eventgen.New(store, 7)}
}

// Generate appends about n events, waits until every reader can see them
// (see Settle) and returns the head of the log then.
func (l *Log) Generate(t *testing.T, n int) eventstore.Cursor {
	t.Helper()
	if _, err := l.Gen.Append(t.Context(), n); err != nil {
		t.Fatal(err)
	}
	return l.Settle(t)
}

// Settle waits until the head of the log is its last event, and returns
// it: the head is held back by any transaction in flight in the cluster,
// other tests' included.
func (l *Log) Settle(t *testing.T) eventstore.Cursor {
	t.Helper()
	last, err := l.Store.LastPosition(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		head, err := l.Store.Head(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if head.Position == last {
			return head
		}
		if time.Now().After(deadline) {
			t.Fatalf("the head stays at %d, below the last position %d", head.Position, last)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ApplyLive applies the events after the projector's checkpoint to its live
// read model as its consumer group does: one event at a time, each in a
// transaction with the checkpoint, parking the events it fails on.
func (l *Log) ApplyLive(t *testing.T, p projections.Projector) {
	t.Helper()
	ctx := t.Context()
	cur, _ := l.checkpoint(t, p.Name())
	for {
		page, err := l.Store.ReadCommitted(ctx, cur, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		tx, err := l.DB.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		exec := func(q string, args ...any) {
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				t.Fatal(err)
			}
		}
		for _, e := range page {
			exec(`SAVEPOINT apply`)
			if err := p.Apply(ctx, tx, e); err != nil {
				exec(`ROLLBACK TO SAVEPOINT apply`)
				exec(`INSERT INTO parked_events (consumer_group, global_position, event_id, type, error)
					VALUES ($1, $2, $3, $4, 'failed')`, p.Name(), e.GlobalPosition, e.EventID, e.Type)
			}
			exec(`RELEASE SAVEPOINT apply`)
			cur = e.Cursor()
		}
		exec(`INSERT INTO consumer_offsets (consumer_group, offset_acked, last_processed_transaction_id)
			VALUES ($1, $2, $3::text::xid8) ON CONFLICT (consumer_group) DO UPDATE
			SET offset_acked = excluded.offset_acked, last_processed_transaction_id = excluded.last_processed_transaction_id`,
			p.Name(), cur.Position, strconv.FormatUint(cur.TxID, 10))
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

// Checkpoint returns the checkpoint of the projector named name; it fails
// t when the projector has none.
func (l *Log) Checkpoint(t *testing.T, name string) eventstore.Cursor {
	t.Helper()
	c, ok := l.checkpoint(t, name)
	if !ok {
		t.Fatalf("projector %s has no checkpoint", name)
	}
	return c
}

func (l *Log) checkpoint(t *testing.T, name string) (eventstore.Cursor, bool) {
	t.Helper()
	var tx string
	var c eventstore.Cursor
	err := l.DB.QueryRowContext(t.Context(), `SELECT last_processed_transaction_id::text, offset_acked FROM consumer_offsets
		WHERE consumer_group = $1`, name).Scan(&tx, &c.Position)
	if errors.Is(err, sql.ErrNoRows) {
		return eventstore.Cursor{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	if c.TxID, err = strconv.ParseUint(tx, 10, 64); err != nil {
		t.Fatal(err)
	}
	return c, true
}

// SameJSON fails t unless got and want, two read models' answers to the
// same query, encode to the same JSON.
func SameJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if string(g) != string(w) {
		t.Fatalf("%s differ:\n got  %s\n want %s", what, g, w)
	}
}
