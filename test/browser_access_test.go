package test

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/engramhq/engram/test/enginetest"
)

// ticketOf mints an SSE ticket as c.
func ticketOf(t *testing.T, c *enginetest.Client) string {
	t.Helper()
	ticket, _ := c.Must(http.StatusOK, "POST", "/v1/auth/sse-ticket", nil).Map(t)["ticket"].(string)
	if ticket == "" {
		t.Fatal("no ticket")
	}
	return ticket
}

// An EventSource reconnecting to the URL it was given, with Last-Event-ID,
// gets 200 and exactly what it missed; the ticket opens no other stream.
func TestTicketReconnectResumesWithoutLossOrDuplicate(t *testing.T) {
	inst := enginetest.Start(t, enginetest.Options{})
	lw := newLiveWorld(t, inst)
	browser := inst.Client(t)
	url := "/v1/conversations/" + lw.c1 + "/events?ticket=" + ticketOf(t, lw.ada)

	first := browser.Stream(url)
	if first.Status != http.StatusOK {
		t.Fatalf("first stream: status %d: %s", first.Status, first.Body)
	}
	m1 := lw.post(t, "m1", lw.ada, lw.c1)
	if got := lw.labels(until(first, m1)); !slices.Equal(got, []string{"m1"}) {
		t.Fatalf("first stream received %v", got)
	}
	first.Close()

	lw.post(t, "m2", lw.ada, lw.c1)
	lw.post(t, "other", lw.ada, lw.c2)
	m3 := lw.post(t, "m3", lw.ada, lw.c1)

	again := browser.Stream(url, "Last-Event-ID: "+m1)
	if again.Status != http.StatusOK {
		t.Fatalf("reconnection: status %d: %s", again.Status, again.Body)
	}
	if got := lw.labels(until(again, m3)); !slices.Equal(got, []string{"m2", "m3"}) {
		t.Fatalf("reconnection received %v, want [m2 m3]", got)
	}
	m4 := lw.post(t, "m4", lw.ada, lw.c1)
	if got := lw.labels(until(again, m4)); !slices.Equal(got, []string{"m4"}) {
		t.Fatalf("live after the replay: %v, want [m4]", got)
	}

	// Bound to its stream: the same ticket opens no other.
	for _, other := range []string{"/v1/conversations/" + lw.c2 + "/events", "/v1/workspaces/" + lw.w + "/events", "/v1/events"} {
		_, query, _ := strings.Cut(url, "?")
		if s := browser.Stream(other + "?" + query); s.Status != http.StatusUnauthorized {
			t.Errorf("the ticket on %s: status %d, want 401", other, s.Status)
		}
	}
}

