package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/engramhq/engram/domain/canonjson"
)

// MaxObjectBytes is the largest a JSON-object field (metadata, config) may be
// once serialized in canonical form.
const MaxObjectBytes = 16 << 10

// emptyObject is the canonical form of an absent or empty JSON-object field.
var emptyObject = json.RawMessage(`{}`)

// ObjectOrEmpty returns raw, or the empty object {} when raw is empty: a
// JSON-object field as it is shown.
func ObjectOrEmpty(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return append(json.RawMessage(nil), emptyObject...)
	}
	return raw
}

// CanonicalObject checks that raw is a JSON object that can be stored and
// returns its canonical form: compact, keys sorted, numbers kept as written,
// with the escaping of encoding/json, so that two equal objects have equal
// bytes however they were formatted (PostgreSQL jsonb reformats what it
// stores). Absent or blank input is the empty object {}. It fails when raw is
// not valid UTF-8, not a JSON object (arrays, strings and null included),
// contains a NUL character (\u0000) anywhere, or is larger than
// MaxObjectBytes in canonical form.
func CanonicalObject(raw json.RawMessage) (json.RawMessage, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return append(json.RawMessage(nil), emptyObject...), nil
	}
	if !utf8.Valid(raw) {
		return nil, errors.New("must be valid UTF-8")
	}
	// What json.Marshal writes of the object decoded with numbers kept (see
	// encodeObject), in one pass.
	out, err := canonjson.Append(nil, raw, canonjson.Options{EscapeHTML: true, RejectNUL: true})
	switch {
	case errors.Is(err, canonjson.ErrSyntax):
		return nil, errors.New("must be valid JSON")
	case trimmed[0] != '{':
		return nil, errors.New("must be a JSON object")
	case errors.Is(err, canonjson.ErrNUL):
		return nil, errors.New("must not contain NUL characters")
	case err != nil:
		return nil, err
	case len(out) > MaxObjectBytes:
		return nil, fmt.Errorf("must be at most %d bytes", MaxObjectBytes)
	}
	return out, nil
}

// Object checks a JSON-object field with the rules of CanonicalObject and
// returns its canonical form ({} when the input is absent or blank).
func (v *Validation) Object(field string, raw json.RawMessage) json.RawMessage {
	out, err := CanonicalObject(raw)
	if err != nil {
		v.Add(field, "%s", err.Error())
		return nil
	}
	return out
}

// MergePatch applies patch to target with the semantics of RFC 7386 (JSON
// Merge Patch): keys in patch replace keys in target, null deletes a key and
// nested objects merge. Both must be JSON objects; the result is canonical
// (see CanonicalObject) and fails when it would exceed MaxObjectBytes.
func MergePatch(target, patch json.RawMessage) (json.RawMessage, error) {
	t, err := parseObject(target)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	p, err := parseObject(patch)
	if err != nil {
		return nil, fmt.Errorf("patch: %w", err)
	}
	return encodeObject(mergePatch(t, p).(map[string]any))
}

// mergePatch is the MergePatch algorithm of RFC 7386, section 2.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, pv := range p {
		if pv == nil {
			delete(t, k)
			continue
		}
		t[k] = mergePatch(t[k], pv)
	}
	return t
}

// parseObject decodes raw into a map, keeping numbers as json.Number.
func parseObject(raw json.RawMessage) (map[string]any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return map[string]any{}, nil
	}
	if !utf8.Valid(raw) {
		return nil, errors.New("must be valid UTF-8")
	}
	if !json.Valid(raw) {
		return nil, errors.New("must be valid JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errors.New("must be valid JSON")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("must be a JSON object")
	}
	if hasNUL(obj) {
		return nil, errors.New("must not contain NUL characters")
	}
	return obj, nil
}

// encodeObject serializes obj canonically and enforces MaxObjectBytes.
func encodeObject(obj map[string]any) (json.RawMessage, error) {
	if len(obj) == 0 {
		return append(json.RawMessage(nil), emptyObject...), nil
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("must be valid JSON: %w", err)
	}
	if len(out) > MaxObjectBytes {
		return nil, fmt.Errorf("must be at most %d bytes", MaxObjectBytes)
	}
	return out, nil
}

// hasNUL reports whether any key or string inside v contains a NUL character.
func hasNUL(v any) bool {
	switch x := v.(type) {
	case string:
		return strings.IndexByte(x, 0) >= 0
	case map[string]any:
		for k, e := range x {
			if strings.IndexByte(k, 0) >= 0 || hasNUL(e) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if hasNUL(e) {
				return true
			}
		}
	}
	return false
}
