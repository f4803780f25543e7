package conversation

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
	cid = "c-1"
	wid = "w-1"
	uid = "u-1"
	mid = "m-1"
)

func created() Created {
	return Created{ConversationID: cid, WorkspaceID: wid, CreatedBy: uid, Title: "Plans", Modality: ModalityText,
		Metadata: json.RawMessage(`{"a":{"x":1,"y":2},"tag":"t"}`)}
}

func posted(id string) MessagePosted {
	return MessagePosted{MessageID: id, AuthorID: uid, Role: RoleUser, Content: "hello", Metadata: json.RawMessage(`{}`)}
}

func ptr(s string) *string { return &s }

func load(events ...domain.Event) *Conversation {
	c := &Conversation{}
	for _, e := range events {
		c.Apply(e)
	}
	return c
}

func TestNew(t *testing.T) {
	tests := []struct {
		name                            string
		id, ws, by, title, modality, md string
		then                            []domain.Event
		code                            string
		fields                          []string
	}{
		{name: "ok", id: cid, ws: wid, by: uid, title: " Plans ", md: `{"tag":"t","a":{"y":2,"x":1}}`,
			then: []domain.Event{created()}},
		{name: "defaults", id: cid, ws: wid, by: uid, title: "Plans",
			then: []domain.Event{Created{ConversationID: cid, WorkspaceID: wid, CreatedBy: uid, Title: "Plans", Modality: ModalityText, Metadata: json.RawMessage(`{}`)}}},
		{name: "voice", id: cid, ws: wid, by: uid, title: "Call", modality: ModalityVoice, md: ` {} `,
			then: []domain.Event{Created{ConversationID: cid, WorkspaceID: wid, CreatedBy: uid, Title: "Call", Modality: ModalityVoice, Metadata: json.RawMessage(`{}`)}}},
		{name: "multimodal, 200-rune title", id: cid, ws: wid, by: uid, title: strings.Repeat("ü", 200), modality: ModalityMultimodal,
			then: []domain.Event{Created{ConversationID: cid, WorkspaceID: wid, CreatedBy: uid, Title: strings.Repeat("ü", 200), Modality: ModalityMultimodal, Metadata: json.RawMessage(`{}`)}}},
		{name: "everything invalid", modality: "video", md: `[]`,
			code: domain.CodeInvalid, fields: []string{"conversation_id", "workspace_id", "created_by", "title", "modality", "metadata"}},
		{name: "title 201 runes", id: cid, ws: wid, by: uid, title: strings.Repeat("ü", 201),
			code: domain.CodeInvalid, fields: []string{"title"}},
		{name: "title with NUL", id: cid, ws: wid, by: uid, title: "a\x00",
			code: domain.CodeInvalid, fields: []string{"title"}},
		{name: "title invalid UTF-8", id: cid, ws: wid, by: uid, title: "\xc3\x28",
			code: domain.CodeInvalid, fields: []string{"title"}},
		{name: "metadata null", id: cid, ws: wid, by: uid, title: "t", md: `null`,
			code: domain.CodeInvalid, fields: []string{"metadata"}},
		{name: "metadata with NUL", id: cid, ws: wid, by: uid, title: "t", md: `{"a":"\u0000"}`,
			code: domain.CodeInvalid, fields: []string{"metadata"}},
		{name: "metadata too big", id: cid, ws: wid, by: uid, title: "t", md: `{"a":"` + strings.Repeat("x", domain.MaxObjectBytes) + `"}`,
			code: domain.CodeInvalid, fields: []string{"metadata"}},
		{name: "metadata trailing data", id: cid, ws: wid, by: uid, title: "t", md: `{} {}`,
			code: domain.CodeInvalid, fields: []string{"metadata"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var md json.RawMessage
			if tt.md != "" {
				md = json.RawMessage(tt.md)
			}
			c, err := New(tt.id, tt.ws, tt.by, tt.title, tt.modality, md)
			var got []domain.Event
			if c != nil {
				got = c.Pending()
				if c.Version() != 1 || c.ID() != tt.id || c.MessageCount() != 0 {
					t.Fatalf("version %d id %q", c.Version(), c.ID())
				}
			} else if err == nil {
				t.Fatal("nil conversation without error")
			}
			domaintest.CheckOutcome(t, err, tt.code, tt.fields, got, tt.then)
		})
	}
}

