package eventstore

import (
	"encoding/json"
	"errors"
	"time"
)

// Errors returned by the store. Callers test them with errors.Is.
var (
	// ErrConcurrency means the stream was not at the expected version: another
	// writer appended first. Nothing was written.
	ErrConcurrency = errors.New("eventstore: stream changed concurrently")
	// ErrClaimed means a unique claim made with the append is already held by
	// another stream. Nothing was written.
	ErrClaimed = errors.New("eventstore: value already claimed")
	// ErrIdempotencyKeyUsed means the idempotency key sent with the append was
	// stored by another request first. Nothing was written; read the stored
	// response with [Store.IdempotentResponse].
	ErrIdempotencyKeyUsed = errors.New("eventstore: idempotency key already used")
	// ErrNoEvents means Append was called without events.
	ErrNoEvents = errors.New("eventstore: no events to append")
	// ErrGuardChanged means the stream an append was guarded on (see
	// WithGuard) was no longer at the guard's version. Nothing was written.
	ErrGuardChanged = errors.New("eventstore: guarded stream changed")
)

// Version constants for Append's expected version.
const (
	// NoStream expects the stream not to exist yet.
	NoStream = 0
)

// Metadata travels with every event. It answers who caused the event and as a
// consequence of what.
type Metadata struct {
	// CorrelationID ties together every event caused by one original request.
	CorrelationID string `json:"correlation_id,omitempty"`
	// CausationID is the id of the event (or request) that directly caused this one.
	CausationID string `json:"causation_id,omitempty"`
	// ActorID is the user (or system component) on whose behalf the event was recorded.
	ActorID string `json:"actor_id,omitempty"`
	// RequestID is the id of the HTTP request that carried the command, if any.
	RequestID string `json:"request_id,omitempty"`
}

// NewEvent is an event about to be appended.
type NewEvent struct {
	// ID is the event's unique id (a UUID).
	ID string
	// Type is the stable event name, e.g. "conversation.message_posted".
	Type string
	// SchemaVersion is the version of Data's shape; 0 means 1.
	SchemaVersion int
	// Data is the event body as a JSON object.
	Data json.RawMessage
	// Metadata, when set, is recorded with this event instead of the
	// append's metadata: one append may carry the events of several
	// commands, each with its own actor and request.
	Metadata *Metadata
}

// Event is a stored event.
type Event struct {
	GlobalPosition int64           `json:"global_position"`
	TxID           uint64          `json:"-"`
	EventID        string          `json:"event_id"`
	StreamID       string          `json:"stream_id"`
	StreamType     string          `json:"stream_type"`
	StreamVersion  int             `json:"stream_version"`
	Type           string          `json:"type"`
	SchemaVersion  int             `json:"schema_version"`
	Data           json.RawMessage `json:"data"`
	Metadata       Metadata        `json:"metadata"`
	RecordedAt     time.Time       `json:"recorded_at"`
	PrevHash       []byte          `json:"-"`
	Hash           []byte          `json:"-"`
}

// Stream names a stream and the type of aggregate it belongs to.
type Stream struct {
	// ID is the stream id, e.g. "conversation-<uuid>".
	ID string
	// Type is the aggregate type, e.g. "conversation".
	Type string
}

// AppendResult describes what an append wrote.
type AppendResult struct {
	// Events are the stored events, in stream order.
	Events []Event
}

// LastPosition returns the global position of the last event written.
func (r AppendResult) LastPosition() int64 {
	if len(r.Events) == 0 {
		return 0
	}
	return r.Events[len(r.Events)-1].GlobalPosition
}

// LastVersion returns the stream version after the append.
func (r AppendResult) LastVersion() int {
	if len(r.Events) == 0 {
		return 0
	}
	return r.Events[len(r.Events)-1].StreamVersion
}

// Claim reserves a unique value (such as an e-mail address) for a stream, in
// the same transaction as the events.
type Claim struct {
	// Scope groups values that must be unique together, e.g. "user.email".
	Scope string
	// Value is the claimed value, already normalised by the caller.
	Value string
}
