package http

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/transport/request"
)

// corsServer serves GET /x behind the CORS middleware, recording whether
// the handler ran and whether the request was marked cross-origin refused.
func corsServer(origins ...string) (*echo.Echo, *bool, *bool) {
	s := &Server{cfg: Config{CORSAllowedOrigins: origins}}
	e := echo.New()
	ran, refused := new(bool), new(bool)
	e.Use(s.cors())
	e.GET("/x", func(c echo.Context) error {
		*ran, *refused = true, request.CrossOriginRefused(c)
		return c.NoContent(http.StatusOK)
	})
	return e, ran, refused
}

func TestCORSMiddleware(t *testing.T) {
	const app = "https://app.example.com"
	cases := []struct {
		name                 string
		origins              []string
		method, origin, host string
		wantStatus           int
		wantAllowOrigin      string
		wantRan, wantRefused bool
	}{
		{name: "no origin", origins: []string{app}, method: "GET", wantStatus: 200, wantRan: true},
		{name: "allowed origin", origins: []string{app}, method: "GET", origin: app, wantStatus: 200, wantAllowOrigin: app, wantRan: true},
		{name: "allowed preflight", origins: []string{app}, method: "OPTIONS", origin: app, wantStatus: 204, wantAllowOrigin: app},
		{name: "unlisted origin", origins: []string{app}, method: "GET", origin: "https://evil.example.com", wantStatus: 200, wantRan: true, wantRefused: true},
		{name: "unlisted preflight", origins: []string{app}, method: "OPTIONS", origin: "https://evil.example.com", wantStatus: 204},
		{name: "same origin", origins: []string{app}, method: "GET", origin: "http://engram.example.com", host: "engram.example.com", wantStatus: 200, wantRan: true},
		{name: "same origin behind TLS", method: "GET", origin: "https://engram.example.com", host: "engram.example.com", wantStatus: 200, wantRan: true},
		{name: "none configured", method: "GET", origin: app, wantStatus: 200, wantRan: true, wantRefused: true},
		{name: "null origin", method: "GET", origin: "null", wantStatus: 200, wantRan: true, wantRefused: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, ran, refused := corsServer(c.origins...)
			req := httptest.NewRequest(c.method, "/x", nil)
			if c.host != "" {
				req.Host = c.host
			}
			if c.origin != "" {
				req.Header.Set("Origin", c.origin)
			}
			if c.method == "OPTIONS" {
				req.Header.Set("Access-Control-Request-Method", "POST")
			}
			rec := httptest.NewRecorder()
			e.ServeHTTP(rec, req)
			if rec.Code != c.wantStatus || *ran != c.wantRan || *refused != c.wantRefused {
				t.Fatalf("status %d, handler ran %v, refused %v; want %d, %v, %v", rec.Code, *ran, *refused, c.wantStatus, c.wantRan, c.wantRefused)
			}
			if got := rec.Header().Get("Access-Control-Allow-Origin"); got != c.wantAllowOrigin {
				t.Fatalf("Access-Control-Allow-Origin %q, want %q", got, c.wantAllowOrigin)
			}
			if c.wantAllowOrigin == "" {
				for k := range rec.Header() {
					if len(k) > 15 && k[:15] == "Access-Control-" {
						t.Errorf("unexpected %s: %s", k, rec.Header().Get(k))
					}
				}
			}
			if c.wantAllowOrigin != "" && c.method == "GET" && rec.Header().Get("Access-Control-Expose-Headers") == "" {
				t.Error("no Access-Control-Expose-Headers")
			}
			if rec.Header().Get("Access-Control-Allow-Credentials") != "" {
				t.Error("credentials allowed")
			}
		})
	}
}
