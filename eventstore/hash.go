package eventstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"
)

// Hash chain: every event stores the hash of its predecessor in the stream
// (prev_hash, NULL for version 1) and its own hash:
//
//	hash = SHA-256(prev_hash ‖ canonical(event))
//
// canonical(event) is the JSON object of the event's identity, position in its
// stream, type, schema version, data, metadata and recording time, serialised
// with sorted keys, no insignificant white space and numbers written as IEEE
// 754 doubles (the rules of RFC 8785). PostgreSQL's jsonb may reorder keys and
// reformat numbers; canonicalising both at write and at verification time makes
// the hash independent of that. Integers beyond 2^53 are compared at double
// precision.

// canonicalJSON re-serialises a JSON value canonically.
func canonicalJSON(raw []byte) ([]byte, error) {
	v, err := decodeNumbersAsFloat(raw)
	if err != nil {
		return nil, err
	}
	return marshalCanonical(v)
}

func decodeNumbersAsFloat(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	return normaliseNumbers(v)
}

func normaliseNumbers(v any) (any, error) {
	switch t := v.(type) {
	case json.Number:
		f, err := t.Float64()
		if err != nil {
			return nil, fmt.Errorf("canonical json: number %q: %w", t, err)
		}
		return f, nil
	case map[string]any:
		for k, e := range t {
			n, err := normaliseNumbers(e)
			if err != nil {
				return nil, err
			}
			t[k] = n
		}
		return t, nil
	case []any:
		for i, e := range t {
			n, err := normaliseNumbers(e)
			if err != nil {
				return nil, err
			}
			t[i] = n
		}
		return t, nil
	default:
		return v, nil
	}
}

func marshalCanonical(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// chainHash computes the hash of one event given its predecessor's hash.
// data and metadata are the JSON documents as stored.
func chainHash(prev []byte, e *Event, data, metadata []byte) ([]byte, error) {
	d, err := decodeNumbersAsFloat(data)
	if err != nil {
		return nil, fmt.Errorf("event %s data: %w", e.EventID, err)
	}
	m, err := decodeNumbersAsFloat(metadata)
	if err != nil {
		return nil, fmt.Errorf("event %s metadata: %w", e.EventID, err)
	}
	doc, err := marshalCanonical(map[string]any{
		"event_id":       e.EventID,
		"stream_id":      e.StreamID,
		"stream_type":    e.StreamType,
		"stream_version": e.StreamVersion,
		"type":           e.Type,
		"schema_version": e.SchemaVersion,
		"data":           d,
		"metadata":       m,
		"recorded_at":    e.RecordedAt.UTC().Format(time.RFC3339Nano),
	})
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write(prev)
	h.Write(doc)
	return h.Sum(nil), nil
}
