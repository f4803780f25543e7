package conversation

import (
	"encoding/json"
	"github.com/engramhq/engram/domain/domaintest"
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

func load(events ...domain.Event) *Conversation { return domaintest.Load(&Conversation{}, events...) }

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
	tests := []domaintest.Case[*Conversation]{
		// Update
		{Name: "update title", Given: base,
			When: func(c *Conversation) error { return c.Update(new(" Roadmap "), nil) },
			Then: []domain.Event{Updated{Title: new("Roadmap")}}},
		{Name: "update merges metadata (RFC 7386)", Given: base,
			When: func(c *Conversation) error {
				return c.Update(nil, json.RawMessage(`{"a":{"x":null,"z":3},"tag":null,"new":[1]}`))
			},
			Then: []domain.Event{Updated{Metadata: json.RawMessage(`{"a":{"y":2,"z":3},"new":[1]}`)}}},
		{Name: "update replaces object by scalar", Given: base,
			When: func(c *Conversation) error { return c.Update(nil, json.RawMessage(`{"a":"flat"}`)) },
			Then: []domain.Event{Updated{Metadata: json.RawMessage(`{"a":"flat","tag":"t"}`)}}},
		{Name: "update title and metadata", Given: base,
			When: func(c *Conversation) error { return c.Update(new("R"), json.RawMessage(`{"tag":"u"}`)) },
			Then: []domain.Event{Updated{Title: new("R"), Metadata: json.RawMessage(`{"a":{"x":1,"y":2},"tag":"u"}`)}}},
		{Name: "update delete everything", Given: base,
			When: func(c *Conversation) error { return c.Update(nil, json.RawMessage(`{"a":null,"tag":null}`)) },
			Then: []domain.Event{Updated{Metadata: json.RawMessage(`{}`)}}},
		{Name: "update same values records nothing", Given: base,
			When: func(c *Conversation) error {
				return c.Update(new("Plans"), json.RawMessage(`{"tag":"t","a":{"x":1},"gone":null}`))
			}},
		{Name: "update empty patch records nothing", Given: base,
			When: func(c *Conversation) error { return c.Update(nil, json.RawMessage(`{}`)) }},
		{Name: "update nothing records nothing", Given: base,
			When: func(c *Conversation) error { return c.Update(nil, nil) }},
		{Name: "update invalid title and non-object patch", Given: base,
			When: func(c *Conversation) error { return c.Update(new(""), json.RawMessage(`null`)) },
			Code: domain.CodeInvalid, Fields: []string{"title", "metadata"}},
		{Name: "update merged metadata too big", Given: []domain.Event{created(),
			Updated{Metadata: json.RawMessage(`{"big":"` + strings.Repeat("x", domain.MaxObjectBytes-20) + `"}`)}},
			When: func(c *Conversation) error {
				return c.Update(nil, json.RawMessage(`{"more":"`+strings.Repeat("y", 100)+`"}`))
			},
			Code: domain.CodeInvalid, Fields: []string{"metadata"}},
		{Name: "update archived", Given: archived,
			When: func(c *Conversation) error { return c.Update(new("R"), nil) },
			Code: domain.CodeConflict},
		// PostMessage
		{Name: "post message with defaults", Given: base,
			When: func(c *Conversation) error { return c.PostMessage(mid, uid, "", "hello", nil) },
			Then: []domain.Event{posted(mid)}},
		{Name: "post assistant message, content kept as given", Given: base,
			When: func(c *Conversation) error {
				return c.PostMessage(mid, "assistant-1", RoleAssistant, "  indented\n", json.RawMessage(`{"model":"m"}`))
			},
			Then: []domain.Event{MessagePosted{MessageID: mid, AuthorID: "assistant-1", Role: RoleAssistant, Content: "  indented\n", Metadata: json.RawMessage(`{"model":"m"}`)}}},
		{Name: "post system message of 32000 runes", Given: base,
			When: func(c *Conversation) error {
				return c.PostMessage(mid, uid, RoleSystem, strings.Repeat("é", 32000), nil)
			},
			Then: []domain.Event{MessagePosted{MessageID: mid, AuthorID: uid, Role: RoleSystem, Content: strings.Repeat("é", 32000), Metadata: json.RawMessage(`{}`)}}},
		{Name: "post content too long", Given: base,
			When: func(c *Conversation) error { return c.PostMessage(mid, uid, "", strings.Repeat("é", 32001), nil) },
			Code: domain.CodeInvalid, Fields: []string{"content"}},
		{Name: "post whitespace only", Given: base,
			When: func(c *Conversation) error { return c.PostMessage(mid, uid, "", " \t\n ", nil) },
			Code: domain.CodeInvalid, Fields: []string{"content"}},
		{Name: "post content with NUL", Given: base,
			When: func(c *Conversation) error { return c.PostMessage(mid, uid, "", "a\x00b", nil) },
			Code: domain.CodeInvalid, Fields: []string{"content"}},
		{Name: "post content invalid UTF-8", Given: base,
			When: func(c *Conversation) error { return c.PostMessage(mid, uid, "", "a\xffb", nil) },
			Code: domain.CodeInvalid, Fields: []string{"content"}},
		{Name: "post everything invalid", Given: base,
			When: func(c *Conversation) error { return c.PostMessage("", "", "robot", "", json.RawMessage(`"s"`)) },
			Code: domain.CodeInvalid, Fields: []string{"message_id", "author_id", "role", "content", "metadata"}},
		{Name: "post duplicate message id", Given: withMsg,
			When: func(c *Conversation) error { return c.PostMessage(mid, uid, "", "again", nil) },
			Code: domain.CodeConflict},
		{Name: "post archived", Given: archived,
			When: func(c *Conversation) error { return c.PostMessage("m-2", uid, "", "hello", nil) },
			Code: domain.CodeConflict},
		// DecideRouting
		{Name: "route respond", Given: withMsg,
			When: func(c *Conversation) error { return c.DecideRouting(mid, ActionRespond, "", 3, " greeting ") },
			Then: []domain.Event{RoutingDecided{MessageID: mid, Action: ActionRespond, Priority: 3, Reason: "greeting"}}},
		{Name: "route delegate", Given: withMsg,
			When: func(c *Conversation) error { return c.DecideRouting(mid, ActionDelegate, "calendar", 1, "") },
			Then: []domain.Event{RoutingDecided{MessageID: mid, Action: ActionDelegate, Expert: "calendar", Priority: 1}}},
		{Name: "route process and ignore at priority 5", Given: []domain.Event{created(), posted(mid), posted("m-2")},
			When: func(c *Conversation) error {
				if err := c.DecideRouting(mid, ActionProcess, "", 5, ""); err != nil {
					return err
				}
				return c.DecideRouting("m-2", ActionIgnore, "", 5, "noise")
			},
			Then: []domain.Event{RoutingDecided{MessageID: mid, Action: ActionProcess, Priority: 5},
				RoutingDecided{MessageID: "m-2", Action: ActionIgnore, Priority: 5, Reason: "noise"}}},
		{Name: "route delegate without expert", Given: withMsg,
			When: func(c *Conversation) error { return c.DecideRouting(mid, ActionDelegate, "  ", 2, "") },
			Code: domain.CodeInvalid, Fields: []string{"expert"}},
		{Name: "route priority 0", Given: withMsg,
			When: func(c *Conversation) error { return c.DecideRouting(mid, ActionRespond, "", 0, "") },
			Code: domain.CodeInvalid, Fields: []string{"priority"}},
		{Name: "route priority 6", Given: withMsg,
			When: func(c *Conversation) error { return c.DecideRouting(mid, ActionRespond, "", 6, "") },
			Code: domain.CodeInvalid, Fields: []string{"priority"}},
		{Name: "route reason 501 runes", Given: withMsg,
			When: func(c *Conversation) error {
				return c.DecideRouting(mid, ActionRespond, "", 1, strings.Repeat("r", 501))
			},
			Code: domain.CodeInvalid, Fields: []string{"reason"}},
		{Name: "route reason 500 runes", Given: withMsg,
			When: func(c *Conversation) error {
				return c.DecideRouting(mid, ActionRespond, "", 1, strings.Repeat("ř", 500))
			},
			Then: []domain.Event{RoutingDecided{MessageID: mid, Action: ActionRespond, Priority: 1, Reason: strings.Repeat("ř", 500)}}},
		{Name: "route everything invalid", Given: withMsg,
			When: func(c *Conversation) error { return c.DecideRouting("", "shout", "\x00", 9, "\xff") },
			Code: domain.CodeInvalid, Fields: []string{"message_id", "action", "expert", "priority", "reason"}},
		{Name: "route unknown message", Given: withMsg,
			When: func(c *Conversation) error { return c.DecideRouting("m-404", ActionRespond, "", 1, "") },
			Code: domain.CodeNotFound},
		{Name: "route twice", Given: []domain.Event{created(), posted(mid), RoutingDecided{MessageID: mid, Action: ActionIgnore, Priority: 1}},
			When: func(c *Conversation) error { return c.DecideRouting(mid, ActionRespond, "", 1, "") },
			Code: domain.CodeConflict},
		{Name: "route archived", Given: archived,
			When: func(c *Conversation) error { return c.DecideRouting(mid, ActionRespond, "", 1, "") },
			Code: domain.CodeConflict},
		// Archive
		{Name: "archive", Given: withMsg,
			When: func(c *Conversation) error { return c.Archive() },
			Then: []domain.Event{Archived{}}},
		{Name: "archive twice", Given: archived,
			When: func(c *Conversation) error { return c.Archive() },
			Code: domain.CodeConflict},
	}
	domaintest.Run(t, func() *Conversation { return &Conversation{} }, tests)
}

