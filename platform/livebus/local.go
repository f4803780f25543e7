package livebus

import (
	"context"
	"sync"
)

// Local is a Bus within one process: signals reach the subscribers of this
// instance only.
type Local struct {
	mu  sync.Mutex
	out fanout
}

var _ Bus = (*Local)(nil)

// NewLocal returns an in-process Bus.
func NewLocal() *Local { return &Local{} }

// Publish implements Bus.
func (l *Local) Publish(_ context.Context, s Signal) error {
	if err := s.Validate(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.out.send(s)
	return nil
}

// Subscribe implements Bus.
func (l *Local) Subscribe() (<-chan Signal, func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ch := l.out.add()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			l.mu.Lock()
			delete(l.out.subs, ch)
			l.mu.Unlock()
		})
	}
}
