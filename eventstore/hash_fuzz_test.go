package eventstore

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// FuzzCanonicalJSON checks canonicalJSON: it never panics; its output is
// valid JSON, idempotent (canonical(canonical(x)) == canonical(x)) and
// the same value as the input once numbers are read as doubles; two
// spellings of one value (here: re-indented) canonicalise alike; and the
// chain hash of an event does not depend on how its data is spelt.
func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":[1.0,2e0,-0,"x"]}`, `{"a":{"c":null,"b":true}}`, `1e21`, `123456789012345678901234567890`,
		`"\u003c\u0026\u2028"`, `"\ud800"`, "\"\xff\"", `{"a":1,"a":2}`, `[]`, `1e400`, `{"x":0.1}`, ` { } `, `{"é":"\u00e9"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		once, err := canonicalJSON(raw)
		if err != nil {
			return
		}
		if !json.Valid(once) {
			t.Fatalf("canonicalJSON(%q) = %q, not valid JSON", raw, once)
		}
		twice, err := canonicalJSON(once)
		if err != nil || !bytes.Equal(once, twice) {
			t.Fatalf("canonicalJSON not idempotent on %q: %q then %q, %v", raw, once, twice, err)
		}
		var in, out any
		if json.Unmarshal(raw, &in) == nil && json.Unmarshal(once, &out) == nil && !reflect.DeepEqual(in, out) {
			t.Fatalf("canonicalJSON(%q) = %q changed the value", raw, once)
		}
		var indented bytes.Buffer
		if json.Indent(&indented, raw, "", "  ") == nil {
			if re, err := canonicalJSON(indented.Bytes()); err != nil || !bytes.Equal(re, once) {
				t.Fatalf("indented %q canonicalises to %q, not %q (%v)", raw, re, once, err)
			}
		}
		e := &Event{EventID: "e", StreamID: "s", StreamType: "t", StreamVersion: 1, Type: "x", SchemaVersion: 1,
			RecordedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		h1, err1 := chainHash(nil, e, raw, []byte(`{}`))
		h2, err2 := chainHash(nil, e, once, []byte(`{}`))
		if err1 != nil || err2 != nil || !bytes.Equal(h1, h2) {
			t.Fatalf("chain hash of %q differs from that of its canonical form: %x %x %v %v", raw, h1, h2, err1, err2)
		}
	})
}
