package http

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/queries"
)

func TestNoneMatch(t *testing.T) {
	tests := []struct {
		header, etag string
		want         bool
	}{
		{``, `"3"`, false},
		{`"3"`, `"3"`, true},
		{`W/"3"`, `"3"`, true},
		{`"3"`, `W/"3"`, true},
		{`"2", "3"`, `"3"`, true},
		{`"2",W/"4"`, `"3"`, false},
		{`*`, `W/"abc"`, true},
		{`"4"`, `"3"`, false},
		{`3`, `"3"`, false},
	}
	for _, tt := range tests {
		if got := noneMatch(tt.header, tt.etag); got != tt.want {
			t.Errorf("noneMatch(%q, %q) = %v, want %v", tt.header, tt.etag, got, tt.want)
		}
	}
}

func TestListETag(t *testing.T) {
	key := func(m queries.Message) string { return m.ID }
	page := queries.Page[queries.Message]{Items: []queries.Message{{ID: "a"}, {ID: "b"}}, NextCursor: "7"}
	base := listETag("ada", page, key)
	if base[:3] != `W/"` || base[len(base)-1] != '"' {
		t.Fatalf("listETag = %s, want a weak ETag", base)
	}
	if again := listETag("ada", page, key); again != base {
		t.Errorf("the same page gave %s then %s", base, again)
	}
	differs := map[string]string{
		"another caller": listETag("bob", page, key),
		"another item":   listETag("ada", queries.Page[queries.Message]{Items: []queries.Message{{ID: "a"}, {ID: "c"}}, NextCursor: "7"}, key),
		"one item fewer": listETag("ada", queries.Page[queries.Message]{Items: []queries.Message{{ID: "a"}}, NextCursor: "7"}, key),
		"another cursor": listETag("ada", queries.Page[queries.Message]{Items: page.Items, NextCursor: ""}, key),
		// Parts are length-prefixed: "a"+"b" is not "ab".
		"joined items": listETag("ada", queries.Page[queries.Message]{Items: []queries.Message{{ID: "ab"}}, NextCursor: "7"}, key),
	}
	for what, etag := range differs {
		if etag == base {
			t.Errorf("%s gave the same ETag %s", what, etag)
		}
	}
}

func TestConditional(t *testing.T) {
	e := echo.New()
	run := func(ifNoneMatch string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if ifNoneMatch != "" {
			req.Header.Set("If-None-Match", ifNoneMatch)
		}
		rec := httptest.NewRecorder()
		if err := conditional(e.NewContext(req, rec), `"5"`, map[string]int{"version": 5}); err != nil {
			t.Fatal(err)
		}
		return rec
	}
	full := run("")
	if full.Code != http.StatusOK || full.Header().Get("ETag") != `"5"` || full.Body.String() != "{\"version\":5}\n" {
		t.Errorf("unconditional GET = %d ETag %q %q, want 200 with the body and ETag \"5\"", full.Code, full.Header().Get("ETag"), full.Body)
	}
	hit := run(`"5"`)
	if hit.Code != http.StatusNotModified || hit.Body.Len() != 0 || hit.Header().Get("ETag") != `"5"` {
		t.Errorf("matching If-None-Match = %d ETag %q body %q, want 304, the ETag and no body", hit.Code, hit.Header().Get("ETag"), hit.Body)
	}
	miss := run(`"4"`)
	if miss.Code != http.StatusOK || miss.Body.Len() == 0 {
		t.Errorf("stale If-None-Match = %d %q, want 200 with the body", miss.Code, miss.Body)
	}
}

func TestStoredAnswer(t *testing.T) {
	a := answer{Status: http.StatusCreated, Body: map[string]string{"id": "x"}, ETag: `"1"`, Location: "/v1/workspaces/x"}
	stored, err := encodeStoredAnswer(a)
	if err != nil {
		t.Fatal(err)
	}
	headers, body := decodeStoredAnswer(stored)
	if headers["ETag"] != `"1"` || headers["Location"] != "/v1/workspaces/x" || len(headers) != 2 {
		t.Errorf("headers = %v, want the ETag and the Location", headers)
	}
	if string(body) != `{"id":"x"}` {
		t.Errorf("body = %s", body)
	}

	noHeaders, err := encodeStoredAnswer(answer{Status: http.StatusCreated, Body: []int{1}})
	if err != nil {
		t.Fatal(err)
	}
	if headers, body := decodeStoredAnswer(noHeaders); len(headers) != 0 || string(body) != `[1]` {
		t.Errorf("an answer without headers decoded to %v %s", headers, body)
	}

	// Answers stored as a bare JSON body are replayed as they are.
	legacy := []byte("{\"id\":\"y\"}\n")
	if headers, body := decodeStoredAnswer(legacy); len(headers) != 0 || string(body) != string(legacy) {
		t.Errorf("a bare body decoded to %v %s", headers, body)
	}

	// Only the headers a replay repeats are taken from storage.
	if headers, _ := decodeStoredAnswer([]byte("Set-Cookie: x\nETag: \"2\"\n\n{}")); headers["Set-Cookie"] != "" || headers["ETag"] != `"2"` {
		t.Errorf("stored headers = %v, want only ETag", headers)
	}
}

// TestListETagIsStable pins a page's ETag: one a client holds must still
// match after the server is upgraded, or every client reloads every page.
func TestListETagIsStable(t *testing.T) {
	page := queries.Page[queries.Message]{Items: []queries.Message{{ID: "a", Position: 41}, {ID: "b", Position: 42}}, NextCursor: "7"}
	got := listETag("ada", page, func(m queries.Message) string { return m.ID + "@" + strconv.FormatInt(m.Position, 10) })
	if want := `W/"o7q2dGe7X0MjYxR3ug4qmevX"`; got != want {
		t.Errorf("listETag = %s, want %s", got, want)
	}
}

// BenchmarkListETag digests a page of 20 messages, as GET …/messages does.
func BenchmarkListETag(b *testing.B) {
	var page queries.Page[queries.Message]
	for i := range 20 {
		page.Items = append(page.Items, queries.Message{ID: "0190f1d4-7c6e-7b8e-9d2a-5f3c1e8b" + strconv.Itoa(1000+i), Position: int64(90000 + i)})
	}
	page.NextCursor = "90019"
	key := func(m queries.Message) string { return strconv.FormatInt(m.Position, 10) }
	b.ReportAllocs()
	for b.Loop() {
		_ = listETag("0190f1d4-7c6e-7b8e-9d2a-5f3c1e8b0000", page, key)
	}
}