func TestCommands(t *testing.T) {
	base := []domain.Event{created()}
	withMsg := []domain.Event{created(), posted(mid)}
	archived := []domain.Event{created(), posted(mid), Archived{}}
	tests := []struct {
		name   string
		given  []domain.Event
		when   func(*Conversation) error
		then   []domain.Event
		code   string
		fields []string
	}{
		// Update
		{name: "update title", given: base,
			when: func(c *Conversation) error { return c.Update(ptr(" Roadmap "), nil) },
			then: []domain.Event{Updated{Title: ptr("Roadmap")}}},
		{name: "update merges metadata (RFC 7386)", given: base,
			when: func(c *Conversation) error {
				return c.Update(nil, json.RawMessage(`{"a":{"x":null,"z":3},"tag":null,"new":[1]}`))
			},
			then: []domain.Event{Updated{Metadata: json.RawMessage(`{"a":{"y":2,"z":3},"new":[1]}`)}}},
		{name: "update replaces object by scalar", given: base,
			when: func(c *Conversation) error { return c.Update(nil, json.RawMessage(`{"a":"flat"}`)) },
			then: []domain.Event{Updated{Metadata: json.RawMessage(`{"a":"flat","tag":"t"}`)}}},
		{name: "update title and metadata", given: base,
			when: func(c *Conversation) error { return c.Update(ptr("R"), json.RawMessage(`{"tag":"u"}`)) },
			then: []domain.Event{Updated{Title: ptr("R"), Metadata: json.RawMessage(`{"a":{"x":1,"y":2},"tag":"u"}`)}}},
		{name: "update delete everything", given: base,
			when: func(c *Conversation) error { return c.Update(nil, json.RawMessage(`{"a":null,"tag":null}`)) },
			then: []domain.Event{Updated{Metadata: json.RawMessage(`{}`)}}},
		{name: "update same values records nothing", given: base,
			when: func(c *Conversation) error {
				return c.Update(ptr("Plans"), json.RawMessage(`{"tag":"t","a":{"x":1},"gone":null}`))
			}},
		{name: "update empty patch records nothing", given: base,
			when: func(c *Conversation) error { return c.Update(nil, json.RawMessage(`{}`)) }},
		{name: "update nothing records nothing", given: base,
			when: func(c *Conversation) error { return c.Update(nil, nil) }},
		{name: "update invalid title and non-object patch", given: base,
			when: func(c *Conversation) error { return c.Update(ptr(""), json.RawMessage(`null`)) },
			code: domain.CodeInvalid, fields: []string{"title", "metadata"}},
		{name: "update merged metadata too big", given: []domain.Event{created(),
			Updated{Metadata: json.RawMessage(`{"big":"` + strings.Repeat("x", domain.MaxObjectBytes-20) + `"}`)}},
			when: func(c *Conversation) error {
				return c.Update(nil, json.RawMessage(`{"more":"`+strings.Repeat("y", 100)+`"}`))
			},
			code: domain.CodeInvalid, fields: []string{"metadata"}},
		{name: "update archived", given: archived,
			when: func(c *Conversation) error { return c.Update(ptr("R"), nil) },
			code: domain.CodeConflict},
		// PostMessage
		{name: "post message with defaults", given: base,
			when: func(c *Conversation) error { return c.PostMessage(mid, uid, "", "hello", nil) },
			then: []domain.Event{posted(mid)}},
		{name: "post assistant message, content kept as given", given: base,
			when: func(c *Conversation) error {
				return c.PostMessage(mid, "assistant-1", RoleAssistant, "  indented\n", json.RawMessage(`{"model":"m"}`))
			},
			then: []domain.Event{MessagePosted{MessageID: mid, AuthorID: "assistant-1", Role: RoleAssistant, Content: "  indented\n", Metadata: json.RawMessage(`{"model":"m"}`)}}},
		{name: "post system message of 32000 runes", given: base,
			when: func(c *Conversation) error {
				return c.PostMessage(mid, uid, RoleSystem, strings.Repeat("é", 32000), nil)
			},
			then: []domain.Event{MessagePosted{MessageID: mid, AuthorID: uid, Role: RoleSystem, Content: strings.Repeat("é", 32000), Metadata: json.RawMessage(`{}`)}}},
		{name: "post content too long", given: base,
			when: func(c *Conversation) error { return c.PostMessage(mid, uid, "", strings.Repeat("é", 32001), nil) },
			code: domain.CodeInvalid, fields: []string{"content"}},
		{name: "post whitespace only", given: base,
			when: func(c *Conversation) error { return c.PostMessage(mid, uid, "", " \t\n ", nil) },
			code: domain.CodeInvalid, fields: []string{"content"}},
		{name: "post content with NUL", given: base,
			when: func(c *Conversation) error { return c.PostMessage(mid, uid, "", "a\x00b", nil) },
			code: domain.CodeInvalid, fields: []string{"content"}},
		{name: "post content invalid UTF-8", given: base,
			when: func(c *Conversation) error { return c.PostMessage(mid, uid, "", "a\xffb", nil) },
			code: domain.CodeInvalid, fields: []string{"content"}},
		{name: "post everything invalid", given: base,
			when: func(c *Conversation) error { return c.PostMessage("", "", "robot", "", json.RawMessage(`"s"`)) },
			code: domain.CodeInvalid, fields: []string{"message_id", "author_id", "role", "content", "metadata"}},
		{name: "post duplicate message id", given: withMsg,
			when: func(c *Conversation) error { return c.PostMessage(mid, uid, "", "again", nil) },
			code: domain.CodeConflict},
		{name: "post archived", given: archived,
			when: func(c *Conversation) error { return c.PostMessage("m-2", uid, "", "hello", nil) },
			code: domain.CodeConflict},
		// DecideRouting
		{name: "route respond", given: withMsg,
			when: func(c *Conversation) error { return c.DecideRouting(mid, ActionRespond, "", 3, " greeting ") },
			then: []domain.Event{RoutingDecided{MessageID: mid, Action: ActionRespond, Priority: 3, Reason: "greeting"}}},
		{name: "route delegate", given: withMsg,
			when: func(c *Conversation) error { return c.DecideRouting(mid, ActionDelegate, "calendar", 1, "") },
			then: []domain.Event{RoutingDecided{MessageID: mid, Action: ActionDelegate, Expert: "calendar", Priority: 1}}},
		{name: "route process and ignore at priority 5", given: []domain.Event{created(), posted(mid), posted("m-2")},
			when: func(c *Conversation) error {
				if err := c.DecideRouting(mid, ActionProcess, "", 5, ""); err != nil {
					return err
				}
				return c.DecideRouting("m-2", ActionIgnore, "", 5, "noise")
			},
			then: []domain.Event{RoutingDecided{MessageID: mid, Action: ActionProcess, Priority: 5},
				RoutingDecided{MessageID: "m-2", Action: ActionIgnore, Priority: 5, Reason: "noise"}}},
		{name: "route delegate without expert", given: withMsg,
			when: func(c *Conversation) error { return c.DecideRouting(mid, ActionDelegate, "  ", 2, "") },
			code: domain.CodeInvalid, fields: []string{"expert"}},
		{name: "route priority 0", given: withMsg,
			when: func(c *Conversation) error { return c.DecideRouting(mid, ActionRespond, "", 0, "") },
			code: domain.CodeInvalid, fields: []string{"priority"}},
		{name: "route priority 6", given: withMsg,
			when: func(c *Conversation) error { return c.DecideRouting(mid, ActionRespond, "", 6, "") },
			code: domain.CodeInvalid, fields: []string{"priority"}},
		{name: "route reason 501 runes", given: withMsg,
			when: func(c *Conversation) error {
				return c.DecideRouting(mid, ActionRespond, "", 1, strings.Repeat("r", 501))
			},
			code: domain.CodeInvalid, fields: []string{"reason"}},
		{name: "route reason 500 runes", given: withMsg,
			when: func(c *Conversation) error {
				return c.DecideRouting(mid, ActionRespond, "", 1, strings.Repeat("ř", 500))
			},
			then: []domain.Event{RoutingDecided{MessageID: mid, Action: ActionRespond, Priority: 1, Reason: strings.Repeat("ř", 500)}}},
		{name: "route everything invalid", given: withMsg,
			when: func(c *Conversation) error { return c.DecideRouting("", "shout", "\x00", 9, "\xff") },
			code: domain.CodeInvalid, fields: []string{"message_id", "action", "expert", "priority", "reason"}},
		{name: "route unknown message", given: withMsg,
			when: func(c *Conversation) error { return c.DecideRouting("m-404", ActionRespond, "", 1, "") },
			code: domain.CodeNotFound},
		{name: "route twice", given: []domain.Event{created(), posted(mid), RoutingDecided{MessageID: mid, Action: ActionIgnore, Priority: 1}},
			when: func(c *Conversation) error { return c.DecideRouting(mid, ActionRespond, "", 1, "") },
			code: domain.CodeConflict},
		{name: "route archived", given: archived,
			when: func(c *Conversation) error { return c.DecideRouting(mid, ActionRespond, "", 1, "") },
			code: domain.CodeConflict},
		// Archive
		{name: "archive", given: withMsg,
			when: func(c *Conversation) error { return c.Archive() },
			then: []domain.Event{Archived{}}},
		{name: "archive twice", given: archived,
			when: func(c *Conversation) error { return c.Archive() },
			code: domain.CodeConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := load(tt.given...)
			err := tt.when(c)
			domaintest.CheckOutcome(t, err, tt.code, tt.fields, c.Pending(), tt.then)
			if c.Version() != len(tt.given)+len(tt.then) {
				t.Fatalf("version = %d, want %d", c.Version(), len(tt.given)+len(tt.then))
			}
		})
	}
}

