package audit

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/engramhq/engram/domain/catalog"
)

// secretFields are the names under which events carry secrets. Events that
// no aggregate here decodes (new types, newer schema versions) pass through
// with these fields emptied, as domain.Redact empties them.
var secretFields = map[string]bool{
	"password":           true,
	"password_hash":      true,
	"refresh_token":      true,
	"refresh_token_hash": true,
	"access_token":       true,
	"api_key":            true,
	"key_hash":           true,
	"secret":             true,
}

// redactData returns an event's data as it may leave the server: decoded and
// redacted as its stream type's catalogue entry says, and encoded again;
// data that no entry decodes passes through with its secret fields emptied.
func redactData(streamType, eventType string, schemaVersion int, data []byte) (json.RawMessage, error) {
	if k, ok := catalog.Lookup(streamType); ok {
		if e, err := k.Redacted(eventType, schemaVersion, data); err == nil {
			out, err := json.Marshal(e)
			if err != nil {
				return nil, fmt.Errorf("encode %s: %w", eventType, err)
			}
			return out, nil
		}
	}
	return scrub(data)
}

// scrub empties every secret field of a JSON document, at any depth.
func scrub(data []byte) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("scrub: %w", err)
	}
	out, err := json.Marshal(scrubValue(v))
	if err != nil {
		return nil, fmt.Errorf("scrub: %w", err)
	}
	return out, nil
}

func scrubValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if secretFields[k] {
				t[k] = ""
				continue
			}
			t[k] = scrubValue(e)
		}
	case []any:
		for i, e := range t {
			t[i] = scrubValue(e)
		}
	}
	return v
}
