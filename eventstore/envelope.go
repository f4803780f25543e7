package eventstore

import (
	"encoding/json"
	"time"
)

// Envelope is a stored event as it is shown outside the server, in the live
// streams and by the audit API alike: where it stands in the log and in its
// stream, what it is, who caused it, and its data — without secrets, which
// the caller removes before it builds the envelope. Its JSON is the wire
// shape of both.
type Envelope struct {
	GlobalPosition int64           `json:"global_position"`
	EventID        string          `json:"event_id"`
	StreamID       string          `json:"stream_id"`
	StreamType     string          `json:"stream_type"`
	StreamVersion  int             `json:"stream_version"`
	Type           string          `json:"type"`
	SchemaVersion  int             `json:"schema_version"`
	Data           json.RawMessage `json:"data"`
	Metadata       json.RawMessage `json:"metadata"`
	RecordedAt     time.Time       `json:"recorded_at"`
}

// Envelope returns e as it is shown outside the server, carrying data —
// e's data with its secrets removed — instead of e's own.
func (e Event) Envelope(data json.RawMessage) Envelope {
	md, _ := json.Marshal(e.Metadata) // strings only: it always encodes
	return Envelope{GlobalPosition: e.GlobalPosition, EventID: e.EventID, StreamID: e.StreamID, StreamType: e.StreamType,
		StreamVersion: e.StreamVersion, Type: e.Type, SchemaVersion: e.SchemaVersion, Data: data, Metadata: md,
		RecordedAt: e.RecordedAt.UTC()}
}
