package domain_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/engramhq/engram/domain"
)

func fieldsOf(err error) []string {
	var de *domain.Error
	if !errors.As(err, &de) {
		return nil
	}
	var names []string
	for _, f := range de.Fields {
		names = append(names, f.Field+": "+f.Message)
	}
	return names
}

func TestText(t *testing.T) {
	tests := []struct {
		in       string
		min, max int
		want     string
		problem  string
	}{
		{in: "  hi \n", min: 1, max: 2, want: "hi"},
		{in: "   ", min: 1, max: 5, want: "", problem: "is required"},
		{in: "", min: 0, max: 5, want: ""},
		{in: "ab", min: 3, max: 5, want: "ab", problem: "must be at least 3 characters"},
		{in: "ééé", min: 1, max: 3, want: "ééé"},
		{in: "éééé", min: 1, max: 3, want: "éééé", problem: "must be at most 3 characters"},
		{in: "a\x00", min: 0, max: 5, want: "a\x00", problem: "must not contain NUL characters"},
		{in: "a\xff", min: 0, max: 5, want: "a\xff", problem: "must be valid UTF-8"},
	}
	for _, tt := range tests {
		var v domain.Validation
		got := v.Text("f", tt.in, tt.min, tt.max)
		if got != tt.want {
			t.Errorf("Text(%q) = %q, want %q", tt.in, got, tt.want)
		}
		err := v.Err()
		if tt.problem == "" && err != nil || tt.problem != "" && (domain.ErrorCode(err) != domain.CodeInvalid || fieldsOf(err)[0] != "f: "+tt.problem) {
			t.Errorf("Text(%q) error = %v, want %q", tt.in, err, tt.problem)
		}
	}
}

func TestChangedText(t *testing.T) {
	s := func(v string) *string { return &v }
	tests := []struct {
		name    string
		value   *string
		want    *string
		invalid bool
	}{
		{name: "absent", value: nil},
		{name: "unchanged once trimmed", value: s(" Plans ")},
		{name: "changed", value: s(" Roadmap "), want: s("Roadmap")},
		{name: "invalid", value: s(" "), want: s(""), invalid: true},
	}
	for _, tt := range tests {
		var v domain.Validation
		got := v.ChangedText("title", tt.value, "Plans", 1, 10)
		if (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
			t.Errorf("%s: ChangedText = %v, want %v", tt.name, got, tt.want)
		}
		if (v.Err() != nil) != tt.invalid {
			t.Errorf("%s: error = %v", tt.name, v.Err())
		}
	}
}

func TestIDAndSecret(t *testing.T) {
	for _, tt := range []struct {
		id string
		ok bool
	}{
		{"0190a6f4-8f3e-7c1d-b3a2-5e6f7a8b9c0d", true},
		{"", false},
		{" x", false},
		{"a\tb", false},
		{"a\x00", false},
		{"\xff", false},
		{strings.Repeat("x", domain.MaxIDBytes), true},
		{strings.Repeat("x", domain.MaxIDBytes+1), false},
	} {
		var v domain.Validation
		if got := v.ID("id", tt.id); got != tt.ok || (v.Err() == nil) != tt.ok {
			t.Errorf("ID(%q) = %v, %v", tt.id, got, v.Err())
		}
	}
	var v domain.Validation
	if v.Secret("h", "") || v.Secret("h", "x\x00") || v.Secret("h", strings.Repeat("x", domain.MaxSecretBytes+1)) || !v.Secret("h", "$argon2id$x y") {
		t.Error("Secret")
	}
	if n := len(fieldsOf(v.Err())); n != 3 {
		t.Errorf("Secret problems = %d, want 3", n)
	}
	if v.OneOf("r", "x", "a", "b") || !v.OneOf("r", "b", "a", "b") {
		t.Error("OneOf")
	}
}

