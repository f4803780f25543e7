package task

import (
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

// EventType returns "task.submitted".
func (Submitted) EventType() string { return EventSubmitted }

// Started records that a worker claimed the task for one attempt. The
// worker gives the attempt up at Deadline; after it, another worker may
// claim the task again.
type Started struct {
	Worker   string    `json:"worker"`
	Attempt  int       `json:"attempt"`
	Deadline time.Time `json:"deadline"`
}

// EventType returns "task.started".
func (Started) EventType() string { return EventStarted }

// Progressed records how far the running attempt has come (0–100).
type Progressed struct {
	Progress int    `json:"progress"`
	Note     string `json:"note"`
}

// EventType returns "task.progressed".
func (Progressed) EventType() string { return EventProgressed }

// Completed records the expert's answer. ReplyMessageID is the id of the
// assistant message that carries Output into the conversation; both are
// empty when the expert had nothing to say.
type Completed struct {
	Output         string `json:"output"`
	ReplyMessageID string `json:"reply_message_id,omitempty"`
}

// EventType returns "task.completed".
func (Completed) EventType() string { return EventCompleted }

// Failed records that the task was given up, why, and after how many attempts.
type Failed struct {
	Reason   string `json:"reason"`
	Attempts int    `json:"attempts"`
}

// EventType returns "task.failed".
func (Failed) EventType() string { return EventFailed }

// Cancelled records that the task was cancelled, and why.
type Cancelled struct {
	Reason string `json:"reason"`
}

// EventType returns "task.cancelled".
func (Cancelled) EventType() string { return EventCancelled }

// decoder reads the stored events of task streams.
var decoder = domain.Decoder{
	EventSubmitted:  domain.As[Submitted](),
	EventStarted:    domain.As(func(e *Started) error { e.Deadline = e.Deadline.UTC(); return nil }),
	EventProgressed: domain.As[Progressed](),
	EventCompleted:  domain.As[Completed](),
	EventFailed:     domain.As[Failed](),
	EventCancelled:  domain.As[Cancelled](),
}

// Decode turns a stored event of the task stream back into its event struct,
// with times in UTC. It fails with domain.ErrUnknownEvent for an unknown type
// or schema version; upcasters from older schema versions belong in its
// table.
func Decode(eventType string, schemaVersion int, data []byte) (domain.Event, error) {
	return decoder.Decode(eventType, schemaVersion, data)
}
