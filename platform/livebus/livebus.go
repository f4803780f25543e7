// Package livebus carries ephemeral signals — typing indicators, status
// updates, streamed deltas — between Engram instances. Signals are not
// events: they are never stored, a subscriber that is not listening when one
// is published never sees it, and a subscriber that falls behind loses some.
// They reach live subscribers as SSE frames without an id.
//
// [Redis] publishes over Redis pub/sub so that every instance sees every
// signal; [Local] delivers within the process, for a single instance without
// Redis.
package livebus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sync"
)

// Signal types published by Engram.
const (
	// TypeTyping says that a user started or stopped typing in a conversation.
	TypeTyping = "typing"
	// TypeStatus is a progress update of work on a conversation (routing,
	// an expert at work).
	TypeStatus = "status"
	// TypeDelta is a piece of an answer being produced.
	TypeDelta = "delta"
)

// Signal is one ephemeral signal about a conversation (or, without a
// conversation, a workspace).
type Signal struct {
	// Type names the signal and becomes the SSE event name: TypeTyping,
	// TypeStatus, TypeDelta.
	Type string `json:"type"`
	// ConversationID is the conversation the signal is about.
	ConversationID string `json:"conversation_id,omitempty"`
	// WorkspaceID is the workspace of the conversation; left empty, the
	// receiver finds it from the conversation.
	WorkspaceID string `json:"workspace_id,omitempty"`
	// UserID is the user who caused the signal, if any.
	UserID string `json:"user_id,omitempty"`
	// Data is the signal's body, a JSON value.
	Data json.RawMessage `json:"data,omitempty"`
}

// MaxDataBytes bounds the size of a signal's data.
const MaxDataBytes = 64 << 10

var typeName = regexp.MustCompile(`^[a-z][a-z0-9_.]{0,63}$`)

// Validate reports what is wrong with s: a type that is not a lower-case
// name, no conversation or workspace, or data that is not one JSON value of
// at most MaxDataBytes.
func (s Signal) Validate() error {
	var problems []error
	if !typeName.MatchString(s.Type) {
		problems = append(problems, fmt.Errorf("type %q is not a lower-case name", s.Type))
	}
	if s.ConversationID == "" && s.WorkspaceID == "" {
		problems = append(problems, errors.New("a conversation or workspace id is required"))
	}
	if len(s.Data) > MaxDataBytes {
		problems = append(problems, fmt.Errorf("data exceeds %d bytes", MaxDataBytes))
	} else if len(s.Data) > 0 && !json.Valid(s.Data) {
		problems = append(problems, errors.New("data is not valid JSON"))
	}
	if len(problems) > 0 {
		return fmt.Errorf("livebus: invalid signal: %w", errors.Join(problems...))
	}
	return nil
}

// Bus publishes signals to every subscriber of every instance.
type Bus interface {
	// Publish sends s to the subscribers. It returns an error for an
	// invalid signal (see Signal.Validate) or when the transport fails;
	// delivery itself is best effort.
	Publish(ctx context.Context, s Signal) error
	// Subscribe returns a channel of the signals published from now on and
	// a function that ends the subscription. A subscriber that does not
	// keep up loses signals rather than slowing the others.
	Subscribe() (<-chan Signal, func())
}

// subscriberBuffer is how many signals a subscriber may fall behind.
const subscriberBuffer = 1024

// fanout delivers signals to local subscribers without blocking. It is
// safe for concurrent use.
type fanout struct {
	mu   sync.Mutex
	subs map[chan Signal]struct{}
}

// subscribe adds a subscriber; the function it returns removes it.
func (f *fanout) subscribe() (<-chan Signal, func()) {
	ch := make(chan Signal, subscriberBuffer)
	f.mu.Lock()
	if f.subs == nil {
		f.subs = map[chan Signal]struct{}{}
	}
	f.subs[ch] = struct{}{}
	f.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			f.mu.Lock()
			delete(f.subs, ch)
			f.mu.Unlock()
		})
	}
}

// send hands s to every subscriber that has room for it.
func (f *fanout) send(s Signal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ch := range f.subs {
		select {
		case ch <- s:
		default: // the subscriber is behind: this signal is lost for it
		}
	}
}
