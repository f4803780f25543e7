package security

import (
	"context"
	"errors"
	"runtime"
	"time"
)

// ErrBusy is returned by HashSlots.Acquire when every slot stayed taken for
// the whole wait: the caller should answer "retry shortly" (503 with
// Retry-After) rather than queue more work.
var ErrBusy = errors.New("password hashing is at capacity")

// HashSlots bounds how many password hashes (argon2id derivations, each
// holding DefaultParams.Memory of memory for tens of milliseconds) run at
// once in a process, so that memory stays bounded whatever unauthenticated
// clients send. It is a counting semaphore with a bounded wait; it is safe
// for concurrent use.
type HashSlots struct {
	slots chan struct{}
	wait  time.Duration
}

// DefaultHashSlots is the number of concurrent hashes NewHashSlots allows
// when given 0: one per processor, and at least two. More would not finish
// sooner (argon2id with one lane is CPU-bound) and would only hold more
// memory.
func DefaultHashSlots() int { return max(2, runtime.GOMAXPROCS(0)) }

// NewHashSlots returns slots for n concurrent hashes (0: DefaultHashSlots);
// Acquire waits at most wait for one to free up.
func NewHashSlots(n int, wait time.Duration) *HashSlots {
	if n <= 0 {
		n = DefaultHashSlots()
	}
	return &HashSlots{slots: make(chan struct{}, n), wait: max(wait, 0)}
}

// Size returns the number of slots.
func (s *HashSlots) Size() int { return cap(s.slots) }

// Acquire takes a slot, waiting at most the configured wait (and no longer
// than ctx allows); release gives it back and must be called exactly once.
// It fails with ErrBusy when no slot freed up in time, or with ctx's error.
func (s *HashSlots) Acquire(ctx context.Context) (release func(), err error) {
	release = func() { <-s.slots }
	select {
	case s.slots <- struct{}{}:
		return release, nil
	default:
	}
	if s.wait == 0 {
		return nil, ErrBusy
	}
	timer := time.NewTimer(s.wait)
	defer timer.Stop()
	select {
	case s.slots <- struct{}{}:
		return release, nil
	case <-timer.C:
		return nil, ErrBusy
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
