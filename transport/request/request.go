// Package request holds what Engram's HTTP transports (the API and the live
// streams) know about a request on their shared echo router: who makes it
// (the authenticated actor and when its credential expires), whether it
// comes from a page of a refused origin, and its JSON body, decoded
// strictly.
package request

import (
	"time"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/domain/access"
)

const (
	actorKey              = "engram.actor"
	expiryKey             = "engram.credential_expiry"
	crossOriginRefusedKey = "engram.cross_origin_refused"
)

// CodeTooManyRequests is the domain.Error code of a request over a limit:
// the API answers it with 429 and Retry-After (1 s unless the handler set
// the header).
const CodeTooManyRequests = "too_many_requests"

// SetActor records the actor a request authenticated as; expiresAt is when
// its credential expires (zero: no expiry known, as for API keys).
func SetActor(c echo.Context, a access.Actor, expiresAt time.Time) {
	c.Set(actorKey, a)
	if !expiresAt.IsZero() {
		c.Set(expiryKey, expiresAt)
	}
}

// Actor returns the actor a request authenticated as, and false for an
// anonymous request.
func Actor(c echo.Context) (access.Actor, bool) {
	a, ok := c.Get(actorKey).(access.Actor)
	return a, ok
}

// CredentialExpiry returns when the request's credential stops being valid:
// the expiry of its access token, and false for API keys (checked when the
// request starts only) and anonymous requests.
func CredentialExpiry(c echo.Context) (time.Time, bool) {
	t, ok := c.Get(expiryKey).(time.Time)
	return t, ok && !t.IsZero()
}

// RefuseCrossOrigin marks a request that comes from a page of an origin
// that is neither the server's nor an allowed one.
func RefuseCrossOrigin(c echo.Context) { c.Set(crossOriginRefusedKey, true) }

// CrossOriginRefused reports whether the request comes from a page of an
// origin that is neither this server's nor an allowed one (a browser sent
// an Origin header naming it). The browser will not show the answer to the
// page, but the request was made all the same: spend nothing on it.
func CrossOriginRefused(c echo.Context) bool {
	refused, _ := c.Get(crossOriginRefusedKey).(bool)
	return refused
}
