// Package auditlog records who read the audit log. Every read of the log
// through the audit API or the audit command line — a page of events, an
// export, a state as it was, a verification — is itself an event,
// audit.log_read, in the stream "audit-<actor id>" of the reader, so that
// reading history is as tamper-evident as the history read.
package auditlog

import (
	"encoding/json"
	"fmt"

	"github.com/engramhq/engram/domain"
)

// StreamType is the stream type of audit streams.
const StreamType = "audit"

// StreamID returns the stream identifier of the audit reads of an actor.
func StreamID(actorID string) string { return domain.StreamID(StreamType, actorID) }

// EventLogRead is the stable name of the LogRead event.
const EventLogRead = "audit.log_read"

// Channels through which the log is read.
const (
	ViaAPI = "api" // the HTTP audit API
	ViaCLI = "cli" // the engram audit command
)

// Operations that read the log.
const (
	OperationEvents       = "events"        // a filtered page or stream of events
	OperationStreamEvents = "stream_events" // the events of one stream
	OperationState        = "state"         // a stream's state as it was
	OperationVerify       = "verify"        // a verification of the hash chains
	OperationExport       = "export"        // an export to a file
)

// Result formats.
const (
	FormatJSON   = "json"
	FormatNDJSON = "ndjson"
)

// LogRead records one read of the audit log: who read (ActorID, and the
// session or API key used), through what (Via, Operation, Format), with which
// filter, and how many results were delivered. Complete is false when the
// reader stopped before the end (e.g. a stream cut short by the client).
type LogRead struct {
	ActorID     string          `json:"actor_id"`
	Via         string          `json:"via"`
	Operation   string          `json:"operation"`
	Format      string          `json:"format"`
	Filter      json.RawMessage `json:"filter"`
	ResultCount int64           `json:"result_count"`
	Complete    bool            `json:"complete"`
	SessionID   string          `json:"session_id,omitempty"`
	KeyID       string          `json:"key_id,omitempty"`
}

// EventType returns "audit.log_read".
func (LogRead) EventType() string { return EventLogRead }

// Read describes a read of the log, before it becomes a LogRead.
type Read struct {
	ActorID     string
	Via         string
	Operation   string
	Format      string
	Filter      json.RawMessage
	ResultCount int64
	Complete    bool
	SessionID   string
	KeyID       string
}

// Record validates a read and returns the event that records it. The actor
// is an identifier; via is api or cli; operation one of the Operation
// constants; format json or ndjson; the filter a JSON object of at most 16 KiB
// ({} when absent); the result count is not negative. It returns a
// CodeInvalid *domain.Error listing every invalid field.
func Record(r Read) (LogRead, error) {
	var v domain.Validation
	v.ID("actor_id", r.ActorID)
	v.OneOf("via", r.Via, ViaAPI, ViaCLI)
	v.OneOf("operation", r.Operation, OperationEvents, OperationStreamEvents, OperationState, OperationVerify, OperationExport)
	v.OneOf("format", r.Format, FormatJSON, FormatNDJSON)
	filter := v.Object("filter", r.Filter)
	v.Check(r.ResultCount >= 0, "result_count", "must not be negative")
	if r.SessionID != "" {
		v.ID("session_id", r.SessionID)
	}
	if r.KeyID != "" {
		v.ID("key_id", r.KeyID)
	}
	if err := v.Err(); err != nil {
		return LogRead{}, err
	}
	return LogRead{
		ActorID: r.ActorID, Via: r.Via, Operation: r.Operation, Format: r.Format, Filter: filter,
		ResultCount: r.ResultCount, Complete: r.Complete, SessionID: r.SessionID, KeyID: r.KeyID,
	}, nil
}

// decoder reads the stored events of audit streams.
var decoder = domain.Decoder{
	EventLogRead: domain.As(func(e *LogRead) error {
		if err := domain.Canonical(&e.Filter); err != nil {
			return fmt.Errorf("filter: %w", err)
		}
		return nil
	}),
}

// Decode turns a stored event of an audit stream back into its event struct,
// with the filter in canonical form (see domain.CanonicalObject). It fails
// with domain.ErrUnknownEvent for an unknown type or schema version;
// upcasters from older schema versions belong in its table.
func Decode(eventType string, schemaVersion int, data []byte) (domain.Event, error) {
	return decoder.Decode(eventType, schemaVersion, data)
}
