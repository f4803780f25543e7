package domain

import "errors"

// ErrUnknownEvent is returned (wrapped) by the Decode function of every
// aggregate package when it does not know an event type or schema version.
var ErrUnknownEvent = errors.New("unknown event type or schema version")

// Versioned is implemented by events whose current JSON shape is newer than
// schema version 1. Events that do not implement it are at version 1.
type Versioned interface {
	// SchemaVersion returns the schema version of the event's JSON shape.
	SchemaVersion() int
}

// SchemaVersion returns the schema version to store with e: e.SchemaVersion()
// when e is Versioned, and 1 otherwise.
func SchemaVersion(e Event) int {
	if v, ok := e.(Versioned); ok {
		return v.SchemaVersion()
	}
	return 1
}

// Redactable is implemented by events that carry secrets (password, token or
// key hashes). Secrets never leave the server: anything that shows events to
// a client (SSE, the audit API, logs) shows Redact(e) instead of e.
type Redactable interface {
	Event
	// Redacted returns a copy of the event with every secret field emptied.
	Redacted() Event
}

// Redact returns e without its secrets: e.Redacted() when e is Redactable,
// and e itself otherwise.
func Redact(e Event) Event {
	if r, ok := e.(Redactable); ok {
		return r.Redacted()
	}
	return e
}
