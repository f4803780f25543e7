package workspace

import (
	"encoding/json"
	"errors"
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

func ptr(s string) *string { return &s }

func load(events ...domain.Event) *Workspace {
	w := &Workspace{}
	for _, e := range events {
		w.Apply(e)
	}
	return w
}

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
	tests := []struct {
		name   string
		given  []domain.Event
		when   func(*Workspace) error
		then   []domain.Event
		code   string
		fields []string
	}{
		{name: "update name only", given: base,
			when: func(w *Workspace) error { return w.Update(ptr(" Lab "), ptr("Notes"), nil) },
			then: []domain.Event{Updated{Name: ptr("Lab")}}},
		{name: "update description to empty", given: base,
			when: func(w *Workspace) error { return w.Update(nil, ptr(""), nil) },
			then: []domain.Event{Updated{Description: ptr("")}}},
		{name: "update config", given: base,
			when: func(w *Workspace) error { return w.Update(nil, nil, json.RawMessage(`{"lang":"fr"}`)) },
			then: []domain.Event{Updated{Config: json.RawMessage(`{"lang":"fr"}`)}}},
		{name: "update config to empty object", given: base,
			when: func(w *Workspace) error { return w.Update(nil, nil, json.RawMessage(`{}`)) },
			then: []domain.Event{Updated{Config: json.RawMessage(`{}`)}}},
		{name: "update all three", given: base,
			when: func(w *Workspace) error { return w.Update(ptr("Lab"), ptr("New"), json.RawMessage(`{"x":true}`)) },
			then: []domain.Event{Updated{Name: ptr("Lab"), Description: ptr("New"), Config: json.RawMessage(`{"x":true}`)}}},
		{name: "update unchanged records nothing", given: base,
			when: func(w *Workspace) error {
				return w.Update(ptr("Research "), ptr("Notes"), json.RawMessage(`{ "lang": "en" }`))
			}},
		{name: "update nothing records nothing", given: base,
			when: func(w *Workspace) error { return w.Update(nil, nil, nil) }},
		{name: "update invalid fields all reported", given: base,
			when: func(w *Workspace) error {
				return w.Update(ptr(" "), ptr(strings.Repeat("d", 2001)), json.RawMessage(`[1]`))
			},
			code: domain.CodeInvalid, fields: []string{"name", "description", "config"}},
		{name: "update archived", given: archived,
			when: func(w *Workspace) error { return w.Update(ptr("Lab"), nil, nil) },
			code: domain.CodeConflict},
		{name: "add member", given: base,
			when: func(w *Workspace) error { return w.AddMember(bob, RoleViewer) },
			then: []domain.Event{MemberAdded{UserID: bob, Role: RoleViewer}}},
		{name: "add second owner", given: base,
			when: func(w *Workspace) error { return w.AddMember(bob, RoleOwner) },
			then: []domain.Event{MemberAdded{UserID: bob, Role: RoleOwner}}},
		{name: "add member same role", given: withBob,
			when: func(w *Workspace) error { return w.AddMember(bob, RoleEditor) },
			code: domain.CodeConflict},
		{name: "change member role", given: withBob,
			when: func(w *Workspace) error { return w.AddMember(bob, RoleViewer) },
			then: []domain.Event{MemberAdded{UserID: bob, Role: RoleViewer}}},
		{name: "demote last owner", given: withBob,
			when: func(w *Workspace) error { return w.AddMember(owner, RoleEditor) },
			code: domain.CodeConflict},
		{name: "demote an owner when another remains", given: []domain.Event{created(), MemberAdded{UserID: bob, Role: RoleOwner}},
			when: func(w *Workspace) error { return w.AddMember(owner, RoleViewer) },
			then: []domain.Event{MemberAdded{UserID: owner, Role: RoleViewer}}},
		{name: "add member invalid", given: base,
			when: func(w *Workspace) error { return w.AddMember("", "admin") },
			code: domain.CodeInvalid, fields: []string{"user_id", "role"}},
		{name: "add member archived", given: archived,
			when: func(w *Workspace) error { return w.AddMember(bob, RoleViewer) },
			code: domain.CodeConflict},
		{name: "remove member", given: withBob,
			when: func(w *Workspace) error { return w.RemoveMember(bob) },
			then: []domain.Event{MemberRemoved{UserID: bob}}},
		{name: "remove non-member", given: withBob,
			when: func(w *Workspace) error { return w.RemoveMember(carol) },
			code: domain.CodeNotFound},
		{name: "remove removed member", given: []domain.Event{created(), MemberAdded{UserID: bob, Role: RoleEditor}, MemberRemoved{UserID: bob}},
			when: func(w *Workspace) error { return w.RemoveMember(bob) },
			code: domain.CodeNotFound},
		{name: "remove last owner", given: withBob,
			when: func(w *Workspace) error { return w.RemoveMember(owner) },
			code: domain.CodeConflict},
		{name: "remove an owner when another remains", given: []domain.Event{created(), MemberAdded{UserID: bob, Role: RoleOwner}},
			when: func(w *Workspace) error { return w.RemoveMember(owner) },
			then: []domain.Event{MemberRemoved{UserID: owner}}},
		{name: "remove member archived", given: []domain.Event{created(), MemberAdded{UserID: bob, Role: RoleEditor}, Archived{}},
			when: func(w *Workspace) error { return w.RemoveMember(bob) },
			code: domain.CodeConflict},
		{name: "archive", given: base,
			when: func(w *Workspace) error { return w.Archive() },
			then: []domain.Event{Archived{}}},
		{name: "archive twice", given: archived,
			when: func(w *Workspace) error { return w.Archive() },
			code: domain.CodeConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := load(tt.given...)
			err := tt.when(w)
			domaintest.CheckOutcome(t, err, tt.code, tt.fields, w.Pending(), tt.then)
			if w.Version() != len(tt.given)+len(tt.then) {
				t.Fatalf("version = %d, want %d", w.Version(), len(tt.given)+len(tt.then))
			}
		})
	}
}