// A ticket dies with the credential that minted it: it is refused after a
// logout or a key's revocation, and the streams it opened end with
// access_revoked.
func TestTicketDiesWithItsCredential(t *testing.T) {
	inst := enginetest.Start(t, enginetest.Options{})
	lw := newLiveWorld(t, inst)
	browser := inst.Client(t)
	path := "/v1/conversations/" + lw.c1 + "/events?ticket="

	t.Run("logout before the first use", func(t *testing.T) {
		c := inst.Signup(t, "Leaver")
		ticket := ticketOf(t, c)
		c.Must(http.StatusNoContent, "POST", "/v1/auth/logout", nil)
		if s := browser.Stream("/v1/events?ticket=" + ticket); s.Status != http.StatusUnauthorized {
			t.Fatalf("ticket after logout: status %d, want 401", s.Status)
		}
	})

	t.Run("API key revoked while streaming", func(t *testing.T) {
		key := lw.ada.Must(http.StatusCreated, "POST", "/v1/api-keys", map[string]any{"name": "browser", "scopes": []string{"read"}}).Map(t)
		keyClient := inst.Client(t)
		keyClient.Token = key["key"].(string)
		// A new key is known to other requests once its read model has it.
		var ticket string
		for deadline := time.Now().Add(10 * time.Second); ticket == ""; {
			r := keyClient.Do("POST", "/v1/auth/sse-ticket", nil)
			switch {
			case r.Status == http.StatusOK:
				ticket = r.Map(t)["ticket"].(string)
			case r.Status != http.StatusUnauthorized || time.Now().After(deadline):
				t.Fatalf("ticket with the new key: status %d: %s", r.Status, r.Body)
			default:
				time.Sleep(20 * time.Millisecond) // polling the read model, with a deadline
			}
		}
		url := path + ticket
		s := browser.Stream(url, "Last-Event-ID: 0")
		if s.Status != http.StatusOK {
			t.Fatalf("stream: status %d: %s", s.Status, s.Body)
		}
		m := lw.post(t, "before", lw.ada, lw.c1)
		until(s, m)
		lw.ada.Must(http.StatusNoContent, "DELETE", "/v1/api-keys/"+key["id"].(string), nil)
		frames := s.Until(func(f enginetest.Frame) bool { return f.Event == "access_revoked" })
		if last := frames[len(frames)-1]; !strings.Contains(last.Data, `"reason":"api_key_revoked"`) {
			t.Fatalf("final frame %+v", last)
		}
		s.Rest() // the server closes the stream
		if again := browser.Stream(url, "Last-Event-ID: "+m); again.Status != http.StatusUnauthorized {
			t.Fatalf("reconnection after the revocation: status %d, want 401", again.Status)
		}
	})

	t.Run("logout while streaming", func(t *testing.T) {
		c := inst.Signup(t, "Streamer")
		url := "/v1/users/me/events?ticket=" + ticketOf(t, c)
		s := browser.Stream(url)
		if s.Status != http.StatusOK {
			t.Fatalf("stream: status %d: %s", s.Status, s.Body)
		}
		c.Must(http.StatusNoContent, "POST", "/v1/auth/logout", nil)
		frames := s.Until(func(f enginetest.Frame) bool { return f.Event == "access_revoked" })
		if last := frames[len(frames)-1]; !strings.Contains(last.Data, `"reason":"session_revoked"`) {
			t.Fatalf("final frame %+v", last)
		}
		if again := browser.Stream(url); again.Status != http.StatusUnauthorized {
			t.Fatalf("reconnection after logout: status %d, want 401", again.Status)
		}
	})
}

// CORS answers the configured origins only; a page of another origin gets
// no CORS header and cannot spend a ticket.
func TestCORS(t *testing.T) {
	const app = "https://app.example.com"
	inst := enginetest.Start(t, enginetest.Options{Env: map[string]string{"ENGRAM_CORS_ALLOWED_ORIGINS": app + ",http://localhost:5173"}})
	ada := inst.Signup(t, "Ada")
	anon := inst.Client(t)
	// A preflight is the browser's question about an operation, not an
	// operation of the API: openapi.yaml does not describe it.
	preflight := func(origin string) *enginetest.Response {
		return anon.OffContract().Do("OPTIONS", "/v1/workspaces", nil, "Origin: "+origin,
			"Access-Control-Request-Method: POST", "Access-Control-Request-Headers: authorization, content-type, idempotency-key")
	}

	r := preflight(app)
	if r.Status != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != app ||
		!strings.Contains(r.Header.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(strings.ToLower(r.Header.Get("Access-Control-Allow-Headers")), "idempotency-key") ||
		r.Header.Get("Access-Control-Max-Age") == "" || r.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("allowed preflight: %d %v", r.Status, r.Header)
	}
	r = ada.Do("POST", "/v1/workspaces", map[string]any{"name": "W"}, "Origin: "+app)
	expose := strings.ToLower(r.Header.Get("Access-Control-Expose-Headers"))
	for _, h := range []string{"etag", "engram-position", "location", "x-request-id", "retry-after"} {
		if !strings.Contains(expose, h) {
			t.Errorf("Access-Control-Expose-Headers %q lacks %s", expose, h)
		}
	}
	if r.Status != http.StatusCreated || r.Header.Get("Access-Control-Allow-Origin") != app {
		t.Fatalf("allowed request: %d %v", r.Status, r.Header)
	}
	// Errors carry the headers too, so that the page can read the problem.
	if r := anon.Do("GET", "/v1/workspaces", nil, "Origin: "+app); r.Status != http.StatusUnauthorized || r.Header.Get("Access-Control-Allow-Origin") != app {
		t.Fatalf("allowed origin, refused request: %d %v", r.Status, r.Header)
	}

	noCORS := func(what string, r *enginetest.Response) {
		t.Helper()
		for k := range r.Header {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Errorf("%s: CORS header %s: %s", what, k, r.Header.Get(k))
			}
		}
	}
	noCORS("unlisted preflight", preflight("https://evil.example.com"))
	noCORS("unlisted request", ada.Do("GET", "/v1/workspaces", nil, "Origin: https://evil.example.com"))

	// A stream request from an unlisted origin is refused before its ticket
	// is looked at: the ticket still opens the stream afterwards.
	ticket := ticketOf(t, ada)
	refused := anon.Stream("/v1/events?ticket="+ticket, "Origin: https://evil.example.com")
	if refused.Status != http.StatusForbidden {
		t.Fatalf("ticket from an unlisted origin: status %d", refused.Status)
	}
	noCORS("unlisted stream", &enginetest.Response{Header: refused.Header})
	s := anon.Stream("/v1/events?ticket="+ticket, "Origin: "+app)
	if s.Status != http.StatusOK || s.Header.Get("Access-Control-Allow-Origin") != app {
		t.Fatalf("ticket from the allowed origin after a refusal: status %d %v", s.Status, s.Header)
	}
	// Same origin needs no configuration.
	if s := anon.Stream("/v1/events?ticket="+ticket, "Origin: "+inst.URL); s.Status != http.StatusOK {
		t.Fatalf("ticket from the server's own origin: status %d", s.Status)
	}
}

