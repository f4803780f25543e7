package http

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/queries"
)

// listQuery is a paged list query as the list handlers call it: q is the
// page it asks for (a queries.PageRequest, or a search that holds one).
type listQuery[Q, S any] func(ctx context.Context, a access.Actor, q Q, minPosition int64) (queries.Page[S], error)

// inParent binds a list query scoped to a parent resource (a workspace's
// conversations, a conversation's messages) to the request's :id.
func inParent[Q, S any](c echo.Context, list func(context.Context, access.Actor, string, Q, int64) (queries.Page[S], error)) listQuery[Q, S] {
	return func(ctx context.Context, a access.Actor, q Q, minPosition int64) (queries.Page[S], error) {
		return list(ctx, a, c.Param("id"), q, minPosition)
	}
}

// answerPage answers a paged list: it reads Engram-Min-Position and, with
// parse, the page asked for, runs list for the caller, and answers the
// rendered page with an ETag digested from each rendered item's key.
func answerPage[Q, S any](c echo.Context, parse func(echo.Context) (Q, error), list listQuery[Q, S], key func(S) string) error {
	pos, err := minPosition(c)
	if err != nil {
		return err
	}
	q, err := parse(c)
	if err != nil {
		return err
	}
	a := actor(c)
	res, err := list(c.Request().Context(), a, q, pos)
	if err != nil {
		return err
	}
	if res.Items == nil {
		res.Items = []S{} // [] on the wire, not null
	}
	return conditional(c, listETag(a.UserID, res, key), res)
}

// answerPageAs is answerPage for a list whose items render shows.
func answerPageAs[Q, S, T any](c echo.Context, parse func(echo.Context) (Q, error), list listQuery[Q, S], render func(S) T, key func(T) string) error {
	return answerPage(c, parse, func(ctx context.Context, a access.Actor, q Q, pos int64) (queries.Page[T], error) {
		p, err := list(ctx, a, q, pos)
		if err != nil {
			return queries.Page[T]{}, err
		}
		return listOf(p, render), nil
	}, key)
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

// getVersioned answers a GET of the resource named by :id, read from its
// stream's read model, with the strong ETag of the stream version it
// reports.
func getVersioned[S any](c echo.Context, read func(context.Context, access.Actor, string, int64) (S, error), version func(S) int) error {
	r, err := readByID(c, read)
	if err != nil {
		return err
	}
	return conditional(c, versionETag(version(r)), r)
}

// change is the result of a command that changed a resource.
type change interface{ Appended() commands.Written }

// changeIfMatch runs a change guarded by the request's If-Match and answers
// with the resource it changed (see answerChange).
func changeIfMatch[R change, S any](c echo.Context, run func(ctx context.Context, match *int) (R, error), after func(context.Context, access.Actor, R) S) error {
	match, err := ifMatch(c)
	if err != nil {
		return err
	}
	res, err := run(c.Request().Context(), match)
	if err != nil {
		return err
	}
	return answerChange(c, res, after)
}

// answerChange answers a change with its version and position, and the
// resource it changed as after shows it (the read model once it has
// applied the change, or the resource as the command saw it when the read
// model is late).
func answerChange[R change, S any](c echo.Context, res R, after func(context.Context, access.Actor, R) S) error {
	w := res.Appended()
	positionHeaders(c, w.Version, w.Position)
	return c.JSON(http.StatusOK, after(c.Request().Context(), actor(c), res))
}
