package eventstore

import "sync"

// firstEvents remembers the first event of the streams recently asked about
// (who a stream belongs to, what a task was submitted with), as read. A
// stored event never changes — the table refuses updates and deletes — so
// what it holds is never stale; when full, it starts over.
type firstEvents struct {
	max int

	mu sync.Mutex
	m  map[string]Event
}

func newFirstEvents(max int) *firstEvents {
	return &firstEvents{max: max, m: make(map[string]Event)}
}

func (f *firstEvents) get(streamID string) (Event, bool) {
	f.mu.Lock()
	e, ok := f.m[streamID]
	f.mu.Unlock()
	return e, ok
}

// add remembers e, which must be the first event of its stream.
func (f *firstEvents) add(e Event) {
	f.mu.Lock()
	if len(f.m) >= f.max {
		clear(f.m)
	}
	f.m[e.StreamID] = e
	f.mu.Unlock()
}
