package sse

import (
	"sync"
	"time"
)

// backlog is the frames waiting to be written to one stream. The hub adds
// without ever waiting; the stream's writer takes them all at once.
//
// A stream is too slow when its backlog stays above the soft limit for
// longer than the grace period, or reaches the hard limit at all. The grace
// period lets a healthy client absorb a burst: the log releases events in
// bursts whenever a long transaction held back the commit horizon, and then
// every stream is briefly far behind without being slow.
type backlog struct {
	soft, hard int
	grace      time.Duration

	mu        sync.Mutex
	frames    []*frame
	spare     []*frame  // the slice the writer gave back, reused
	overSince time.Time // when the backlog went above soft; zero when not
	// ready receives a value (coalesced) when frames are added.
	ready chan struct{}
}

func newBacklog(soft int, grace time.Duration) *backlog {
	return &backlog{soft: soft, hard: 16 * soft, grace: grace, ready: make(chan struct{}, 1)}
}

// add appends f without waking the writer (the caller wakes it, see
// Hub.wake); it reports false when the stream is too slow (f is then not
// added).
func (b *backlog) add(f *frame, now time.Time) bool {
	b.mu.Lock()
	n := len(b.frames)
	switch {
	case n >= b.hard:
		b.mu.Unlock()
		return false
	case n >= b.soft && b.overSince.IsZero():
		b.overSince = now
	case n >= b.soft && now.Sub(b.overSince) > b.grace:
		b.mu.Unlock()
		return false
	}
	b.frames = append(b.frames, f)
	b.mu.Unlock()
	return true
}

// wake tells the writer that frames are waiting.
func (b *backlog) wake() {
	select {
	case b.ready <- struct{}{}:
	default:
	}
}

// take returns every waiting frame, oldest first; give the slice back with
// recycle once written.
func (b *backlog) take() []*frame {
	b.mu.Lock()
	defer b.mu.Unlock()
	fs := b.frames
	b.frames, b.spare = b.spare[:0], nil
	b.overSince = time.Time{}
	return fs
}

// recycle hands a slice returned by take back for reuse.
func (b *backlog) recycle(fs []*frame) {
	clear(fs)
	b.mu.Lock()
	if cap(fs) <= b.hard {
		b.spare = fs[:0]
	}
	b.mu.Unlock()
}

// len returns the number of waiting frames.
func (b *backlog) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.frames)
}
