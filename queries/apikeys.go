package queries

import (
	"context"

	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/projections"
)

// ListAPIKeysHandler lists the caller's API keys.
type ListAPIKeysHandler struct{ r *reader }

// Handle returns one page of the caller's keys, revoked ones included, newest
// first. Only session credentials list keys (access.CheckCredentials).
func (h *ListAPIKeysHandler) Handle(ctx context.Context, actor access.Actor, page PageRequest, minPosition int64) (Page[APIKey], error) {
	if err := access.CheckCredentials(actor); err != nil {
		return Page[APIKey]{}, err
	}
	cur, err := decodeCursor(page.Cursor)
	if err != nil {
		return Page[APIKey]{}, err
	}
	if err := h.r.wait(ctx, projections.SessionsProjector, minPosition); err != nil {
		return Page[APIKey]{}, err
	}
	const columns = `id, name, prefix, scopes, created_at, expires_at, revoked_at`
	limit := page.limit()
	return selectPage(ctx, h.r, cur, limit,
		`SELECT `+columns+` FROM api_keys WHERE user_id = $1
			ORDER BY created_at DESC, id DESC LIMIT $2`,
		`SELECT `+columns+` FROM api_keys WHERE user_id = $1
			AND (created_at, id) < ($3, $4) ORDER BY created_at DESC, id DESC LIMIT $2`,
		actor.UserID, func(k APIKey) timeCursor { return timeCursor{T: k.CreatedAt, ID: k.ID} })
}
