package routing

import (
	"context"
	"strings"
	"testing"

	"github.com/engramhq/engram/cognition"
)

var experts = []string{"echo", "memory", "llm"}

func route(t *testing.T, r cognition.Router, content string) cognition.Decision {
	t.Helper()
	d, err := r.Route(context.Background(), cognition.Message{ID: "m", ConversationID: "c", AuthorID: "u", Role: "user", Content: content})
	if err != nil {
		t.Fatalf("route %q: %v", content, err)
	}
	if err := d.Validate(); err != nil {
		t.Fatalf("route %q: invalid decision %+v: %v", content, d, err)
	}
	return d
}

// newRouter returns the router of kind configured by cfg (JSON), with the
// experts above and echo as the default.
func newRouter(t *testing.T, kind, cfg string) cognition.Router {
	t.Helper()
	c, err := Parse([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(kind, c, "echo", experts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// routeCase is a message and the decision expected for it; the decision's
// reason must contain reasonHolds.
type routeCase struct {
	content            string
	action, expert     string
	priority           int
	input, reasonHolds string
}

// checkRoutes routes each case's message through r and checks the decision.
func checkRoutes(t *testing.T, r cognition.Router, cases []routeCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.content, func(t *testing.T) {
			d := route(t, r, tt.content)
			if d.Action != tt.action || d.Expert != tt.expert || d.Priority != tt.priority || d.Input != tt.input ||
				!strings.Contains(d.Reason, tt.reasonHolds) {
				t.Fatalf("decision = %+v, want %s/%s/%d input %q reason with %q", d, tt.action, tt.expert, tt.priority, tt.input, tt.reasonHolds)
			}
		})
	}
}

func TestRules(t *testing.T) {
	r := newRouter(t, KindRules, `{"commands":{"/mute":{"action":"ignore"},"/ask":{"action":"delegate","expert":"llm","priority":5},
		"/note":{"action":"process","reason":"a note"}}}`)
	tests := []routeCase{
		{"hello there", "respond", "echo", 3, "hello there", "no command"},
		{"  spaced  ", "respond", "echo", 3, "spaced", "no command"},
		{"/remember Ada: a mathematician", "process", "", 2, "Ada: a mathematician", "/remember"},
		{"/REMEMBER Ada", "process", "", 2, "Ada", "/remember"},
		{"/recall Ada", "delegate", "memory", 3, "Ada", "/recall"},
		{"/recall", "delegate", "memory", 3, "", "/recall"},
		{"/task echo say it twice", "delegate", "echo", 4, "say it twice", "delegated to echo"},
		{"/task LLM\nwrite a poem", "delegate", "llm", 4, "write a poem", "delegated to llm"},
		{"/task", "respond", "echo", 3, "/task", "names no expert"},
		{"/task chef cook", "respond", "echo", 3, "/task chef cook", `no expert named "chef"`},
		{"/unknown thing", "respond", "echo", 3, "/unknown thing", "unknown command /unknown"},
		{"/mute", "ignore", "", 3, "", "command /mute"},
		{"/ask why?", "delegate", "llm", 5, "why?", "command /ask"},
		{"/note buy milk", "process", "", 3, "buy milk", "a note"},
		{"a /remember in the middle", "respond", "echo", 3, "a /remember in the middle", "no command"},
	}
	checkRoutes(t, r, tests)
}

func TestRulesDefaults(t *testing.T) {
	r, err := New(KindRules, Config{DefaultExpert: "llm", DefaultPriority: 1}, "echo", experts)
	if err != nil {
		t.Fatal(err)
	}
	if d := route(t, r, "hi"); d.Expert != "llm" || d.Priority != 1 {
		t.Fatalf("configured defaults not used: %+v", d)
	}
	if d := route(t, r, "/recall x"); d.Expert != "memory" || d.Priority != 1 {
		t.Fatalf("built-in command = %+v", d)
	}
}

func TestPatterns(t *testing.T) {
	r := newRouter(t, KindPatterns, `{"default_priority":2,"patterns":[
		{"pattern":"(?i)^remember (?P<input>.+)$","action":"process","priority":2},
		{"pattern":"(?i)what do you (know|remember) about (?P<input>[^?]+)","action":"delegate","expert":"memory","priority":4},
		{"pattern":"(?i)\\bunsubscribe\\b","action":"ignore","reason":"noise"},
		{"pattern":"\\?$","action":"respond","expert":"llm"}]}`)
	tests := []routeCase{
		{"Remember Paris: the capital", "process", "", 2, "Paris: the capital", "pattern 0"},
		{"What do you know about Ada?", "delegate", "memory", 4, "Ada", "pattern 1"},
		{"please UNSUBSCRIBE me", "ignore", "", 2, "please UNSUBSCRIBE me", "noise"},
		{"is it raining?", "respond", "llm", 2, "is it raining?", "pattern 3"},
		{"just chatting", "respond", "echo", 2, "just chatting", "no pattern matched"},
		{"/remember commands mean nothing here", "respond", "echo", 2, "/remember commands mean nothing here", "no pattern"},
	}
	checkRoutes(t, r, tests)
}

func TestDeterministic(t *testing.T) {
	r, err := New(KindRules, Config{}, "echo", experts)
	if err != nil {
		t.Fatal(err)
	}
	for _, content := range []string{"hello", "/task llm x", "/remember a: b"} {
		if a, b := route(t, r, content), route(t, r, content); a != b {
			t.Fatalf("%q routed %+v then %+v", content, a, b)
		}
	}
}

func TestInvalidConfiguration(t *testing.T) {
	tests := []struct {
		name, kind, json string
		problems         []string
	}{
		{"unknown field", KindRules, `{"comands":{}}`, []string{"unknown field"}},
		{"two documents", KindRules, `{} {}`, []string{"more than one"}},
		{"unknown router", "magic", `{}`, []string{`router "magic"`}},
		{"everything wrong in commands", KindRules, `{"default_expert":"chef","default_priority":9,"commands":{
			"task":{"action":"respond"},"/x":{"action":"dance"},"/y":{"action":"delegate","expert":"nobody","priority":7},
			"/z":{"action":"ignore","expert":"echo"}}}`,
			[]string{`default_expert "chef"`, "default_priority 9", "commands.task", `commands./x: action "dance"`,
				`commands./y: expert "nobody"`, "commands./y: priority 7", "commands./z: action ignore takes no expert"}},
		{"everything wrong in patterns", KindPatterns, `{"patterns":[{"pattern":"(","action":"respond"},{"pattern":"","action":"ignore"},
			{"pattern":"x","action":"delegate","expert_argument":true}]}`,
			[]string{"patterns[0]", "patterns[1]: pattern is required", "patterns[2]: expert_argument"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.json))
			if err == nil {
				_, err = New(tt.kind, cfg, "echo", experts)
			}
			if err == nil {
				t.Fatal("configuration accepted")
			}
			for _, p := range tt.problems {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error %q does not mention %q", err, p)
				}
			}
		})
	}
}
