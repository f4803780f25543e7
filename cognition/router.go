package cognition

import (
	"context"
	"encoding/json"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/conversation"
)

// Message is a posted message as a Router sees it.
type Message struct {
	ID             string
	ConversationID string
	AuthorID       string
	Role           string
	Content        string
	Metadata       json.RawMessage
}

// Routing actions (see conversation.ActionRespond and the others).
const (
	ActionRespond  = conversation.ActionRespond
	ActionProcess  = conversation.ActionProcess
	ActionDelegate = conversation.ActionDelegate
	ActionIgnore   = conversation.ActionIgnore
)

// Priorities of a decision: 1 is the least urgent, 5 the most.
const (
	MinPriority     = conversation.MinPriority
	MaxPriority     = conversation.MaxPriority
	DefaultPriority = 3
)

// Decision is how a message is to be handled.
type Decision struct {
	// Action is respond (an expert answers), process (the message is
	// remembered, without an answer), delegate (the named expert handles
	// it) or ignore.
	Action string
	// Expert names the expert of respond and delegate.
	Expert string
	// Priority is 1–5, 5 the most urgent.
	Priority int
	// Reason says why, for people reading the log.
	Reason string
	// Input is what the expert is given, or what is remembered: the
	// message without its command word. It is not recorded with the
	// decision.
	Input string
}

// Validate reports every problem of the decision at once, as a
// domain.CodeInvalid error.
func (d Decision) Validate() error {
	var v domain.Validation
	v.OneOf("action", d.Action, ActionRespond, ActionProcess, ActionDelegate, ActionIgnore)
	if d.Action == ActionRespond || d.Action == ActionDelegate {
		v.Check(d.Expert != "", "expert", "is required for %s", d.Action)
	}
	v.Check(d.Priority >= MinPriority && d.Priority <= MaxPriority, "priority", "must be between %d and %d", MinPriority, MaxPriority)
	return v.Err()
}

// Router decides how a message is handled. Implementations must be quick
// and must not call the network: they run in the consumer group that reads
// every message. Deterministic routers make replays decide the same way;
// the decision on record always wins over a new one.
type Router interface {
	// Route returns the decision for a message posted by a user. An error
	// is retried, so it is for failures, not for messages the router does
	// not understand (those are answered, or ignored, by a decision).
	Route(ctx context.Context, m Message) (Decision, error)
}
