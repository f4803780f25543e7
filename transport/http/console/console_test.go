package console

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

func newTestServer(t *testing.T) *echo.Echo {
	t.Helper()
	c, err := New()
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	c.Register(e)
	return e
}

func get(e *echo.Echo, path string, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

func TestPageNamesVersionedAssets(t *testing.T) {
	e := newTestServer(t)
	page := get(e, "/")
	body := page.Body.String()
	if page.Code != http.StatusOK || strings.Contains(body, "{{asset:") {
		t.Fatalf("page: %d, placeholders left: %v", page.Code, strings.Contains(body, "{{asset:"))
	}
	if page.Header().Get("Content-Security-Policy") == "" || page.Header().Get("Cache-Control") != "no-cache" {
		t.Fatalf("page headers: %v", page.Header())
	}
	if r := get(e, "/", "If-None-Match", page.Header().Get("ETag")); r.Code != http.StatusNotModified {
		t.Fatalf("revalidated page: %d, want 304", r.Code)
	}
	refs := regexp.MustCompile(`/assets/([a-z.]+)\?v=([0-9a-f]{16})`).FindAllStringSubmatch(body, -1)
	if len(refs) < 3 {
		t.Fatalf("the page names %d assets: %v", len(refs), refs)
	}
	for _, ref := range refs {
		r := get(e, ref[0])
		if r.Code != http.StatusOK || r.Header().Get("Cache-Control") != "public, max-age=31536000, immutable" ||
			r.Header().Get("ETag") != `"`+ref[2]+`"` {
			t.Errorf("%s: %d %v", ref[0], r.Code, r.Header())
		}
		if r := get(e, "/assets/"+ref[1], "If-None-Match", `W/"x", "`+ref[2]+`"`); r.Code != http.StatusNotModified {
			t.Errorf("%s revalidated: %d, want 304", ref[1], r.Code)
		}
	}
}

func TestUnknownAssetIsNotFound(t *testing.T) {
	e := newTestServer(t)
	for _, path := range []string{"/assets/index.html", "/assets/nope.js", "/assets/..%2Fconsole.go"} {
		if r := get(e, path); r.Code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, r.Code)
		}
	}
}