// Without ENGRAM_CORS_ALLOWED_ORIGINS, no origin gets CORS headers.
func TestCORSIsOffByDefault(t *testing.T) {
	inst := enginetest.Start(t, enginetest.Options{})
	r := inst.Client(t).OffContract().Do("OPTIONS", "/v1/workspaces", nil, "Origin: https://app.example.com", "Access-Control-Request-Method: GET")
	for k := range r.Header {
		if strings.HasPrefix(k, "Access-Control-") {
			t.Errorf("CORS header %s: %s", k, r.Header.Get(k))
		}
	}
}

// The console is served at / with its assets, each with its content type,
// caching and the page's Content-Security-Policy; the API's 404s stay
// problem documents.
func TestConsoleIsServed(t *testing.T) {
	inst := enginetest.Start(t, enginetest.Options{})
	c := inst.Client(t)
	page := c.Must(http.StatusOK, "GET", "/", nil)
	if ct := page.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("page Content-Type %q", ct)
	}
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("page Content-Security-Policy %q", csp)
	}
	if cc := page.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("page Cache-Control %q, want no-cache", cc)
	}
	if r := c.Do("GET", "/", nil, "If-None-Match: "+page.Header.Get("ETag")); r.Status != http.StatusNotModified {
		t.Errorf("page revalidation: status %d, want 304", r.Status)
	}

	refs := regexp.MustCompile(`"(/assets/([a-z.]+)\?v=[0-9a-f]+)"`).FindAllStringSubmatch(string(page.Body), -1)
	types := map[string]string{}
	for _, ref := range refs {
		r := c.Must(http.StatusOK, "GET", ref[1], nil)
		types[ref[2]] = r.Header.Get("Content-Type")
		if cc := r.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
			t.Errorf("%s: Cache-Control %q", ref[1], cc)
		}
		if r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", ref[1])
		}
	}
	want := map[string]string{"console.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8", "icon.svg": "image/svg+xml"}
	for name, ct := range want {
		if types[name] != ct {
			t.Errorf("%s: Content-Type %q, want %q (assets: %v)", name, types[name], ct, types)
		}
	}
	if r := c.Do("GET", "/assets/console.js?v=old", nil); r.Status != http.StatusOK || r.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("an old version: %d, Cache-Control %q", r.Status, r.Header.Get("Cache-Control"))
	}
	// Paths the API does not have: openapi.yaml does not describe them.
	for _, path := range []string{"/assets/nope.js", "/v1/nope", "/nope"} {
		r := c.OffContract().Do("GET", path, nil)
		if r.Status != http.StatusNotFound || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/problem+json") {
			t.Errorf("GET %s: %d %s, want a 404 problem", path, r.Status, r.Header.Get("Content-Type"))
		}
	}
}
