package app_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/engramhq/engram/app"
	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/domain/memory"
	"github.com/engramhq/engram/eventstore"
)

var recordedAt = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// written is what a command appended: events at stream versions from..to,
// the last at position.
func written(from, to int, position int64) commands.Written {
	w := commands.Written{Version: to, Position: position}
	for v := from; v <= to; v++ {
		w.Events = append(w.Events, eventstore.Event{StreamVersion: v, RecordedAt: recordedAt, GlobalPosition: position})
	}
	return w
}

// A creation's resource carries its creation time; a later change's only
// when it was updated (the command does not know when it was created).
func TestResourcesFromCommandResults(t *testing.T) {
	ws := commands.WorkspaceState{ID: "w1", OwnerID: "ada", Name: "Lab", Members: map[string]string{"ada": "owner", "bob": "viewer"}}
	created := app.WorkspaceOf(commands.WorkspaceResult{Workspace: ws, Written: written(1, 1, 10)}, "ada")
	if !created.CreatedAt.Equal(recordedAt) || !created.UpdatedAt.Equal(recordedAt) || created.Version != 1 || created.Role != "owner" {
		t.Errorf("created workspace = %+v", created)
	}
	changed := app.WorkspaceOf(commands.WorkspaceResult{Workspace: ws, Written: written(4, 4, 20)}, "bob")
	if !changed.CreatedAt.IsZero() || !changed.UpdatedAt.Equal(recordedAt) || changed.Version != 4 || changed.Role != "viewer" {
		t.Errorf("changed workspace = %+v", changed)
	}

	conv := app.ConversationOf(commands.ConversationResult{Conversation: commands.ConversationState{ID: "c1", Title: "Kickoff"},
		Written: written(1, 1, 11)})
	if !conv.CreatedAt.Equal(recordedAt) || !conv.LastActivityAt.Equal(recordedAt) || conv.Version != 1 || conv.Title != "Kickoff" {
		t.Errorf("created conversation = %+v", conv)
	}

	msg := app.MessageOf(commands.MessageResult{MessageID: "m1", ConversationID: "c1", AuthorID: "ada", Role: "user",
		Content: "hello", Metadata: json.RawMessage(`{"a":1}`), Written: written(2, 2, 12)})
	if msg.ID != "m1" || msg.Content != "hello" || msg.Position != 12 || !msg.CreatedAt.Equal(recordedAt) || string(msg.Metadata) != `{"a":1}` {
		t.Errorf("message = %+v", msg)
	}

	expires := recordedAt.Add(time.Hour)
	item := app.MemoryItemOf(commands.StoredItemResult{WorkspaceID: "w1",
		Item: memory.ItemStored{ItemID: "i1", Type: "fact", Content: "x", ExpiresAt: &expires}, Written: written(3, 3, 13)})
	if item.ID != "i1" || item.WorkspaceID != "w1" || item.Type != "fact" || item.ExpiresAt != &expires || !item.UpdatedAt.Equal(recordedAt) {
		t.Errorf("memory item = %+v", item)
	}

	member := app.MemberOf(commands.MemberResult{WorkspaceID: "w1", UserID: "bob", Role: "editor", Written: written(5, 5, 14)})
	if member.UserID != "bob" || member.Role != "editor" || !member.AddedAt.Equal(recordedAt) {
		t.Errorf("member = %+v", member)
	}
}

// A cancelled task finished when the cancellation was recorded; what it
// does not hold (no output, no reply) stays null.
func TestTaskOf(t *testing.T) {
	task := app.TaskOf(commands.TaskResult{Task: commands.TaskState{ID: "t1", Status: "cancelled", Reason: "stop"},
		Written: written(3, 3, 15)})
	if task.FinishedAt == nil || !task.FinishedAt.Equal(recordedAt) || !task.UpdatedAt.Equal(recordedAt) || task.Version != 3 {
		t.Errorf("task = %+v", task)
	}
	if task.Reason == nil || *task.Reason != "stop" || task.Output != nil || task.ReplyMessageID != nil {
		t.Errorf("task reason %+v, output %+v, reply %+v", task.Reason, task.Output, task.ReplyMessageID)
	}
	unchanged := app.TaskOf(commands.TaskResult{Task: commands.TaskState{ID: "t1"}})
	if unchanged.FinishedAt != nil {
		t.Errorf("a task nothing was written to finished at %v", unchanged.FinishedAt)
	}
}

// An application without one of the parts a transport relies on is refused.
func TestValidate(t *testing.T) {
	if err := (&app.Application{}).Validate(); err == nil {
		t.Fatal("an empty application was accepted")
	}
}
