package membership_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/workspace"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/projections/membership"
)

// log is a workspace stream that the test appends to.
type log struct {
	mu     sync.Mutex
	events []eventstore.Event
}

func (l *log) append(t *testing.T, e domain.Event) eventstore.Event {
	t.Helper()
	data, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	stored := eventstore.Event{GlobalPosition: int64(len(l.events) + 1), StreamID: workspace.StreamID("w"),
		StreamType: workspace.StreamType, StreamVersion: len(l.events) + 1, Type: e.EventType(), SchemaVersion: 1, Data: data}
	l.events = append(l.events, stored)
	return stored
}

func (l *log) ReadStream(_ context.Context, streamID string, after int) ([]eventstore.Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if streamID != workspace.StreamID("w") || after >= len(l.events) {
		return nil, nil
	}
	return append([]eventstore.Event(nil), l.events[after:]...), nil
}

var created = workspace.Created{WorkspaceID: "w", OwnerID: "ada", Name: "W", Config: json.RawMessage(`{}`)}

func role(t *testing.T, w *membership.Workspaces, user string) string {
	t.Helper()
	r, ok, err := w.Role(t.Context(), "w", user)
	if err != nil || !ok {
		t.Fatalf("Role(%s) = %q, %v, %v", user, r, ok, err)
	}
	return r
}

func TestObserveFoldsTheMembersInCommitOrder(t *testing.T) {
	l := &log{}
	w := membership.New(l, 10)
	for _, e := range []domain.Event{
		created,
		workspace.MemberAdded{UserID: "bob", Role: workspace.RoleEditor},
		workspace.MemberAdded{UserID: "cy", Role: workspace.RoleViewer},
	} {
		if _, _, err := w.Observe(l.append(t, e)); err != nil {
			t.Fatal(err)
		}
	}
	ws, removed, err := w.Observe(l.append(t, workspace.MemberRemoved{UserID: "cy"}))
	if err != nil || ws != "w" || removed != "cy" {
		t.Fatalf("Observe(member removed) = %q, %q, %v", ws, removed, err)
	}
	if role(t, w, "ada") != workspace.RoleOwner || role(t, w, "bob") != workspace.RoleEditor || role(t, w, "cy") != "" {
		t.Fatal("roles not folded")
	}
	if w.MemberCount("w") != 2 || w.CachedRole("w", "bob") != workspace.RoleEditor || w.Archived("w") {
		t.Fatal("cached membership")
	}
	seen := map[string]string{}
	w.EachMember("w", func(u, r string) { seen[u] = r })
	if len(seen) != 2 || seen["ada"] != workspace.RoleOwner {
		t.Fatalf("EachMember = %v", seen)
	}
	other := eventstore.Event{StreamType: "conversation", StreamID: "conversation-c", StreamVersion: 1, Type: "conversation.created"}
	if ws, removed, err := w.Observe(other); ws != "" || removed != "" || err != nil {
		t.Fatal("an event of another stream type changed the membership")
	}
}

// A workspace the projection missed is read from the log; events it has
// not observed yet are applied by CurrentRole, and observing them later
// changes nothing.
func TestMissesAreReadFromTheLog(t *testing.T) {
	l := &log{}
	l.append(t, created)
	w := membership.New(l, 10)
	if r, ok, err := w.Role(t.Context(), "nowhere", "ada"); r != "" || ok || err != nil {
		t.Fatalf("Role of a missing workspace = %q, %v, %v", r, ok, err)
	}
	if role(t, w, "ada") != workspace.RoleOwner {
		t.Fatal("owner not read from the log")
	}
	added := l.append(t, workspace.MemberAdded{UserID: "bob", Role: workspace.RoleViewer})
	archived := l.append(t, workspace.Archived{})
	if role(t, w, "bob") != "" {
		t.Fatal("Role read ahead of what was observed")
	}
	if r, _, err := w.CurrentRole(t.Context(), "w", "bob"); err != nil || r != workspace.RoleViewer || !w.Archived("w") {
		t.Fatalf("CurrentRole = %q, %v; archived %v", r, err, w.Archived("w"))
	}
	for _, e := range []eventstore.Event{added, archived} {
		if _, _, err := w.Observe(e); err != nil {
			t.Fatal(err)
		}
	}
	if w.MemberCount("w") != 2 {
		t.Fatalf("%d members after observing applied events again, want 2", w.MemberCount("w"))
	}
}

// A gap in what was observed drops the workspace, which is read again.
func TestAGapIsReadAgain(t *testing.T) {
	l := &log{}
	w := membership.New(l, 10)
	if _, _, err := w.Observe(l.append(t, created)); err != nil {
		t.Fatal(err)
	}
	l.append(t, workspace.MemberAdded{UserID: "bob", Role: workspace.RoleViewer}) // not observed
	if _, _, err := w.Observe(l.append(t, workspace.MemberAdded{UserID: "cy", Role: workspace.RoleViewer})); err != nil {
		t.Fatal(err)
	}
	if w.CachedRole("w", "ada") != "" {
		t.Fatal("the workspace is still held after a gap")
	}
	if role(t, w, "bob") != workspace.RoleViewer || role(t, w, "cy") != workspace.RoleViewer {
		t.Fatal("the workspace was not read again")
	}
}
