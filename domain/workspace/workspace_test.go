package workspace

import (
	"encoding/json"
	"github.com/engramhq/engram/domain/domaintest"
	"reflect"
	"strings"
	"testing"

	"github.com/engramhq/engram/domain"
)

const (
	wid   = "w-1"
	owner = "u-owner"
	bob   = "u-bob"
	carol = "u-carol"
)

func created() Created {
	return Created{WorkspaceID: wid, OwnerID: owner, Name: "Research", Description: "Notes", Config: json.RawMessage(`{"lang":"en"}`)}
}

func load(events ...domain.Event) *Workspace { return domaintest.Load(&Workspace{}, events...) }

func TestCreate(t *testing.T) {
	tests := []struct {
		name                     string
		id, owner, wsName, descr string
		config                   string
		then                     []domain.Event
		code                     string
		fields                   []string
	}{
		{name: "ok", id: wid, owner: owner, wsName: " Research ", descr: " Notes ", config: `{ "lang" : "en" }`,
			then: []domain.Event{created()}},
		{name: "absent config is empty object", id: wid, owner: owner, wsName: "R",
			then: []domain.Event{Created{WorkspaceID: wid, OwnerID: owner, Name: "R", Config: json.RawMessage(`{}`)}}},
		{name: "config keys sorted", id: wid, owner: owner, wsName: "R", config: `{"b":1,"a":{"y":2,"x":1.50}}`,
			then: []domain.Event{Created{WorkspaceID: wid, OwnerID: owner, Name: "R", Config: json.RawMessage(`{"a":{"x":1.50,"y":2},"b":1}`)}}},
		{name: "all invalid at once", config: `[]`,
			code: domain.CodeInvalid, fields: []string{"workspace_id", "owner_id", "name", "config"}},
		{name: "name too long", id: wid, owner: owner, wsName: strings.Repeat("n", 101),
			code: domain.CodeInvalid, fields: []string{"name"}},
		{name: "name of 100 runes", id: wid, owner: owner, wsName: strings.Repeat("ñ", 100),
			then: []domain.Event{Created{WorkspaceID: wid, OwnerID: owner, Name: strings.Repeat("ñ", 100), Config: json.RawMessage(`{}`)}}},
		{name: "description too long", id: wid, owner: owner, wsName: "R", descr: strings.Repeat("d", 2001),
			code: domain.CodeInvalid, fields: []string{"description"}},
		{name: "description with NUL", id: wid, owner: owner, wsName: "R", descr: "a\x00b",
			code: domain.CodeInvalid, fields: []string{"description"}},
		{name: "config string", id: wid, owner: owner, wsName: "R", config: `"x"`,
			code: domain.CodeInvalid, fields: []string{"config"}},
		{name: "config null", id: wid, owner: owner, wsName: "R", config: `null`,
			code: domain.CodeInvalid, fields: []string{"config"}},
		{name: "config not JSON", id: wid, owner: owner, wsName: "R", config: `{"a":`,
			code: domain.CodeInvalid, fields: []string{"config"}},
		{name: "config with escaped NUL", id: wid, owner: owner, wsName: "R", config: `{"a":["x\u0000"]}`,
			code: domain.CodeInvalid, fields: []string{"config"}},
		{name: "config key with escaped NUL", id: wid, owner: owner, wsName: "R", config: `{"\u0000":1}`,
			code: domain.CodeInvalid, fields: []string{"config"}},
		{name: "config over 16 KiB", id: wid, owner: owner, wsName: "R", config: `{"a":"` + strings.Repeat("x", domain.MaxObjectBytes) + `"}`,
			code: domain.CodeInvalid, fields: []string{"config"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg json.RawMessage
			if tt.config != "" {
				cfg = json.RawMessage(tt.config)
			}
			w, err := Create(tt.id, tt.owner, tt.wsName, tt.descr, cfg)
			var got []domain.Event
			if w != nil {
				got = w.Pending()
				if role, ok := w.MemberRole(tt.owner); !ok || role != RoleOwner || len(w.Members()) != 1 || w.OwnerID() != tt.owner {
					t.Fatalf("owner membership: %v", w.Members())
				}
			} else if err == nil {
				t.Fatal("nil workspace without error")
			}
			domaintest.CheckOutcome(t, err, tt.code, tt.fields, got, tt.then)
		})
	}
	// whitespace does not count: a padded config that is small once compact is accepted
	padded := `{"a":` + strings.Repeat(" ", 2*domain.MaxObjectBytes) + `1}`
	if _, err := Create(wid, owner, "R", "", json.RawMessage(padded)); err != nil {
		t.Fatalf("padded config rejected: %v", err)
	}
}

