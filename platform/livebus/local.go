package livebus

import (
	"context"
)

// Local is a Bus within one process: signals reach the subscribers of this
// instance only.
type Local struct {
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
	l.out.send(s)
	return nil
}

// Subscribe implements Bus.
func (l *Local) Subscribe() (<-chan Signal, func()) { return l.out.subscribe() }
