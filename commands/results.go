package commands

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/catalog"
	"github.com/engramhq/engram/domain/workspace"
	"github.com/engramhq/engram/eventstore"
)

// ErrPreconditionFailed means the client's If-Match version is not the
// current version of the resource. Nothing was written.
var ErrPreconditionFailed = errors.New("precondition failed: the resource has changed")

// Written says where a command's events landed.
type Written struct {
	// Events are the appended events (empty when nothing changed).
	Events []eventstore.Event
	// Version is the stream version after the command.
	Version int
	// Position is the global position of the last appended event (0 when
	// nothing changed).
	Position int64
}

func written(res eventstore.AppendResult, version int) Written {
	return Written{Events: res.Events, Version: version, Position: res.LastPosition()}
}

// Appended returns w. Every command's result embeds its Written, so this
// gives the version and position of any result to code that answers every
// change alike.
func (w Written) Appended() Written { return w }

// RecordedAt is when the command's events were recorded (zero when it
// wrote none).
func (w Written) RecordedAt() time.Time {
	if len(w.Events) == 0 {
		return time.Time{}
	}
	return w.Events[len(w.Events)-1].RecordedAt
}

// StartedStream reports whether the command's events are the first of their
// stream: the command created what it wrote about.
func (w Written) StartedStream() bool {
	return len(w.Events) > 0 && w.Events[0].StreamVersion == 1
}

// lastPending returns the latest event of type E that agg recorded and has
// not appended yet: what a command decided, as the aggregate normalized it.
func lastPending[E domain.Event](agg interface{ Pending() []domain.Event }) E {
	pending := agg.Pending()
	for i := len(pending) - 1; i >= 0; i-- {
		if e, ok := pending[i].(E); ok {
			return e
		}
	}
	var none E
	return none
}

// UserState is a user as seen by a command, without secrets: its state as
// it may be shown.
type UserState = catalog.UserState

// WorkspaceState is a workspace right after a command.
type WorkspaceState struct {
	ID          string
	OwnerID     string
	Name        string
	Description string
	Config      json.RawMessage
	Archived    bool
	Members     map[string]string
}

func workspaceState(w *workspace.Workspace) WorkspaceState {
	return WorkspaceState{ID: w.ID(), OwnerID: w.OwnerID(), Name: w.Name(), Description: w.Description(),
		Config: w.Config(), Archived: w.Archived(), Members: w.Members()}
}

// ConversationState is a conversation right after a command.
type ConversationState = catalog.ConversationState

// keepingState returns decide followed, when it succeeds, by storing in
// *state the aggregate's state as stateOf renders it: what a command returns
// is the state its own decision produced.
func keepingState[T, S any](decide decideFunc[T], stateOf func(T) S, state *S) decideFunc[T] {
	return func(agg T) error {
		if err := decide(agg); err != nil {
			return err
		}
		*state = stateOf(agg)
		return nil
	}
}

// ifMatching returns decide preceded by the If-Match check of the
// aggregate's version.
func ifMatching[T aggregate](ifMatch *int, decide decideFunc[T]) decideFunc[T] {
	return func(agg T) error {
		if err := checkIfMatch(ifMatch, agg.Version()); err != nil {
			return err
		}
		return decide(agg)
	}
}

// checkIfMatch enforces an optional If-Match version.
func checkIfMatch(ifMatch *int, version int) error {
	if ifMatch != nil && *ifMatch != version {
		return ErrPreconditionFailed
	}
	return nil
}
