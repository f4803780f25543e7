package http

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/engramhq/engram/transport/request"
)

// corsExposedHeaders are the response headers a page of an allowed origin
// may read.
var corsExposedHeaders = []string{"ETag", "Engram-Position", "Location", "X-Request-Id", "Retry-After"}

// corsAllowedHeaders are the request headers a page of an allowed origin
// may send.
var corsAllowedHeaders = []string{
	echo.HeaderAuthorization, echo.HeaderContentType, "Idempotency-Key", "If-Match", "If-None-Match",
	"Engram-Min-Position", "Last-Event-ID", echo.HeaderXRequestID, "X-Correlation-ID",
}

// corsMaxAge is how long, in seconds, a browser may keep a preflight's answer.
const corsMaxAge = 600

// cors answers preflights and marks the answers for the origins of
// Config.CORSAllowedOrigins, and only for them: a page of any other origin
// gets no CORS header, so that the browser keeps its answers from it. The
// API authenticates with the Authorization header (or an SSE ticket in the
// URL), never with cookies, so credentials are not allowed: a page must
// hold its own token. A request from another origin than this server's or
// an allowed one is marked (see request.CrossOriginRefused), so that the SSE
// transport refuses its ticket before looking at it.
func (s *Server) cors() echo.MiddlewareFunc {
	allowed := make(map[string]bool, len(s.cfg.CORSAllowedOrigins))
	for _, o := range s.cfg.CORSAllowedOrigins {
		allowed[o] = true
	}
	mark := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if origin := r.Header.Get(echo.HeaderOrigin); origin != "" && !allowed[origin] && !sameOrigin(origin, r) {
				request.RefuseCrossOrigin(c)
			}
			return next(c)
		}
	}
	if len(allowed) == 0 {
		return mark
	}
	corsHandler := middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOriginFunc: func(origin string) (bool, error) { return allowed[origin], nil },
		AllowMethods:    []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete},
		AllowHeaders:    corsAllowedHeaders,
		ExposeHeaders:   corsExposedHeaders,
		MaxAge:          corsMaxAge,
	})
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return mark(corsHandler(next))
	}
}

// sameOrigin reports whether origin names the host the request was sent
// to. The scheme is not compared: behind a proxy that ends TLS the server
// sees http for an https page.
func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}
