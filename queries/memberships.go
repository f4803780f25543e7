package queries

import (
	"context"
	"time"

	"github.com/engramhq/engram/projections"
	"github.com/engramhq/engram/projections/redis"
)

// MembershipsHandler tells when a change of membership holds for every
// query: queries authorize from the membership read models, so a member
// removed from a workspace reads on until they have applied the removal.
type MembershipsHandler struct{ r *reader }

// Await returns once every read model that queries authorize from has
// applied position: the SQL memberships and, with hot read models, the hot
// workspaces model while it is live (queries read a model that is not live
// from SQL instead). It fails with projections.ErrNotCaughtUp when one is
// late. Position 0 returns at once.
func (h *MembershipsHandler) Await(ctx context.Context, position int64) error {
	if position <= 0 {
		return nil
	}
	if err := h.r.waiter.WaitFor(ctx, position, projections.WorkspacesProjector); err != nil {
		return err
	}
	if h.r.hot == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, h.r.timeout)
	defer cancel()
	delay := 2 * time.Millisecond
	for !h.hotWorkspacesApplied(ctx, position) {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return projections.ErrNotCaughtUp
		case <-t.C:
		}
		delay = min(2*delay, 25*time.Millisecond)
	}
	return nil
}

// hotWorkspacesApplied reports whether the hot workspaces model has applied
// position, or is not live (and so not read).
func (h *MembershipsHandler) hotWorkspacesApplied(ctx context.Context, position int64) bool {
	for _, st := range h.r.hot.Status(ctx) {
		if st.Name == redis.WorkspacesProjector && st.State == redis.Live && st.Position < position {
			return false
		}
	}
	return true
}
