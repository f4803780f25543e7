package domain

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// DecodeFunc reads the data of a stored event, recorded with the given
// schema version, back into its event struct. It returns ErrUnknownEvent for
// a schema version it does not read.
type DecodeFunc func(schemaVersion int, data []byte) (Event, error)

// Decoder reads the stored events of one stream type back into their event
// structs: a table from event type to the DecodeFunc of that type. Each
// aggregate package keeps one, beside its events; upcasters from older schema
// versions are DecodeFuncs of their own.
type Decoder map[string]DecodeFunc

// Decode returns the event struct of a stored event. It fails with
// ErrUnknownEvent (wrapped) for an event type missing from the table or a
// schema version its entry does not read, and with the JSON error for data
// that does not fit the event's shape.
func (d Decoder) Decode(eventType string, schemaVersion int, data []byte) (Event, error) {
	decode, ok := d[eventType]
	if !ok {
		return nil, fmt.Errorf("decode %s v%d: %w", eventType, schemaVersion, ErrUnknownEvent)
	}
	e, err := decode(schemaVersion, data)
	switch {
	case errors.Is(err, ErrUnknownEvent):
		return nil, fmt.Errorf("decode %s v%d: %w", eventType, schemaVersion, err)
	case err != nil:
		return nil, fmt.Errorf("decode %s: %w", eventType, err)
	}
	return e, nil
}

// As returns the DecodeFunc of the event struct E at its current schema
// version (see SchemaVersion): the data is read into E as JSON, then each
// normalize puts a field of it in the form that recording gives it
// (canonical JSON objects, times in UTC), so that a loaded event equals the
// one that was recorded.
func As[E Event](normalize ...func(*E) error) DecodeFunc {
	var zero E
	version := SchemaVersion(zero)
	return func(schemaVersion int, data []byte) (Event, error) {
		if schemaVersion != version {
			return nil, ErrUnknownEvent
		}
		var e E
		if err := json.Unmarshal(data, &e); err != nil {
			return nil, err
		}
		for _, n := range normalize {
			if err := n(&e); err != nil {
				return nil, err
			}
		}
		return e, nil
	}
}

// Canonical puts a JSON-object field in canonical form (see
// CanonicalObject); an absent one becomes {}.
func Canonical(field *json.RawMessage) error {
	c, err := CanonicalObject(*field)
	if err != nil {
		return err
	}
	*field = c
	return nil
}

// CanonicalIfSet is Canonical for a field that may be absent, such as a
// field of an update event: an absent field stays absent.
func CanonicalIfSet(field *json.RawMessage) error {
	if *field == nil {
		return nil
	}
	return Canonical(field)
}

// UTC returns a copy of t in UTC, and nil for nil: optional times of events.
func UTC(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
