package eventstore

import (
	"bytes"
	"encoding/json"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"
)

// canonicalJSON re-serialises a JSON value canonically, numbers exact, as
// scheme 2 does.
func canonicalJSON(raw []byte) ([]byte, error) {
	return appendExact(nil, raw, true)
}

// FuzzCanonicalJSON checks canonicalJSON: it never panics; its output is
// valid JSON, idempotent (canonical(canonical(x)) == canonical(x)) and
// the same value as the input, every number exactly; two spellings of one
// value (here: re-indented) canonicalise alike; and the chain hash of an
// event does not depend on how its data is spelt.
func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{`{"b":1,"a":[1.0,2e0,-0,"x"]}`, `{"a":{"c":null,"b":true}}`, `1e21`, `123456789012345678901234567890`,
		`"\u003c\u0026\u2028"`, `"\ud800"`, "\"\xff\"", `{"a":1,"a":2}`, `[]`, `1e400`, `{"x":0.1}`, ` { } `, `{"é":"\u00e9"}`,
		`[9007199254740993, 0.10000000000000001, 1.0, -0, 1E+2, 1.5e-7]`} {
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
		if !sameExactly(t, raw, once) {
			t.Fatalf("canonicalJSON(%q) = %q changed a number", raw, once)
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

// sameExactly reports whether two JSON documents hold the same values with
// numbers compared exactly (as rationals); documents with huge exponents,
// costly to compare so, are taken as equal.
func sameExactly(t *testing.T, a, b []byte) bool {
	decode := func(raw []byte) any {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("decode %q: %v", raw, err)
		}
		return v
	}
	var same func(x, y any) bool
	same = func(x, y any) bool {
		switch x := x.(type) {
		case json.Number:
			y, ok := y.(json.Number)
			if !ok {
				return false
			}
			if _, e, _ := strings.Cut(strings.ToLower(string(x)), "e"); len(strings.TrimLeft(strings.TrimLeft(e, "+-"), "0")) > 3 {
				return true
			}
			rx, okx := new(big.Rat).SetString(string(x))
			ry, oky := new(big.Rat).SetString(string(y))
			return okx && oky && rx.Cmp(ry) == 0
		case map[string]any:
			y, ok := y.(map[string]any)
			if !ok || len(x) != len(y) {
				return false
			}
			for k, v := range x {
				if w, ok := y[k]; !ok || !same(v, w) {
					return false
				}
			}
			return true
		case []any:
			y, ok := y.([]any)
			if !ok || len(x) != len(y) {
				return false
			}
			for i := range x {
				if !same(x[i], y[i]) {
					return false
				}
			}
			return true
		default:
			return reflect.DeepEqual(x, y)
		}
	}
	return same(decode(a), decode(b))
}
