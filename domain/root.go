package domain

import "slices"

// Aggregate is what the code that loads and stores aggregates needs from
// each of them. Every aggregate embeds a Root, which provides all of it but
// Apply.
type Aggregate interface {
	// Apply changes the state by one event, stored or just recorded.
	Apply(Event)
	// Version returns the number of events applied, stored and pending.
	Version() int
	// Pending returns the events recorded since the aggregate was loaded.
	Pending() []Event
	// ClearPending forgets the pending events, once they have been stored.
	ClearPending()
}

// Root is the bookkeeping that every aggregate embeds: how many events it
// has applied (its version, which is its stream's version once the pending
// events are stored) and which of them were recorded but not stored yet.
//
// An aggregate's Apply — the one switch in which its state changes — calls
// Applied once for every event; its behaviour methods check their rules and
// then Record the events they decide on. The zero Root is an aggregate that
// has applied nothing.
type Root struct {
	version int
	pending []Event
}

// Applied counts one more applied event. Apply calls it for every event,
// whatever its type.
func (r *Root) Applied() { r.version++ }

// Record applies e with apply, the aggregate's own Apply, and keeps it
// pending until it is stored.
func (r *Root) Record(apply func(Event), e Event) {
	apply(e)
	r.pending = append(r.pending, e)
}

// Version returns the number of events applied, stored and pending.
func (r *Root) Version() int { return r.version }

// Pending returns the events recorded since the aggregate was loaded, in order.
func (r *Root) Pending() []Event { return slices.Clone(r.pending) }

// ClearPending forgets the pending events, once they have been stored.
func (r *Root) ClearPending() { r.pending = nil }
