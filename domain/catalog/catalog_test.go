package catalog_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/catalog"
	"github.com/engramhq/engram/domain/session"
	"github.com/engramhq/engram/domain/user"
	"github.com/engramhq/engram/domain/workspace"
)

func TestEveryStreamTypeIsLookedUpByItsName(t *testing.T) {
	want := []string{"apikey", "audit", "conversation", "memory", "session", "task", "user", "workspace"}
	if got := catalog.Types(); !slices.Equal(got, want) {
		t.Fatalf("Types() = %v, want %v", got, want)
	}
	for _, typ := range want {
		k, ok := catalog.Lookup(typ)
		if !ok || k.Type != typ || k.Decode == nil {
			t.Fatalf("Lookup(%q) = %+v, %v", typ, k, ok)
		}
		if id := k.StreamID("42"); id != typ+"-42" || k.ID(id) != "42" {
			t.Fatalf("%s: StreamID(42) = %q, ID = %q", typ, id, k.ID(id))
		}
		if _, err := k.Decode(typ+".never_recorded", 1, []byte(`{}`)); !errors.Is(err, domain.ErrUnknownEvent) {
			t.Fatalf("%s decodes an unknown event: %v", typ, err)
		}
	}
	if _, ok := catalog.Lookup("vault"); ok {
		t.Fatal("an unknown stream type was found")
	}
	if catalog.ScopeOf("vault") != catalog.ScopeFirstEvent || !catalog.ScopeOf("vault").FromFirstEvent() {
		t.Fatal("an unknown stream type's scope is not its first event's")
	}
	if catalog.Users.StreamID("u") != user.StreamID("u") || catalog.Workspaces.Type != workspace.StreamType {
		t.Fatal("the catalogue names streams as the aggregates do")
	}
}

func TestScopes(t *testing.T) {
	for typ, want := range map[string]catalog.Scope{
		"user": catalog.ScopeUser, "session": catalog.ScopeFirstEventUser, "apikey": catalog.ScopeFirstEventUser,
		"workspace": catalog.ScopeWorkspace, "memory": catalog.ScopeWorkspace, "conversation": catalog.ScopeConversation,
		"task": catalog.ScopeFirstEvent, "audit": catalog.ScopeFirstEvent,
	} {
		if got := catalog.ScopeOf(typ); got != want {
			t.Errorf("ScopeOf(%s) = %d, want %d", typ, got, want)
		}
	}
	if catalog.ScopeUser.FromFirstEvent() || catalog.ScopeWorkspace.FromFirstEvent() || !catalog.ScopeConversation.FromFirstEvent() {
		t.Error("FromFirstEvent")
	}
}

// Secrets leave neither through a redacted event nor through a state.
func TestSecretsNeverLeave(t *testing.T) {
	const secret = "$argon2id$the-hash"
	registered, _ := json.Marshal(user.Registered{UserID: "u", Email: "a@example.com", DisplayName: "A", PasswordHash: secret, Role: user.RoleUser})
	e, err := catalog.Users.Redacted(user.EventRegistered, 1, registered)
	if err != nil {
		t.Fatal(err)
	}
	if r := e.(user.Registered); r.PasswordHash != "" || r.Email != "a@example.com" {
		t.Fatalf("redacted = %#v", r)
	}
	if _, err := catalog.Users.Redacted(user.EventRegistered, 1, []byte(`[`)); err == nil {
		t.Fatal("undecodable data redacted")
	}

	f := catalog.Sessions.NewFold()
	f.Apply(session.Started{SessionID: "s", UserID: "u", RefreshTokenHash: secret, ExpiresAt: time.Unix(0, 0).UTC()})
	state, err := json.Marshal(f.State())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(state), secret) || !strings.Contains(string(state), `"user_id":"u"`) {
		t.Fatalf("session state = %s", state)
	}
	for _, k := range []catalog.Kind{catalog.Memories.Kind, catalog.AuditReads} {
		if k.NewFold != nil {
			t.Errorf("%s streams show a state", k.Type)
		}
	}
}

func TestWorkspaceStateListsMembersInOrder(t *testing.T) {
	f := catalog.Workspaces.NewFold()
	f.Apply(workspace.Created{WorkspaceID: "w", OwnerID: "u-2", Name: "W"})
	f.Apply(workspace.MemberAdded{UserID: "u-1", Role: workspace.RoleViewer})
	state, _ := json.Marshal(f.State())
	want := `{"id":"w","owner_id":"u-2","name":"W","description":"","config":{},"archived":false,` +
		`"members":[{"user_id":"u-1","role":"viewer"},{"user_id":"u-2","role":"owner"}]}`
	if string(state) != want {
		t.Fatalf("state = %s\nwant    %s", state, want)
	}
}