func TestCanonicalObject(t *testing.T) {
	big := `{"k":"` + strings.Repeat("x", domain.MaxObjectBytes-8) + `"}` // exactly MaxObjectBytes
	tests := []struct {
		in, want string
		fails    bool
	}{
		{in: "", want: `{}`},
		{in: " \n ", want: `{}`},
		{in: `{}`, want: `{}`},
		{in: `{ "b" : [1, 2.50, 1e3, -0], "a" : {"z": null, "y": true}, "h": "<&>" }`, want: `{"a":{"y":true,"z":null},"b":[1,2.50,1e3,-0],"h":"\u003c\u0026\u003e"}`},
		{in: `{"a":1,"a":2}`, want: `{"a":2}`},
		{in: `{"s":"\ud83d\ude00 é"}`, want: `{"s":"😀 é"}`},
		{in: big, want: big},
		{in: `{"k":"` + strings.Repeat("x", domain.MaxObjectBytes-7) + `"}`, fails: true},
		{in: `null`, fails: true},
		{in: `[]`, fails: true},
		{in: `"{}"`, fails: true},
		{in: `12`, fails: true},
		{in: `{"a":1}x`, fails: true},
		{in: `{"a":1} {"b":2}`, fails: true},
		{in: `{"a":"\u0000"}`, fails: true},
		{in: `{"a":[{"b":"x\u0000"}]}`, fails: true},
		{in: `{"\u0000":1}`, fails: true},
		{in: "{\"a\":\"\xff\"}", fails: true},
	}
	for _, tt := range tests {
		got, err := domain.CanonicalObject(json.RawMessage(tt.in))
		if tt.fails {
			if err == nil {
				t.Errorf("CanonicalObject(%.40q) = %s, want error", tt.in, got)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("CanonicalObject(%.40q) = %.60s, %v, want %.60s", tt.in, got, err, tt.want)
		}
		if again, _ := domain.CanonicalObject(got); string(again) != string(got) {
			t.Errorf("canonical form not stable: %s → %s", got, again)
		}
		if m, _ := json.Marshal(got); string(m) != string(got) {
			t.Errorf("canonical form changes when marshalled: %s → %s", got, m)
		}
	}
	var v domain.Validation
	if got := v.Object("metadata", json.RawMessage(`[]`)); got != nil || fieldsOf(v.Err())[0] != "metadata: must be a JSON object" {
		t.Errorf("Object: %s %v", got, v.Err())
	}
}

func TestMergePatch(t *testing.T) {
	// The object cases of RFC 7386, Appendix A.
	tests := []struct{ target, patch, want string }{
		{`{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`},
		{`{"a":"b"}`, `{"a":null}`, `{}`},
		{`{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`},
		{`{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"c"}`, `{"a":["b"]}`, `{"a":["b"]}`},
		{`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`},
		{`{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`},
		{`{"e":null}`, `{"a":1}`, `{"a":1,"e":null}`},
		{`{}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`},
		{``, `{"a":1}`, `{"a":1}`},
		{`{"a":1}`, `{}`, `{"a":1}`},
	}
	for _, tt := range tests {
		got, err := domain.MergePatch(json.RawMessage(tt.target), json.RawMessage(tt.patch))
		if err != nil || string(got) != tt.want {
			t.Errorf("MergePatch(%s, %s) = %s, %v, want %s", tt.target, tt.patch, got, err, tt.want)
		}
	}
	if _, err := domain.MergePatch(json.RawMessage(`{}`), json.RawMessage(`["a"]`)); err == nil {
		t.Error("array patch accepted")
	}
	half := `{"a":"` + strings.Repeat("x", domain.MaxObjectBytes/2) + `"}`
	if _, err := domain.MergePatch(json.RawMessage(half), json.RawMessage(strings.Replace(half, `"a"`, `"b"`, 1))); err == nil {
		t.Error("oversized merge accepted")
	}
}

type plain struct{}

func (plain) EventType() string { return "test.plain" }

type versioned struct{ Secret string }

func (versioned) EventType() string        { return "test.versioned" }
func (versioned) SchemaVersion() int       { return 2 }
func (e versioned) Redacted() domain.Event { e.Secret = ""; return e }

func TestEventHelpers(t *testing.T) {
	if domain.SchemaVersion(plain{}) != 1 || domain.SchemaVersion(versioned{}) != 2 {
		t.Error("SchemaVersion")
	}
	if domain.Redact(versioned{Secret: "s"}) != (versioned{}) || domain.Redact(plain{}) != (plain{}) {
		t.Error("Redact")
	}
}

func TestStreamID(t *testing.T) {
	id := domain.StreamID("task", "t-1")
	if id != "task-t-1" {
		t.Fatalf("StreamID = %q", id)
	}
	if got := domain.IDOfStream("task", id); got != "t-1" {
		t.Fatalf("IDOfStream(task, %q) = %q", id, got)
	}
	if got := domain.IDOfStream("session", id); got != id {
		t.Fatalf("IDOfStream of another type = %q, want it unchanged", got)
	}
}