func TestState(t *testing.T) {
	w := load(created(),
		Updated{Name: ptr("Lab"), Config: json.RawMessage(`{"x":1}`)},
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

func TestStreamID(t *testing.T) {
	if got := StreamID("42"); got != "workspace-42" {
		t.Fatalf("StreamID = %q", got)
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	events := []domain.Event{
		created(),
		Updated{Name: ptr("Lab"), Description: ptr(""), Config: json.RawMessage(`{"a":"<b>"}`)},
		Updated{Description: ptr("d")},
		MemberAdded{UserID: bob, Role: RoleEditor},
		MemberRemoved{UserID: bob},
		Archived{},
	}
	for _, e := range events {
		e = canonical(t, e)
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(e.EventType(), domain.SchemaVersion(e), data)
		if err != nil {
			t.Fatalf("Decode(%s): %v", e.EventType(), err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("Decode(%s) = %#v, want %#v", e.EventType(), got, e)
		}
	}
	data, _ := json.Marshal(Updated{Name: ptr("Lab")})
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
	if _, err := Decode("workspace.deleted", 1, []byte(`{}`)); !errors.Is(err, domain.ErrUnknownEvent) {
		t.Fatalf("unknown type: %v", err)
	}
	if _, err := Decode(EventArchived, 2, []byte(`{}`)); !errors.Is(err, domain.ErrUnknownEvent) {
		t.Fatalf("unknown version: %v", err)
	}
	if _, err := Decode(EventCreated, 1, []byte(`{"config":[]}`)); err == nil {
		t.Fatal("non-object config decoded")
	}
}

// canonical puts an event's config into canonical form, as recording does.
func canonical(t *testing.T, e domain.Event) domain.Event {
	t.Helper()
	var err error
	switch x := e.(type) {
	case Created:
		x.Config, err = domain.CanonicalObject(x.Config)
		e = x
	case Updated:
		if x.Config != nil {
			x.Config, err = domain.CanonicalObject(x.Config)
		}
		e = x
	}
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestLoadFromStoredEvents(t *testing.T) {
	w, err := Create(wid, owner, "Research", "Notes", json.RawMessage(`{"lang":"en","n":[1,2]}`))
	if err != nil {
		t.Fatal(err)
	}
	must(t, w.Update(ptr("Lab"), nil, json.RawMessage(`{"lang":"fr"}`)))
	must(t, w.AddMember(bob, RoleEditor))
	must(t, w.AddMember(carol, RoleOwner))
	must(t, w.AddMember(bob, RoleViewer))
	must(t, w.RemoveMember(owner))
	must(t, w.Archive())

	loaded := &Workspace{}
	for _, e := range w.Pending() {
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := Decode(e.EventType(), domain.SchemaVersion(e), data)
		if err != nil {
			t.Fatal(err)
		}
		loaded.Apply(stored)
	}
	if loaded.Version() != 7 || len(loaded.Pending()) != 0 {
		t.Fatalf("loaded version %d pending %d", loaded.Version(), len(loaded.Pending()))
	}
	w.ClearPending()
	if !reflect.DeepEqual(w, loaded) {
		t.Fatalf("loaded state differs:\n%#v\n%#v", w, loaded)
	}
	if !reflect.DeepEqual(loaded.Members(), map[string]string{bob: RoleViewer, carol: RoleOwner}) || loaded.Name() != "Lab" {
		t.Fatalf("accessors: %v %q", loaded.Members(), loaded.Name())
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
