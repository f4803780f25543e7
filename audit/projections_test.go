package audit_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/engramhq/engram/audit"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/domain/memory"
	"github.com/engramhq/engram/domain/task"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/projections"
	"github.com/engramhq/engram/test/eventgen"
)

// projectAll applies the whole log to every SQL projector, each in one
// transaction that also moves its checkpoint to the last event, as the live
// consumers do.
func projectAll(t *testing.T, store *eventstore.Store) {
	t.Helper()
	ctx := context.Background()
	// The log is read below the oldest transaction running in the cluster
	// (another test creating its database holds it back for a while).
	deadline := time.Now().Add(time.Minute)
	for {
		var readable, all int
		if err := store.DB().QueryRow(`SELECT count(*) FILTER (WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot())), count(*)
			FROM events`).Scan(&readable, &all); err != nil {
			t.Fatal(err)
		}
		if readable == all {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d events readable after a minute", readable, all)
		}
		<-time.After(20 * time.Millisecond)
	}
	for _, p := range append(projections.SQL(), projections.Cognition()...) {
		tx, err := store.DB().BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		cursor := eventstore.Cursor{}
		for {
			page, err := store.ReadCommitted(ctx, cursor, 500)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			for _, e := range page {
				if err := p.Apply(ctx, tx, e); err != nil {
					t.Fatalf("%s: apply %d: %v", p.Name(), e.GlobalPosition, err)
				}
			}
			last := page[len(page)-1]
			cursor = last.Cursor()
		}
		setCheckpoint(t, tx, p.Name(), cursor)
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

func setCheckpoint(t *testing.T, db interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, name string, c eventstore.Cursor) {
	t.Helper()
	_, err := db.ExecContext(context.Background(), `INSERT INTO consumer_offsets (consumer_group, offset_acked, last_processed_transaction_id)
		VALUES ($1, $2, $3::text::xid8) ON CONFLICT (consumer_group) DO UPDATE
		SET offset_acked = excluded.offset_acked, last_processed_transaction_id = excluded.last_processed_transaction_id`,
		name, c.Position, strconv.FormatUint(c.TxID, 10))
	if err != nil {
		t.Fatal(err)
	}
}

// cognitionHistory appends a task, answered, and memory items, one of them
// updated and one deleted.
func cognitionHistory(t *testing.T, f *fixture, workspaceID, conversationID string) (taskID, itemID string) {
	t.Helper()
	taskID, itemID = uuid.NewString(), uuid.NewString()
	submitted, _ := json.Marshal(task.Submitted{TaskID: taskID, WorkspaceID: workspaceID, ConversationID: conversationID,
		MessageID: uuid.NewString(), RequestedBy: uuid.NewString(), Expert: "echo", Input: "hello", Priority: 1})
	started := fmt.Sprintf(`{"worker":"w-1","attempt":1,"deadline":%q}`, t0.Add(time.Minute).Format(time.RFC3339Nano))
	f.append(t, task.StreamType, taskID, 0, "reactor",
		[2]string{task.EventSubmitted, string(submitted)},
		[2]string{task.EventStarted, started},
		[2]string{task.EventCompleted, `{"output":"hello","reply_message_id":"` + uuid.NewString() + `"}`})
	gone := uuid.NewString()
	f.append(t, memory.StreamType, workspaceID, 0, "reactor",
		[2]string{memory.EventItemStored, `{"item_id":"` + itemID + `","type":"message","content":"first","metadata":{"role":"user"}}`},
		[2]string{memory.EventItemStored, `{"item_id":"` + gone + `","type":"note","content":"to forget","metadata":{}}`},
		[2]string{memory.EventItemUpdated, `{"item_id":"` + itemID + `","content":"second"}`},
		[2]string{memory.EventItemDeleted, `{"item_id":"` + gone + `"}`})
	return taskID, itemID
}

// verifiedFixture is a log of every kind of stream, projected.
type verifiedFixture struct {
	*fixture
	conversations []string
	users         []string
	workspaceID   string
	taskID        string
	itemID        string
}

func newVerifiedFixture(t *testing.T) verifiedFixture {
	t.Helper()
	f := newFixture(t)
	g := eventgen.New(f.store, 7)
	if _, err := g.Append(context.Background(), 400); err != nil {
		t.Fatal(err)
	}
	var workspaceID string
	if err := f.store.DB().Get(&workspaceID, `SELECT substr(stream_id, 11) FROM events WHERE type = 'workspace.created' LIMIT 1`); err != nil {
		t.Fatal(err)
	}
	taskID, itemID := cognitionHistory(t, f, workspaceID, g.Conversations()[0])
	projectAll(t, f.store)
	return verifiedFixture{fixture: f, conversations: g.Conversations(), users: g.Users(), workspaceID: workspaceID,
		taskID: taskID, itemID: itemID}
}

func (f verifiedFixture) exec(t *testing.T, query string, args ...any) {
	t.Helper()
	if _, err := f.store.DB().Exec(query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func TestVerifyProjectionsAgreesWithAFaithfulProjection(t *testing.T) {
	f := newVerifiedFixture(t)
	report, err := f.svc.VerifyProjections(context.Background(), auditor, "")
	if err != nil {
		t.Fatal(err)
	}
	if !report.OK {
		t.Fatalf("a faithful projection is reported different: %+v", report)
	}
	if len(report.ReadModels) != len(audit.ReadModelNames()) {
		t.Fatalf("%d read models reported, want %d", len(report.ReadModels), len(audit.ReadModelNames()))
	}
	for _, m := range report.ReadModels {
		if !m.Started || m.Events == 0 || m.Rows == 0 || m.CheckpointPosition == 0 {
			t.Errorf("read model %s was not really compared: %+v", m.Name, m)
		}
	}
	if got := f.reads(t, auditor.ActorID); len(got) != 1 || got[0].Operation != "verify" || got[0].ResultCount != 0 {
		t.Fatalf("the verification was not recorded as one verify read with no differences: %+v", got)
	}
}

// Each corruption of a read model is named: the table, the row and, for a
// differing column, the column with both values.
func TestVerifyProjectionsNamesEveryDifference(t *testing.T) {
	f := newVerifiedFixture(t)
	ctx := context.Background()

	var messageID string
	if err := f.store.DB().Get(&messageID, `SELECT id::text FROM messages ORDER BY position LIMIT 1`); err != nil {
		t.Fatal(err)
	}
	f.exec(t, `DELETE FROM messages WHERE id = $1`, messageID)
	f.exec(t, `UPDATE users SET display_name = 'Mallory' WHERE id = $1`, f.users[0])
	stranger := uuid.NewString()
	f.exec(t, `INSERT INTO workspace_members (workspace_id, user_id, role, added_at) VALUES ($1, $2, 'editor', now())`, f.workspaceID, stranger)
	f.exec(t, `UPDATE memory_items SET content = 'rewritten' WHERE id = $1`, f.itemID)
	f.exec(t, `DELETE FROM tasks WHERE id = $1`, f.taskID)
	f.exec(t, `UPDATE sessions SET revoked_at = now() WHERE id = (SELECT id FROM sessions ORDER BY id LIMIT 1)`)

	// A checkpoint past an event its model does not reflect: a message
	// appended after the projection, the checkpoint moved over it.
	conversationID := f.conversations[0]
	var version int
	if err := f.store.DB().Get(&version, `SELECT max(stream_version) FROM events WHERE stream_id = $1`, "conversation-"+conversationID); err != nil {
		t.Fatal(err)
	}
	skipped := uuid.NewString()
	posted, _ := json.Marshal(conversation.MessagePosted{MessageID: skipped, AuthorID: f.users[0], Role: "user", Content: "lost?", Metadata: json.RawMessage(`{}`)})
	res := f.append(t, conversation.StreamType, conversationID, version, "user", [2]string{conversation.EventMessagePosted, string(posted)})
	setCheckpoint(t, f.store.DB(), projections.ConversationsProjector, res[0].Cursor())

	f.exec(t, `INSERT INTO parked_events (consumer_group, global_position, event_id, type, error) VALUES ('users', 1, $1, 'user.registered', 'boom')`,
		uuid.NewString())

	report, err := f.svc.VerifyProjections(ctx, auditor, "")
	if err != nil {
		t.Fatal(err)
	}
	if report.OK {
		t.Fatal("a corrupted read model is reported in agreement")
	}
	found := map[string]bool{}
	total := 0
	for _, m := range report.ReadModels {
		total += m.DifferenceCount
		for _, d := range m.Differences {
			found[m.Name+" "+d.Kind+" "+d.Table+" "+d.Key+" "+d.Column] = true
			if d.Key == skipped && (d.Position != res[0].GlobalPosition || d.StreamID != "conversation-"+conversationID) {
				t.Errorf("the skipped message is reported at %s %d, want its event at %d", d.StreamID, d.Position, res[0].GlobalPosition)
			}
		}
	}
	want := []string{
		"conversations missing_row messages " + messageID + " ",
		"users column users " + f.users[0] + " display_name",
		"workspaces extra_row workspace_members " + f.workspaceID + "/" + stranger + " ",
		"memory column memory_items " + f.itemID + " content",
		"tasks missing_row tasks " + f.taskID + " ",
		"conversations missing_row messages " + skipped + " ",
		"conversations column conversations " + conversationID + " message_count",
		"conversations column conversations " + conversationID + " version",
		"users parked   ",
	}
	for _, w := range want {
		if !found[w] {
			t.Errorf("difference %q not reported; got %v", w, found)
		}
	}
	var sessionRevoked bool
	for k := range found {
		if strings.HasPrefix(k, "sessions column sessions ") && strings.HasSuffix(k, " revoked") {
			sessionRevoked = true
		}
	}
	if !sessionRevoked {
		t.Errorf("the revoked session is not reported; got %v", found)
	}
	// Nothing else: each corruption is named once per column it changed
	// (the fixture's clock stands still, so the skipped message leaves no
	// time behind), plus the revoked session.
	if total != len(want)+1 {
		t.Errorf("%d differences reported, want %d: %v", total, len(want)+1, found)
	}

	one, err := f.svc.VerifyProjections(ctx, auditor, "memory")
	if err != nil {
		t.Fatal(err)
	}
	if len(one.ReadModels) != 1 || one.ReadModels[0].Name != "memory" || one.ReadModels[0].DifferenceCount != 1 {
		t.Fatalf("verify memory alone: %+v", one)
	}
	d := one.ReadModels[0].Differences[0]
	if d.Want != `"second"` || d.Got != `"rewritten"` ||
		d.String() != "memory_items "+f.itemID+`: content is "rewritten", the log says "second" (stream memory-`+f.workspaceID+" at position "+strconv.FormatInt(d.Position, 10)+")" {
		t.Fatalf("difference %+v (%s): want the log's and the read model's content", d, d)
	}
}

func TestVerifyProjectionsRefusesAnUnknownReadModel(t *testing.T) {
	f := newFixture(t)
	_, err := f.svc.VerifyProjections(context.Background(), auditor, "nope")
	if domain.ErrorCode(err) != domain.CodeInvalid || !strings.Contains(err.Error(), "users") {
		t.Fatalf("err = %v, want an invalid name listing the read models", err)
	}
}

// A projector that has not started has an empty model; rows in it are
// extra.
func TestVerifyProjectionsWithoutCheckpoint(t *testing.T) {
	f := newFixture(t)
	id := uuid.NewString()
	if _, err := f.store.DB().Exec(`INSERT INTO users (id, email, display_name, created_at, updated_at, version)
		VALUES ($1, 'a@example.com', 'A', now(), now(), 1)`, id); err != nil {
		t.Fatal(err)
	}
	report, err := f.svc.VerifyProjections(context.Background(), auditor, "users")
	if err != nil {
		t.Fatal(err)
	}
	m := report.ReadModels[0]
	if report.OK || m.Started || m.DifferenceCount != 1 || m.Differences[0].Kind != audit.DiffExtraRow || m.Differences[0].Key != id {
		t.Fatalf("report %+v: want one extra row %s in a model not started", report, id)
	}
}
