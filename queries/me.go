package queries

import (
	"context"
	"errors"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/user"
	"github.com/engramhq/engram/projections"
)

// MeHandler returns the authenticated user.
type MeHandler struct{ r *reader }

// Handle returns the actor's own user.
func (h *MeHandler) Handle(ctx context.Context, actor access.Actor, minPosition int64) (User, error) {
	if err := access.CheckRead(actor); err != nil {
		return User{}, err
	}
	if err := h.r.wait(ctx, projections.UsersProjector, minPosition); err != nil {
		return User{}, err
	}
	const read = `SELECT id, email, display_name, roles, created_at, updated_at, version FROM users WHERE id = $1`
	u, err := getRow[User](ctx, h.r, "user", read, actor.UserID)
	var missing *domain.Error
	if !errors.As(err, &missing) || missing.Code != domain.CodeNotFound {
		return u, err
	}
	// A token proves the account exists; a users read model without it is
	// late (a login on another instance right after registering): wait for
	// it to apply the account's last event, then read again.
	var last int64
	if err := h.r.db.GetContext(ctx, &last, `SELECT coalesce(max(global_position), 0) FROM events WHERE stream_id = $1`,
		user.StreamID(actor.UserID)); err != nil {
		return User{}, err
	}
	if last == 0 {
		return User{}, err
	}
	if err := h.r.wait(ctx, projections.UsersProjector, last); err != nil {
		return User{}, err
	}
	return getRow[User](ctx, h.r, "user", read, actor.UserID)
}
