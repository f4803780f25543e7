package http

import (
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/queries"
)

// minPosition parses the Engram-Min-Position header (0 when absent).
func minPosition(c echo.Context) (int64, error) {
	raw := c.Request().Header.Get("Engram-Min-Position")
	if raw == "" {
		return 0, nil
	}
	n, err := parseNonNegative(raw)
	if err != nil {
		return 0, invalid(domain.FieldError{Field: "Engram-Min-Position", Message: "must be a non-negative integer (a position from Engram-Position)"})
	}
	return n, nil
}

// ifMatch parses If-Match: "3", W/"3" or 3. "*" and absence mean no
// condition.
func ifMatch(c echo.Context) (*int, error) {
	raw := strings.TrimSpace(c.Request().Header.Get("If-Match"))
	if raw == "" || raw == "*" {
		return nil, nil
	}
	raw = strings.TrimPrefix(raw, "W/")
	raw = strings.Trim(raw, `"`)
	n, err := parseNonNegative(raw)
	if err != nil || n > 1<<31-1 {
		return nil, invalid(domain.FieldError{Field: "If-Match", Message: `must be an ETag returned by this API, e.g. "3"`})
	}
	v := int(n)
	return &v, nil
}

func parseNonNegative(s string) (int64, error) {
	if len(s) > 19 {
		return 0, strconv.ErrRange
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, strconv.ErrSyntax
	}
	return n, nil
}

// pageRequest parses cursor (or after) and limit.
func pageRequest(c echo.Context) (queries.PageRequest, error) {
	p := queries.PageRequest{Cursor: c.QueryParam("cursor")}
	if after := c.QueryParam("after"); after != "" {
		if p.Cursor != "" {
			return p, invalid(domain.FieldError{Field: "after", Message: "give cursor or after, not both"})
		}
		p.Cursor = after
	}
	if raw := c.QueryParam("limit"); raw != "" {
		n, err := parseNonNegative(raw)
		if err != nil || n < 1 || n > queries.MaxLimit {
			return p, invalid(domain.FieldError{Field: "limit", Message: "must be an integer from 1 to " + strconv.Itoa(queries.MaxLimit)})
		}
		p.Limit = int(n)
	}
	return p, nil
}
