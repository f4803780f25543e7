package http

import (
	"context"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/queries"
)

// pageQuery is a paged list query as the list handlers call it.
type pageQuery[S any] func(ctx context.Context, a access.Actor, page queries.PageRequest, minPosition int64) (queries.Page[S], error)

// inParent binds a list query scoped to a parent resource (a workspace's
// conversations, a conversation's messages) to the request's :id.
func inParent[S any](c echo.Context, list func(context.Context, access.Actor, string, queries.PageRequest, int64) (queries.Page[S], error)) pageQuery[S] {
	return func(ctx context.Context, a access.Actor, page queries.PageRequest, minPosition int64) (queries.Page[S], error) {
		return list(ctx, a, c.Param("id"), page, minPosition)
	}
}

// answerPage answers a paged list: it reads Engram-Min-Position and the
// page parameters, runs list for the caller, and answers the rendered page
// with an ETag digested from each rendered item's key.
func answerPage[S, T any](c echo.Context, list pageQuery[S], render func(S) T, key func(T) string) error {
	pos, err := minPosition(c)
	if err != nil {
		return err
	}
	page, err := pageRequest(c)
	if err != nil {
		return err
	}
	a := actor(c)
	res, err := list(c.Request().Context(), a, page, pos)
	if err != nil {
		return err
	}
	out := listOf(res, render)
	return conditional(c, listETag(a.UserID, out, key), out)
}

// readByID runs a query for the resource named by the request's :id, as of
// Engram-Min-Position, for the caller.
func readByID[S any](c echo.Context, read func(context.Context, access.Actor, string, int64) (S, error)) (S, error) {
	pos, err := minPosition(c)
	if err != nil {
		var zero S
		return zero, err
	}
	return read(c.Request().Context(), actor(c), c.Param("id"), pos)
}

// changeIfMatch runs a change guarded by the request's If-Match and answers
// with its result.
func changeIfMatch[R any](c echo.Context, change func(ctx context.Context, match *int) (R, error), answer func(echo.Context, R) error) error {
	match, err := ifMatch(c)
	if err != nil {
		return err
	}
	res, err := change(c.Request().Context(), match)
	if err != nil {
		return err
	}
	return answer(c, res)
}