func TestCommands(t *testing.T) {
	base := []domain.Event{created()}
	withBob := []domain.Event{created(), MemberAdded{UserID: bob, Role: RoleEditor}}
	archived := []domain.Event{created(), Archived{}}
	tests := []domaintest.Case[*Workspace]{
		{Name: "update name only", Given: base,
			When: func(w *Workspace) error { return w.Update(new(" Lab "), new("Notes"), nil) },
			Then: []domain.Event{Updated{Name: new("Lab")}}},
		{Name: "update description to empty", Given: base,
			When: func(w *Workspace) error { return w.Update(nil, new(""), nil) },
			Then: []domain.Event{Updated{Description: new("")}}},
		{Name: "update config", Given: base,
			When: func(w *Workspace) error { return w.Update(nil, nil, json.RawMessage(`{"lang":"fr"}`)) },
			Then: []domain.Event{Updated{Config: json.RawMessage(`{"lang":"fr"}`)}}},
		{Name: "update config to empty object", Given: base,
			When: func(w *Workspace) error { return w.Update(nil, nil, json.RawMessage(`{}`)) },
			Then: []domain.Event{Updated{Config: json.RawMessage(`{}`)}}},
		{Name: "update all three", Given: base,
			When: func(w *Workspace) error { return w.Update(new("Lab"), new("New"), json.RawMessage(`{"x":true}`)) },
			Then: []domain.Event{Updated{Name: new("Lab"), Description: new("New"), Config: json.RawMessage(`{"x":true}`)}}},
		{Name: "update unchanged records nothing", Given: base,
			When: func(w *Workspace) error {
				return w.Update(new("Research "), new("Notes"), json.RawMessage(`{ "lang": "en" }`))
			}},
		{Name: "update nothing records nothing", Given: base,
			When: func(w *Workspace) error { return w.Update(nil, nil, nil) }},
		{Name: "update invalid fields all reported", Given: base,
			When: func(w *Workspace) error {
				return w.Update(new(" "), new(strings.Repeat("d", 2001)), json.RawMessage(`[1]`))
			},
			Code: domain.CodeInvalid, Fields: []string{"name", "description", "config"}},
		{Name: "update archived", Given: archived,
			When: func(w *Workspace) error { return w.Update(new("Lab"), nil, nil) },
			Code: domain.CodeConflict},
		{Name: "add member", Given: base,
			When: func(w *Workspace) error { return w.AddMember(bob, RoleViewer) },
			Then: []domain.Event{MemberAdded{UserID: bob, Role: RoleViewer}}},
		{Name: "add second owner", Given: base,
			When: func(w *Workspace) error { return w.AddMember(bob, RoleOwner) },
			Then: []domain.Event{MemberAdded{UserID: bob, Role: RoleOwner}}},
		{Name: "add member same role", Given: withBob,
			When: func(w *Workspace) error { return w.AddMember(bob, RoleEditor) },
			Code: domain.CodeConflict},
		{Name: "change member role", Given: withBob,
			When: func(w *Workspace) error { return w.AddMember(bob, RoleViewer) },
			Then: []domain.Event{MemberAdded{UserID: bob, Role: RoleViewer}}},
		{Name: "demote last owner", Given: withBob,
			When: func(w *Workspace) error { return w.AddMember(owner, RoleEditor) },
			Code: domain.CodeConflict},
		{Name: "demote an owner when another remains", Given: []domain.Event{created(), MemberAdded{UserID: bob, Role: RoleOwner}},
			When: func(w *Workspace) error { return w.AddMember(owner, RoleViewer) },
			Then: []domain.Event{MemberAdded{UserID: owner, Role: RoleViewer}}},
		{Name: "add member invalid", Given: base,
			When: func(w *Workspace) error { return w.AddMember("", "admin") },
			Code: domain.CodeInvalid, Fields: []string{"user_id", "role"}},
		{Name: "add member archived", Given: archived,
			When: func(w *Workspace) error { return w.AddMember(bob, RoleViewer) },
			Code: domain.CodeConflict},
		{Name: "remove member", Given: withBob,
			When: func(w *Workspace) error { return w.RemoveMember(bob) },
			Then: []domain.Event{MemberRemoved{UserID: bob}}},
		{Name: "remove non-member", Given: withBob,
			When: func(w *Workspace) error { return w.RemoveMember(carol) },
			Code: domain.CodeNotFound},
		{Name: "remove removed member", Given: []domain.Event{created(), MemberAdded{UserID: bob, Role: RoleEditor}, MemberRemoved{UserID: bob}},
			When: func(w *Workspace) error { return w.RemoveMember(bob) },
			Code: domain.CodeNotFound},
		{Name: "remove last owner", Given: withBob,
			When: func(w *Workspace) error { return w.RemoveMember(owner) },
			Code: domain.CodeConflict},
		{Name: "remove an owner when another remains", Given: []domain.Event{created(), MemberAdded{UserID: bob, Role: RoleOwner}},
			When: func(w *Workspace) error { return w.RemoveMember(owner) },
			Then: []domain.Event{MemberRemoved{UserID: owner}}},
		{Name: "remove member archived", Given: []domain.Event{created(), MemberAdded{UserID: bob, Role: RoleEditor}, Archived{}},
			When: func(w *Workspace) error { return w.RemoveMember(bob) },
			Code: domain.CodeConflict},
		{Name: "archive", Given: base,
			When: func(w *Workspace) error { return w.Archive() },
			Then: []domain.Event{Archived{}}},
		{Name: "archive twice", Given: archived,
			When: func(w *Workspace) error { return w.Archive() },
			Code: domain.CodeConflict},
	}
	domaintest.Run(t, func() *Workspace { return &Workspace{} }, tests)
}

