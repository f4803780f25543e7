// Package engine runs cognition: the Reactor, a short consumer-group handler
// that reacts to events (it routes each user message, remembers messages,
// submits tasks and posts the answers of completed tasks), and the Worker,
// which claims submitted tasks and runs their experts outside any
// transaction, with retries, a deadline per attempt and cancellation.
//
// Side effects are safe to repeat: every id the engine creates is derived
// from the event it reacts to (TaskID, ReplyID, MessageItemID, EntityItemID),
// and every command it issues refuses, or does nothing on, a second
// attempt. A redelivered event, a replay from the start of the log or a
// second instance therefore never submits a task twice, runs a finished task
// again or posts a second answer.
package engine

import "github.com/google/uuid"

// namespace is the UUID namespace of the ids the engine derives (UUIDv5).
var namespace = uuid.MustParse("5b8f0f0e-6a43-4f55-9a55-0c9f3e2b7d10")

func derive(kind, id string) string { return uuid.NewSHA1(namespace, []byte(kind+"/"+id)).String() }

// TaskID returns the id of the task submitted for a message.
func TaskID(messageID string) string { return derive("task", messageID) }

// ReplyID returns the id of the assistant message that answers a task.
func ReplyID(taskID string) string { return derive("reply", taskID) }

// MessageItemID returns the id of the memory item that stores a message.
func MessageItemID(messageID string) string { return derive("memory-message", messageID) }

// EntityItemID returns the id of the entity item a "/remember" message
// stores when it names a new entity.
func EntityItemID(messageID string) string { return derive("memory-entity", messageID) }

// ActorID is the actor of the events the reactor records.
const ActorID = "cognition"
