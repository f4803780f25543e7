package task

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/engramhq/engram/domain"
)

// Event type names of the task stream; they never change once stored.
const (
	EventSubmitted  = "task.submitted"
	EventStarted    = "task.started"
	EventProgressed = "task.progressed"
	EventCompleted  = "task.completed"
	EventFailed     = "task.failed"
	EventCancelled  = "task.cancelled"
)

// Submitted records a piece of work handed to a domain expert: the message
// it answers and the input the expert gets.
type Submitted struct {
	TaskID         string `json:"task_id"`
	WorkspaceID    string `json:"workspace_id"`
	ConversationID string `json:"conversation_id"`
	MessageID      string `json:"message_id"`
	// RequestedBy is the author of the message.
	RequestedBy string `json:"requested_by"`
	Expert      string `json:"expert"`
	Input       string `json:"input"`
	Priority    int    `json:"priority"`
}

// Started records that a worker claimed the task for one attempt. The
// worker gives the attempt up at Deadline; after it, another worker may
// claim the task again.
type Started struct {
	Worker   string    `json:"worker"`
	Attempt  int       `json:"attempt"`
	Deadline time.Time `json:"deadline"`
}

// Progressed records how far the running attempt has come (0–100).
type Progressed struct {
	Progress int    `json:"progress"`
	Note     string `json:"note"`
}

// Completed records the expert's answer. ReplyMessageID is the id of the
// assistant message that carries Output into the conversation; both are
// empty when the expert had nothing to say.
type Completed struct {
	Output         string `json:"output"`
	ReplyMessageID string `json:"reply_message_id,omitempty"`
}

// Failed records that the task was given up, why, and after how many attempts.
type Failed struct {
	Reason   string `json:"reason"`
	Attempts int    `json:"attempts"`
}

// Cancelled records that the task was cancelled, and why.
type Cancelled struct {
	Reason string `json:"reason"`
}

// EventType returns "task.submitted".
func (Submitted) EventType() string { return EventSubmitted }

// EventType returns "task.started".
func (Started) EventType() string { return EventStarted }

// EventType returns "task.progressed".
func (Progressed) EventType() string { return EventProgressed }

// EventType returns "task.completed".
func (Completed) EventType() string { return EventCompleted }

// EventType returns "task.failed".
func (Failed) EventType() string { return EventFailed }

// EventType returns "task.cancelled".
func (Cancelled) EventType() string { return EventCancelled }

// Decode turns a stored event of the task stream back into its event struct,
// with times in UTC. It fails with domain.ErrUnknownEvent for an unknown type
// or schema version; upcasters from older schema versions belong here.
func Decode(eventType string, schemaVersion int, data []byte) (domain.Event, error) {
	if schemaVersion != 1 {
		return nil, fmt.Errorf("decode %s v%d: %w", eventType, schemaVersion, domain.ErrUnknownEvent)
	}
	var (
		e   domain.Event
		err error
	)
	switch eventType {
	case EventSubmitted:
		var s Submitted
		err = json.Unmarshal(data, &s)
		e = s
	case EventStarted:
		var s Started
		err = json.Unmarshal(data, &s)
		s.Deadline = s.Deadline.UTC()
		e = s
	case EventProgressed:
		var p Progressed
		err = json.Unmarshal(data, &p)
		e = p
	case EventCompleted:
		var c Completed
		err = json.Unmarshal(data, &c)
		e = c
	case EventFailed:
		var f Failed
		err = json.Unmarshal(data, &f)
		e = f
	case EventCancelled:
		var c Cancelled
		err = json.Unmarshal(data, &c)
		e = c
	default:
		return nil, fmt.Errorf("decode %s v%d: %w", eventType, schemaVersion, domain.ErrUnknownEvent)
	}
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", eventType, err)
	}
	return e, nil
}
