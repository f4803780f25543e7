package main

import (
	"context"
	"time"

	"github.com/engramhq/engram/projections"
	"github.com/engramhq/engram/projections/redis"
)

// membershipModels waits until every read model that queries authorize
// from has applied a membership change: the SQL workspaces model and, when
// Redis read models are on, the Redis workspaces model while it is live
// (queries read a model that is not live from SQL instead).
type membershipModels struct {
	checkpoints *projections.Checkpoints
	redis       *redis.ReadModels // nil: no Redis read models
	timeout     time.Duration
}

// WaitMemberships returns once every model has applied position, or
// projections.ErrNotCaughtUp after the timeout.
func (m membershipModels) WaitMemberships(ctx context.Context, position int64) error {
	if err := m.checkpoints.WaitFor(ctx, projections.WorkspacesProjector, position); err != nil {
		return err
	}
	if m.redis == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	delay := 2 * time.Millisecond
	for {
		current := true
		for _, st := range m.redis.Status(ctx) {
			if st.Name == redis.WorkspacesProjector && st.State == redis.Live && st.Position < position {
				current = false
			}
		}
		if current {
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return projections.ErrNotCaughtUp
		case <-t.C:
		}
		delay = min(2*delay, 25*time.Millisecond)
	}
}
