package request

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/engramhq/engram/domain"
)

// TestDecodeRefusesWhatItWouldChange: values that encoding/json would
// silently alter or that nothing downstream can store are refused with a
// validation error naming the field, and a null body is malformed.
func TestDecodeRefusesWhatItWouldChange(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		malformed bool
		fields    []string
	}{
		{"number beyond float64 in metadata", `{"title":"t","metadata":{"x":1e309}}`, false, []string{"metadata.x"}},
		{"capital exponent in config", `{"name":"n","config":{"a":{"b":[1,1E400]}}}`, false, []string{"config.a.b[1]"}},
		{"negative overflow", `{"content":"c","metadata":{"n":-1e999}}`, false, []string{"metadata.n"}},
		{"invalid UTF-8 in a field", "{\"email\":\"ada\xff@example.com\",\"password\":\"p\"}", false, []string{"email"}},
		{"invalid UTF-8 in a nested value", "{\"title\":\"t\",\"metadata\":{\"k\":[\"ok\",\"\xc3\"]}}", false, []string{"metadata.k[1]"}},
		{"invalid UTF-8 in a name", "{\"title\":\"t\",\"metadata\":{\"\xfe\":1}}", false, []string{"metadata.\uFFFD"}},
		{"lone high surrogate", `{"title":"a\ud800b"}`, false, []string{"title"}},
		{"lone low surrogate", `{"title":"\udc00"}`, false, []string{"title"}},
		{"high surrogate at the end", `{"title":"x\ud83d"}`, false, []string{"title"}},
		{"two problems at once", "{\"title\":\"\xff\",\"metadata\":{\"x\":1e400}}", false, []string{"title", "metadata.x"}},
		{"null body", `null`, true, []string{"body"}},
		{"null body with white space", " null\n", true, []string{"body"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dst map[string]json.RawMessage
			err := Decode([]byte(tt.body), &dst)
			var de *domain.Error
			if !errors.As(err, &de) || de.Code != domain.CodeInvalid {
				t.Fatalf("err = %v, want a validation error", err)
			}
			if got := de.Message == MalformedBody; got != tt.malformed {
				t.Fatalf("malformed = %v (%q), want %v", got, de.Message, tt.malformed)
			}
			var got []string
			for _, f := range de.Fields {
				got = append(got, f.Field)
			}
			if strings.Join(got, ",") != strings.Join(tt.fields, ",") {
				t.Fatalf("fields = %q, want %q", got, tt.fields)
			}
		})
	}
}

// TestDecodeKeepsFaithfulValues: what can be kept exactly is accepted.
func TestDecodeKeepsFaithfulValues(t *testing.T) {
	body := `{"title":"caf\u00e9 \ud83d\ude00 \\ud800 ☕","metadata":{"big":1.7976931348623157e308,"tiny":1e-400,"a":[true,null,"\"x\\"]}}`
	var dst struct {
		Title    string          `json:"title"`
		Metadata json.RawMessage `json:"metadata"`
	}
	if err := Decode([]byte(body), &dst); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if dst.Title != "café 😀 \\ud800 ☕" {
		t.Fatalf("title = %q", dst.Title)
	}
	var m map[string]any
	if err := json.Unmarshal(dst.Metadata, &m); err != nil || m["big"] == nil {
		t.Fatalf("metadata = %s (%v)", dst.Metadata, err)
	}
}

// FuzzDepth checks depth against a reference count of brackets outside
// strings on valid JSON, and that Decode refuses anything nested deeper
// than maxJSONDepth.
func FuzzDepth(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `{"a":[1,{"b":null}]}`, `"[[{"`, `{"t":"\"[[[[{{{{"}`, `[[[]]]`,
		strings.Repeat("[", 40) + strings.Repeat("]", 40), `{"a":"\u00`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if depth(raw) > maxJSONDepth && Decode(raw, &map[string]any{}) == nil {
			t.Fatalf("Decode accepted a body nested %d deep: %q", depth(raw), raw)
		}
		var v any
		if json.Unmarshal(raw, &v) != nil {
			_ = depth(raw) // must not panic on anything
			return
		}
		if got, want := depth(raw), valueDepth(v); got != want {
			t.Fatalf("depth(%q) = %d, want %d", raw, got, want)
		}
	})
}

func valueDepth(v any) int {
	d := 0
	switch t := v.(type) {
	case map[string]any:
		for _, e := range t {
			d = max(d, valueDepth(e))
		}
		return d + 1
	case []any:
		for _, e := range t {
			d = max(d, valueDepth(e))
		}
		return d + 1
	}
	return 0
}
