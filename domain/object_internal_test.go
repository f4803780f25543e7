package domain

import (
	"encoding/json"
	"testing"
)

// referenceCanonicalObject is CanonicalObject as it was first written:
// decode into a map with numbers kept, json.Marshal it back.
func referenceCanonicalObject(raw json.RawMessage) (json.RawMessage, error) {
	obj, err := parseObject(raw)
	if err != nil {
		return nil, err
	}
	return encodeObject(obj)
}

var objectSeeds = []string{
	``, `  `, `{}`, `{"b":1,"a":{"d":[1.50,-0,1e2],"c":null}}`, `{"a":1,"a":2}`, `{"s":"<&>\u2028é\n"}`,
	`{"nul":"\u0000"}`, `["\u0000"]`, `[1,]`, `"x"`, `null`, "{\"bad\":\"\xff\"}", `{"a":1} x`, `{"a":1,}`,
}

// FuzzCanonicalObjectMatchesTheReference holds the one-pass CanonicalObject
// to the round trip through a map: the same bytes, or the same refusal.
func FuzzCanonicalObjectMatchesTheReference(f *testing.F) {
	for _, s := range objectSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		want, wantErr := referenceCanonicalObject(raw)
		got, err := CanonicalObject(raw)
		if string(got) != string(want) || (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
			t.Fatalf("CanonicalObject(%q) = %q, %v; the reference gives %q, %v", raw, got, err, want, wantErr)
		}
	})
}
