package eventstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// referenceExactDocument is scheme 2 as it was first written: decode into
// interface values with numbers kept, respell each number, encode the event's
// map back with encoding/json. exactDocument must write the same bytes.
func referenceExactDocument(e *Event, data, metadata []byte, limit bool) ([]byte, error) {
	exact := func(raw []byte) (any, error) {
		v, err := decodeNumbers(raw)
		if err != nil {
			return nil, err
		}
		return mapNumbers(v, func(n json.Number) (any, error) {
			s, err := canonicalNumber(string(n), limit)
			if err != nil {
				return nil, fmt.Errorf("number %q: %w", n, err)
			}
			return json.RawMessage(s), nil
		})
	}
	d, err := exact(data)
	if err != nil {
		return nil, err
	}
	m, err := exact(metadata)
	if err != nil {
		return nil, err
	}
	doc := eventDocument(e, d, m)
	doc["hash_scheme"] = hashScheme
	return marshalCanonical(doc)
}

var referenceSeeds = []string{
	`{"b":1,"a":[1.0,2e0,-0,"x"]}`, `{"a":{"c":null,"b":true}}`, `1e21`, `123456789012345678901234567890`,
	`"\u003c\u0026\u2028"`, `"\ud800"`, "\"\xff\"", `{"a":1,"a":2}`, `[]`, `1e400`, `{"x":0.1}`, ` { } `,
	`{"é":"\u00e9","<":"&>"}`, `[9007199254740993, 0.10000000000000001, 1.0, -0, 1E+2, 1.5e-7, 0, -5, 123456789012345, 1234567890123456]`,
	`{"content":"line one\nline two\t\"quoted\" \\ back","metadata":{"k":[{"z":1,"a":2}]}}`,
}

// TestExactDocumentMatchesTheReference holds the one-pass writer of scheme 2
// to the round trip the scheme was defined by, on varied events.
func TestExactDocumentMatchesTheReference(t *testing.T) {
	for _, s := range referenceSeeds {
		checkAgainstReference(t, []byte(s))
	}
}

func FuzzExactDocumentMatchesTheReference(f *testing.F) {
	for _, s := range referenceSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) { checkAgainstReference(t, raw) })
}

func checkAgainstReference(t *testing.T, raw []byte) {
	t.Helper()
	if !json.Valid(raw) {
		// json.Decoder reads the first value of a text and leaves the rest;
		// stored data is always exactly one value.
		if _, err := exactDocument(hashTestEvent(), raw, []byte(`{}`), true); err == nil {
			t.Fatalf("exactDocument accepted %q, which is not valid JSON", raw)
		}
		return
	}
	events := []*Event{hashTestEvent(), {EventID: "é<&>\u2028", StreamID: "s\"1", StreamType: "t", StreamVersion: 123456,
		Type: "x.y", SchemaVersion: 3, RecordedAt: time.Date(2026, 1, 1, 0, 0, 0, 5, time.FixedZone("x", 3600))}}
	for _, e := range events {
		for _, limit := range []bool{true, false} {
			want, wantErr := referenceExactDocument(e, raw, raw, limit)
			got, err := exactDocument(e, raw, raw, limit)
			if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
				t.Fatalf("exactDocument(%q, limit %v) = %q, %v; the reference writes %q, %v", raw, limit, got, err, want, wantErr)
			}
		}
	}
}
