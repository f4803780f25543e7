package audit

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/apikey"
	"github.com/engramhq/engram/domain/auditlog"
	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/domain/memory"
	"github.com/engramhq/engram/domain/session"
	"github.com/engramhq/engram/domain/task"
	"github.com/engramhq/engram/domain/user"
	"github.com/engramhq/engram/domain/workspace"
)

// decodeFunc turns a stored event back into its domain event.
type decodeFunc func(eventType string, schemaVersion int, data []byte) (domain.Event, error)

// decoderFor returns the Decode function of the aggregate that owns streams
// of streamType.
func decoderFor(streamType string) (decodeFunc, bool) {
	switch streamType {
	case user.StreamType:
		return user.Decode, true
	case session.StreamType:
		return session.Decode, true
	case apikey.StreamType:
		return apikey.Decode, true
	case workspace.StreamType:
		return workspace.Decode, true
	case conversation.StreamType:
		return conversation.Decode, true
	case task.StreamType:
		return task.Decode, true
	case memory.StreamType:
		return memory.Decode, true
	case auditlog.StreamType:
		return auditlog.Decode, true
	}
	return nil, false
}

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

// redactData returns an event's data as it may leave the server: decoded by
// its aggregate, redacted with domain.Redact and encoded again; data that no
// aggregate decodes passes through with its secret fields emptied.
func redactData(streamType, eventType string, schemaVersion int, data []byte) (json.RawMessage, error) {
	if decode, ok := decoderFor(streamType); ok {
		if e, err := decode(eventType, schemaVersion, data); err == nil {
			out, err := json.Marshal(domain.Redact(e))
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
