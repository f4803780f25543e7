package sse

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/platform/livebus"
)

// frame is one encoded SSE frame, shared by every connection it is sent to.
type frame struct {
	// cursor is the commit-order cursor of an event frame; zero for frames
	// that are not events (signals).
	cursor eventstore.Cursor
	data   []byte
}

// isEvent reports whether the frame carries a stored event.
func (f *frame) isEvent() bool { return f.cursor != (eventstore.Cursor{}) }

// eventFrame encodes a stored event whose data has already been redacted.
func eventFrame(e eventstore.Event, redacted json.RawMessage) (*frame, error) {
	if !isFieldValue(e.Type) {
		return nil, fmt.Errorf("event %d: type %q cannot be an SSE event name", e.GlobalPosition, e.Type)
	}
	body, err := oneLineJSON(e.Envelope(redacted))
	if err != nil {
		return nil, fmt.Errorf("event %d: %w", e.GlobalPosition, err)
	}
	var b bytes.Buffer
	b.Grow(len(body) + len(e.Type) + 40)
	b.WriteString("id: ")
	b.WriteString(strconv.FormatInt(e.GlobalPosition, 10))
	b.WriteString("\nevent: ")
	b.WriteString(e.Type)
	b.WriteString("\ndata: ")
	b.Write(body)
	b.WriteString("\n\n")
	return &frame{cursor: eventstore.Cursor{TxID: e.TxID, Position: e.GlobalPosition}, data: b.Bytes()}, nil
}

// signalFrame encodes an ephemeral signal: no id, so that a client's
// Last-Event-ID keeps pointing at the last stored event it saw.
func signalFrame(s livebus.Signal) (*frame, error) {
	if !isFieldValue(s.Type) {
		return nil, fmt.Errorf("signal type %q cannot be an SSE event name", s.Type)
	}
	body, err := oneLineJSON(s)
	if err != nil {
		return nil, fmt.Errorf("signal %s: %w", s.Type, err)
	}
	return &frame{data: namedFrame(s.Type, body)}, nil
}

// controlFrame encodes a frame the server sends about the stream itself
// (access_revoked, token_expired), without an id.
func controlFrame(event string, v any) []byte {
	body, err := oneLineJSON(v)
	if err != nil {
		body = []byte(`{}`)
	}
	return namedFrame(event, body)
}

func namedFrame(event string, body []byte) []byte {
	out := make([]byte, 0, len(event)+len(body)+16)
	out = append(out, "event: "...)
	out = append(out, event...)
	out = append(out, "\ndata: "...)
	out = append(out, body...)
	return append(out, "\n\n"...)
}

// retryFrame tells the client how long to wait before reconnecting.
func retryFrame(d time.Duration) []byte {
	return []byte("retry: " + strconv.FormatInt(d.Milliseconds(), 10) + "\n\n")
}

// pingFrame is the heartbeat comment.
var pingFrame = []byte(": ping\n\n")

// oneLineJSON encodes v without escaping HTML and without the trailing
// newline; JSON strings never hold a raw newline, so the result is one line.
func oneLineJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// isFieldValue reports whether s can follow "event: " on one line.
func isFieldValue(s string) bool {
	return s != "" && !strings.ContainsAny(s, "\r\n")
}
