package projections_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/jmoiron/sqlx"

	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/platform/security"
	"github.com/engramhq/engram/projections"
	"github.com/engramhq/engram/projections/projectionstest"
)

// readModelTables are dumped to compare read models.
var readModelTables = map[string]string{
	"users":             "id",
	"workspaces":        "id",
	"workspace_members": "workspace_id, user_id",
	"conversations":     "id",
	"messages":          "id",
	"sessions":          "id",
	"api_keys":          "id",
}

func snapshot(t *testing.T, db *sqlx.DB) map[string]string {
	t.Helper()
	out := map[string]string{}
	for table, order := range readModelTables {
		var dump sql.NullString
		err := db.QueryRow(fmt.Sprintf(`SELECT json_agg(t ORDER BY %s)::text FROM %s t`, order, table)).Scan(&dump)
		if err != nil {
			t.Fatalf("dump %s: %v", table, err)
		}
		out[table] = dump.String
	}
	return out
}

type secrets struct{}

func (secrets) NewSecret(p string) (string, error) { return security.RandomToken(p, 16) }
func (secrets) HashSecret(s string) string         { return security.HashToken(s) }

// workload drives the commands through a realistic history.
func workload(t *testing.T, store *eventstore.Store) {
	t.Helper()
	ctx := context.Background()
	hasher := &security.PasswordHasher{Params: argon2id.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}}
	tokens, err := security.NewTokens([]byte("0123456789abcdef0123456789abcdef"), "engram", "engram-api", time.Minute, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	cmds, err := commands.New(commands.Dependencies{Store: store, Hasher: hasher, Tokens: tokens, Secrets: secrets{}, RefreshTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	ada, err := cmds.Register.Handle(ctx, commands.Register{Email: "ada@example.com", Password: "correct horse battery", DisplayName: "Ada"})
	must(err)
	bob, err := cmds.Register.Handle(ctx, commands.Register{Email: "bob@example.com", Password: "correct horse battery", DisplayName: "Bob"})
	must(err)
	login, err := cmds.Login.Handle(ctx, commands.Login{Email: "ada@example.com", Password: "correct horse battery", UserAgent: "test", IP: "127.0.0.1"})
	must(err)
	_, err = cmds.Login.Refresh(ctx, commands.Refresh{RefreshToken: login.RefreshToken})
	must(err)
	adaActor := access.Actor{UserID: ada.User.ID}
	ws, err := cmds.CreateWorkspace.Handle(ctx, commands.CreateWorkspace{Actor: adaActor, Name: "Lab", Config: json.RawMessage(`{"k": 1.50}`)})
	must(err)
	name := "Laboratory"
	_, err = cmds.UpdateWorkspace.Handle(ctx, commands.UpdateWorkspace{Actor: adaActor, WorkspaceID: ws.Workspace.ID, Name: &name})
	must(err)
	_, err = cmds.AddMember.Handle(ctx, commands.AddMember{Actor: adaActor, WorkspaceID: ws.Workspace.ID, Email: "bob@example.com", Role: "editor"})
	must(err)
	for c := 0; c < 3; c++ {
		conv, err := cmds.CreateConversation.Handle(ctx, commands.CreateConversation{Actor: adaActor, WorkspaceID: ws.Workspace.ID, Title: fmt.Sprintf("c%d", c)})
		must(err)
		for m := 0; m < 5; m++ {
			author := adaActor
			if m%2 == 1 {
				author = access.Actor{UserID: bob.User.ID}
			}
			_, err := cmds.PostMessage.Handle(ctx, commands.PostMessage{Actor: author, ConversationID: conv.Conversation.ID,
				Content: fmt.Sprintf("message %d", m), Metadata: json.RawMessage(`{"n": 1}`)})
			must(err)
		}
		title := fmt.Sprintf("conversation %d", c)
		_, err = cmds.UpdateConversation.Handle(ctx, commands.UpdateConversation{Actor: adaActor, ConversationID: conv.Conversation.ID,
			Title: &title, MetadataPatch: json.RawMessage(`{"tag": "x"}`)})
		must(err)
		if c == 2 {
			_, err = cmds.ArchiveConversation.Handle(ctx, commands.ArchiveConversation{Actor: adaActor, ConversationID: conv.Conversation.ID})
			must(err)
		}
	}
	_, err = cmds.RemoveMember.Handle(ctx, commands.RemoveMember{Actor: adaActor, WorkspaceID: ws.Workspace.ID, UserID: bob.User.ID})
	must(err)
	_, err = cmds.RevokeSession.Handle(ctx, commands.RevokeSession{Actor: adaActor, SessionID: login.SessionID, Reason: "logout"})
	must(err)
}

// applyAll applies every event of the log to every projector directly, one
// transaction per event.
func applyAll(t *testing.T, db *sqlx.DB, store *eventstore.Store) {
	t.Helper()
	ctx := context.Background()
	events, err := store.ReadAll(ctx, 0, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		for _, p := range projections.SQL() {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Apply(ctx, tx, e); err != nil {
				t.Fatalf("%s on %s (position %d): %v", p.Name(), e.Type, e.GlobalPosition, err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestRedeliveryChangesNothing(t *testing.T) {
	log := projectionstest.New(t)
	db, store := log.DB, log.Store
	workload(t, store)

	applyAll(t, db, store)
	first := snapshot(t, db)
	if first["messages"] == "" || first["workspace_members"] == "" || first["sessions"] == "" {
		t.Fatalf("read models are empty: %v", first)
	}
	applyAll(t, db, store) // every event a second time
	if second := snapshot(t, db); fmt.Sprint(second) != fmt.Sprint(first) {
		t.Fatalf("redelivery changed the read models:\nfirst:  %v\nsecond: %v", first, second)
	}
}

// The projectors' agent builds the same read models as a direct
// application, and replaying the whole log through it (checkpoints reset)
// changes nothing.
func TestAgentBuildsAndReplaysIdempotently(t *testing.T) {
	ctx := context.Background()
	log := projectionstest.New(t)
	db, store := log.DB, log.Store
	workload(t, store)

	ref := projectionstest.New(t)
	reference, refStore := ref.DB, ref.Store
	copyLog(t, store, reference)
	applyAll(t, reference, refStore)
	want := snapshot(t, reference)

	run := func() {
		t.Helper()
		stop := runProjectors(t, db, store, projections.SQL()...)
		defer stop()
		last, _ := store.LastPosition(ctx)
		cp := projections.NewCheckpoints(db.DB, 20*time.Second)
		for _, p := range projections.SQL() {
			if err := cp.WaitFor(ctx, last, p.Name()); err != nil {
				t.Fatalf("%s did not reach %d: %v", p.Name(), last, err)
			}
		}
	}
	run()
	if got := snapshot(t, db); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("the agent built different read models:\ngot:  %v\nwant: %v", got, want)
	}
	if _, err := db.Exec(`UPDATE consumer_offsets SET offset_acked = 0, last_processed_transaction_id = '0'`); err != nil {
		t.Fatal(err)
	}
	run()
	if got := snapshot(t, db); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("replaying the log changed the read models:\ngot:  %v\nwant: %v", got, want)
	}
	var parked int
	if err := db.Get(&parked, `SELECT count(*) FROM parked_events`); err != nil || parked != 0 {
		t.Fatalf("parked events: %d, %v", parked, err)
	}
}

// A projector that fails on an event retries, then parks it with its
// position and goes on with the next events; its failed writes are rolled
// back.
func TestFailingEventIsParkedNotSkipped(t *testing.T) {
	ctx := context.Background()
	log := projectionstest.New(t)
	db, store := log.DB, log.Store
	for i := 0; i < 3; i++ {
		if _, err := store.Append(ctx, eventstore.Stream{ID: fmt.Sprintf("test-%d", i), Type: "test"}, 0,
			[]eventstore.NewEvent{{ID: fmt.Sprintf("00000000-0000-7000-8000-00000000000%d", i), Type: "test.happened", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))}},
			eventstore.Metadata{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`CREATE TABLE applied (n int PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	p := failingProjector{}
	stop := runProjectors(t, db, store, p)
	defer stop()
	last, _ := store.LastPosition(ctx)
	if err := projections.NewCheckpoints(db.DB, 20*time.Second).WaitFor(ctx, last, p.Name()); err != nil {
		t.Fatal(err)
	}
	var applied []int
	if err := db.Select(&applied, `SELECT n FROM applied ORDER BY n`); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(applied) != "[0 2]" {
		t.Fatalf("applied = %v, want [0 2]", applied)
	}
	var parked []struct {
		Position int64  `db:"global_position"`
		Error    string `db:"error"`
	}
	if err := db.Select(&parked, `SELECT global_position, error FROM parked_events WHERE consumer_group = 'failing'`); err != nil {
		t.Fatal(err)
	}
	if len(parked) != 1 || parked[0].Position != 2 {
		t.Fatalf("parked = %+v, want the event at position 2", parked)
	}
}

type failingProjector struct{}

func (failingProjector) Name() string { return "failing" }

func (failingProjector) Apply(ctx context.Context, tx projections.Execer, e eventstore.Event) error {
	var body struct{ N int }
	_ = json.Unmarshal(e.Data, &body)
	if _, err := tx.ExecContext(ctx, `INSERT INTO applied (n) VALUES ($1)`, body.N); err != nil {
		return err
	}
	if body.N == 1 {
		// The insert above must be rolled back with the failure.
		return fmt.Errorf("cannot apply %d", body.N)
	}
	return nil
}

// copyLog copies every event (with its original envelope) into another database.
func copyLog(t *testing.T, from *eventstore.Store, to *sqlx.DB) {
	t.Helper()
	events, err := from.ReadAll(context.Background(), 0, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		md, _ := json.Marshal(e.Metadata)
		if _, err := to.Exec(`INSERT INTO events (event_id, stream_id, stream_type, stream_version, type, schema_version, data, metadata, recorded_at, prev_hash, hash)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)`, e.EventID, e.StreamID, e.StreamType, e.StreamVersion, e.Type, e.SchemaVersion,
			string(e.Data), string(md), e.RecordedAt, e.PrevHash, e.Hash); err != nil {
			t.Fatal(err)
		}
	}
}

// Status counts the events after a projector's checkpoint, in commit order,
// and the age of the first of them; a projector with no checkpoint lags by
// the whole log.
func TestStatusCountsTheLag(t *testing.T) {
	ctx := context.Background()
	log := projectionstest.New(t)
	db, store := log.DB, log.Store
	var cursors []eventstore.Cursor
	for i := 0; i < 5; i++ {
		res, err := store.Append(ctx, eventstore.Stream{ID: fmt.Sprintf("test-%d", i), Type: "test"}, 0,
			[]eventstore.NewEvent{{ID: fmt.Sprintf("00000000-0000-7000-8000-00000000001%d", i), Type: "test.happened", Data: json.RawMessage(`{}`)}},
			eventstore.Metadata{})
		if err != nil {
			t.Fatal(err)
		}
		cursors = append(cursors, res.Events[0].Cursor())
	}
	at := cursors[1]
	if _, err := db.Exec(`INSERT INTO consumer_offsets (consumer_group, offset_acked, last_processed_transaction_id)
		VALUES ('behind', $1, $2::text::xid8), ('done', $3, $4::text::xid8)`, at.Position, fmt.Sprint(at.TxID),
		cursors[4].Position, fmt.Sprint(cursors[4].TxID)); err != nil {
		t.Fatal(err)
	}
	got, err := projections.NewCheckpoints(db.DB, time.Second).Status(ctx, []string{"behind", "done", "new"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct{ position, lag int64 }{"behind": {at.Position, 3}, "done": {cursors[4].Position, 0}, "new": {0, 5}}
	for _, s := range got {
		w := want[s.Name]
		if s.Position != w.position || s.LagEvents != w.lag || (s.LagEvents > 0) != (s.LagSeconds > 0) || s.Parked != 0 {
			t.Errorf("status %+v, want position %d and a lag of %d", s, w.position, w.lag)
		}
	}
}