func TestState(t *testing.T) {
	w := load(created(),
		Updated{Name: new("Lab"), Config: json.RawMessage(`{"x":1}`)},
		MemberAdded{UserID: bob, Role: RoleEditor},
		MemberAdded{UserID: carol, Role: RoleViewer},
		MemberAdded{UserID: bob, Role: RoleOwner},
		MemberRemoved{UserID: carol},
		Archived{})
	if w.ID() != wid || w.Name() != "Lab" || w.Description() != "Notes" || string(w.Config()) != `{"x":1}` || !w.Archived() || w.Version() != 7 {
		t.Fatalf("state: %q %q %q %s %v %d", w.ID(), w.Name(), w.Description(), w.Config(), w.Archived(), w.Version())
	}
	want := map[string]string{owner: RoleOwner, bob: RoleOwner}
	if got := w.Members(); !reflect.DeepEqual(got, want) {
		t.Fatalf("members = %v", got)
	}
	w.Members()[carol] = RoleOwner
	w.Config()[0] = '['
	if _, ok := w.MemberRole(carol); ok || string(w.Config()) != `{"x":1}` {
		t.Fatal("accessors must return copies")
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	domaintest.RoundTrip(t, Decode,
		created(),
		Updated{Name: new("Lab"), Description: new(""), Config: json.RawMessage(`{"a":"\u003cb\u003e"}`)},
		Updated{Description: new("d")},
		MemberAdded{UserID: bob, Role: RoleEditor},
		MemberRemoved{UserID: bob},
		Archived{},
	)
	data, _ := json.Marshal(Updated{Name: new("Lab")})
	if string(data) != `{"name":"Lab"}` {
		t.Fatalf("updated carries only changed fields: %s", data)
	}
	// jsonb gives back reformatted JSON; Decode restores the canonical form.
	got, err := Decode(EventCreated, 1, []byte(`{"name": "R", "config": {"b": 1, "a": "<x>"}, "owner_id": "o", "description": "", "workspace_id": "w"}`))
	if err != nil {
		t.Fatal(err)
	}
	if c := got.(Created); string(c.Config) != `{"a":"\u003cx\u003e","b":1}` {
		t.Fatalf("config not canonical: %s", c.Config)
	}
	domaintest.Unknown(t, Decode, EventArchived)
	if _, err := Decode(EventCreated, 1, []byte(`{"config":[]}`)); err == nil {
		t.Fatal("non-object config decoded")
	}
}

func TestLoadFromStoredEvents(t *testing.T) {
	w, err := Create(wid, owner, "Research", "Notes", json.RawMessage(`{"lang":"en","n":[1,2]}`))
	domaintest.Must(t, err)
	domaintest.Must(t, w.Update(new("Lab"), nil, json.RawMessage(`{"lang":"fr"}`)))
	domaintest.Must(t, w.AddMember(bob, RoleEditor))
	domaintest.Must(t, w.AddMember(carol, RoleOwner))
	domaintest.Must(t, w.AddMember(bob, RoleViewer))
	domaintest.Must(t, w.RemoveMember(owner))
	domaintest.Must(t, w.Archive())

	loaded := domaintest.Reload(t, w, &Workspace{}, Decode)
	if loaded.Version() != 7 || !reflect.DeepEqual(loaded.Members(), map[string]string{bob: RoleViewer, carol: RoleOwner}) || loaded.Name() != "Lab" {
		t.Fatalf("accessors: %d %v %q", loaded.Version(), loaded.Members(), loaded.Name())
	}
}

func TestStreamID(t *testing.T) { domaintest.StreamID(t, StreamID, StreamType) }