func TestState(t *testing.T) {
	c := load(created(), Updated{Title: new("Roadmap"), Metadata: json.RawMessage(`{"k":1}`)},
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

func TestDecodeRoundTrip(t *testing.T) {
	domaintest.RoundTrip(t, Decode,
		created(),
		Updated{Title: new("R"), Metadata: json.RawMessage(`{"k":"\u003c\u0026\u003e"}`)},
		Updated{Title: new("")},
		MessagePosted{MessageID: mid, AuthorID: uid, Role: RoleAssistant, Content: "  hi\n", Metadata: json.RawMessage(`{"n":1e3}`)},
		RoutingDecided{MessageID: mid, Action: ActionDelegate, Expert: "calendar", Priority: 2, Reason: "date"},
		RoutingDecided{MessageID: mid, Action: ActionIgnore, Priority: 5},
		Archived{},
	)
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
	domaintest.Unknown(t, Decode, EventCreated)
	if _, err := Decode(EventRoutingDecided, 1, []byte(`{"priority":"high"}`)); err == nil {
		t.Fatal("bad JSON decoded")
	}
}

func TestLoadFromStoredEvents(t *testing.T) {
	c, err := New(cid, wid, uid, "Plans", "", json.RawMessage(`{"a":{"b":1}}`))
	domaintest.Must(t, err)
	domaintest.Must(t, c.Update(new("Roadmap"), json.RawMessage(`{"a":{"c":2}}`)))
	domaintest.Must(t, c.PostMessage("m-1", uid, "", "hello", json.RawMessage(`{"lang":"en"}`)))
	domaintest.Must(t, c.PostMessage("m-2", "bot", RoleAssistant, "hi there", nil))
	domaintest.Must(t, c.DecideRouting("m-1", ActionDelegate, "greeter", 2, "a greeting"))
	domaintest.Must(t, c.Archive())

	loaded := domaintest.Reload(t, c, &Conversation{}, Decode)
	if loaded.Version() != 6 || string(loaded.Metadata()) != `{"a":{"b":1,"c":2}}` || loaded.MessageCount() != 2 || loaded.Title() != "Roadmap" {
		t.Fatalf("accessors: %d %s %d %q", loaded.Version(), loaded.Metadata(), loaded.MessageCount(), loaded.Title())
	}
}

func TestStreamID(t *testing.T) { domaintest.StreamID(t, StreamID, StreamType) }