func TestState(t *testing.T) {
	c := load(created(), Updated{Title: ptr("Roadmap"), Metadata: json.RawMessage(`{"k":1}`)},
		posted("m-1"), posted("m-2"), RoutingDecided{MessageID: "m-1", Action: ActionRespond, Priority: 1},
		RoutingDecided{MessageID: "m-unknown", Action: ActionRespond, Priority: 1}, Archived{})
	if c.ID() != cid || c.WorkspaceID() != wid || c.CreatedBy() != uid || c.Title() != "Roadmap" ||
		c.Modality() != ModalityText || string(c.Metadata()) != `{"k":1}` || !c.Archived() || c.MessageCount() != 2 || c.Version() != 7 {
		t.Fatalf("state: %+v", c)
	}
	c.Metadata()[0] = '['
	if string(c.Metadata()) != `{"k":1}` {
		t.Fatal("Metadata must return a copy")
	}
}

func TestStreamID(t *testing.T) {
	if got := StreamID("42"); got != "conversation-42" {
		t.Fatalf("StreamID = %q", got)
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	events := []domain.Event{
		created(),
		Updated{Title: ptr("R"), Metadata: json.RawMessage(`{"k":"<&>"}`)},
		Updated{Title: ptr("")},
		MessagePosted{MessageID: mid, AuthorID: uid, Role: RoleAssistant, Content: "  hi\n", Metadata: json.RawMessage(`{"n":1e3}`)},
		RoutingDecided{MessageID: mid, Action: ActionDelegate, Expert: "calendar", Priority: 2, Reason: "date"},
		RoutingDecided{MessageID: mid, Action: ActionIgnore, Priority: 5},
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
	data, _ := json.Marshal(RoutingDecided{MessageID: mid, Action: ActionIgnore, Priority: 1})
	if strings.Contains(string(data), "expert") {
		t.Fatalf("empty expert must be omitted: %s", data)
	}
	got, err := Decode(EventMessagePosted, 1, []byte(`{"role": "user", "content": "x", "metadata": {"z": null, "a": [1, 2]}, "author_id": "u", "message_id": "m"}`))
	if err != nil {
		t.Fatal(err)
	}
	if m := got.(MessagePosted); string(m.Metadata) != `{"a":[1,2],"z":null}` {
		t.Fatalf("metadata not canonical: %s", m.Metadata)
	}
	if _, err := Decode("conversation.deleted", 1, []byte(`{}`)); !errors.Is(err, domain.ErrUnknownEvent) {
		t.Fatalf("unknown type: %v", err)
	}
	if _, err := Decode(EventCreated, 0, []byte(`{}`)); !errors.Is(err, domain.ErrUnknownEvent) {
		t.Fatalf("unknown version: %v", err)
	}
	if _, err := Decode(EventRoutingDecided, 1, []byte(`{"priority":"high"}`)); err == nil {
		t.Fatal("bad JSON decoded")
	}
}

func canonical(t *testing.T, e domain.Event) domain.Event {
	t.Helper()
	var err error
	switch x := e.(type) {
	case Created:
		x.Metadata, err = domain.CanonicalObject(x.Metadata)
		e = x
	case Updated:
		if x.Metadata != nil {
			x.Metadata, err = domain.CanonicalObject(x.Metadata)
		}
		e = x
	case MessagePosted:
		x.Metadata, err = domain.CanonicalObject(x.Metadata)
		e = x
	}
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestLoadFromStoredEvents(t *testing.T) {
	c, err := New(cid, wid, uid, "Plans", "", json.RawMessage(`{"a":{"b":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	must(t, c.Update(ptr("Roadmap"), json.RawMessage(`{"a":{"c":2}}`)))
	must(t, c.PostMessage("m-1", uid, "", "hello", json.RawMessage(`{"lang":"en"}`)))
	must(t, c.PostMessage("m-2", "bot", RoleAssistant, "hi there", nil))
	must(t, c.DecideRouting("m-1", ActionDelegate, "greeter", 2, "a greeting"))
	must(t, c.Archive())

	loaded := &Conversation{}
	for _, e := range c.Pending() {
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
	if loaded.Version() != 6 || len(loaded.Pending()) != 0 {
		t.Fatalf("loaded version %d pending %d", loaded.Version(), len(loaded.Pending()))
	}
	c.ClearPending()
	if !reflect.DeepEqual(c, loaded) {
		t.Fatalf("loaded state differs:\n%#v\n%#v", c, loaded)
	}
	if string(loaded.Metadata()) != `{"a":{"b":1,"c":2}}` || loaded.MessageCount() != 2 || loaded.Title() != "Roadmap" {
		t.Fatalf("accessors: %s %d %q", loaded.Metadata(), loaded.MessageCount(), loaded.Title())
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
