package http

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/domain"
)

// TestDecodeJSONRefusesWhatItWouldChange: values that encoding/json would
// silently alter or that nothing downstream can store are refused with a
// validation error (422) naming the field, and a null body is malformed
// (400).
func TestDecodeJSONRefusesWhatItWouldChange(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		malformed bool
		fields    []string
	}{
		{"number beyond float64 in metadata", `{"title":"t","metadata":{"x":1e309}}`, false, []string{"metadata.x"}},
		{"capital exponent in config", `{"name":"n","config":{"a":{"b":[1,1E400]}}}`, false, []string{"config.a.b[1]"}},
		{"negative overflow", `{"content":"c","metadata":{"n":-1e999}}`, false, []string{"metadata.n"}},
		{"invalid UTF-8 in a field", "{\"email\":\"ada\xff@example.com\",\"password\":\"p\"}", false, []string{"email"}},
		{"invalid UTF-8 in a nested value", "{\"title\":\"t\",\"metadata\":{\"k\":[\"ok\",\"\xc3\"]}}", false, []string{"metadata.k[1]"}},
		{"invalid UTF-8 in a name", "{\"title\":\"t\",\"metadata\":{\"\xfe\":1}}", false, []string{"metadata.\uFFFD"}},
		{"lone high surrogate", `{"title":"a\ud800b"}`, false, []string{"title"}},
		{"lone low surrogate", `{"title":"\udc00"}`, false, []string{"title"}},
		{"high surrogate at the end", `{"title":"x\ud83d"}`, false, []string{"title"}},
		{"two problems at once", "{\"title\":\"\xff\",\"metadata\":{\"x\":1e400}}", false, []string{"title", "metadata.x"}},
		{"null body", `null`, true, []string{"body"}},
		{"null body with white space", " null\n", true, []string{"body"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dst map[string]json.RawMessage
			assertFields(t, decodeJSON([]byte(tt.body), &dst), tt.malformed, tt.fields)
		})
	}
}

func assertFields(t *testing.T, err error, malformedBody bool, fields []string) {
	t.Helper()
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != domain.CodeInvalid {
		t.Fatalf("err = %v, want a validation error", err)
	}
	if got := de.Message == msgMalformed; got != malformedBody {
		t.Fatalf("malformed = %v (%q), want %v", got, de.Message, malformedBody)
	}
	p, _ := problemFor(err, false)
	wantStatus := http.StatusUnprocessableEntity
	if malformedBody {
		wantStatus = http.StatusBadRequest
	}
	if p.Status != wantStatus {
		t.Fatalf("status = %d, want %d", p.Status, wantStatus)
	}
	var got []string
	for _, f := range de.Fields {
		got = append(got, f.Field)
	}
	if strings.Join(got, ",") != strings.Join(fields, ",") {
		t.Fatalf("fields = %q, want %q", got, fields)
	}
}

// TestDecodeJSONKeepsFaithfulValues: what can be kept exactly is accepted.
func TestDecodeJSONKeepsFaithfulValues(t *testing.T) {
	body := `{"title":"caf\u00e9 \ud83d\ude00 \\ud800 ☕","metadata":{"big":1.7976931348623157e308,"tiny":1e-400,"a":[true,null,"\"x\\"]}}`
	var dst createConversationRequest
	if err := decodeJSON([]byte(body), &dst); err != nil {
		t.Fatalf("decodeJSON: %v", err)
	}
	if dst.Title != "café 😀 \\ud800 ☕" {
		t.Fatalf("title = %q", dst.Title)
	}
	var m map[string]any
	if err := json.Unmarshal(dst.Metadata, &m); err != nil || m["big"] == nil {
		t.Fatalf("metadata = %s (%v)", dst.Metadata, err)
	}
}

// TestHeaderLimit: a request line and headers beyond the limit get a 431
// problem, not the HTTP server's plain text.
func TestHeaderLimit(t *testing.T) {
	s := &Server{logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	e := echo.New()
	e.HTTPErrorHandler = s.errorHandler
	e.GET("/v1/workspaces", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }, s.headerLimit)

	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/workspaces?cursor="+strings.Repeat("A", 100<<10), nil))
	if rec.Code != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status = %d, want 431", rec.Code)
	}
	if ct := rec.Header().Get(echo.HeaderContentType); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q", ct)
	}
	var p Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != 431 || p.Detail == "" {
		t.Fatalf("problem = %+v (%v)", p, err)
	}

	rec = httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/workspaces?cursor="+strings.Repeat("A", 1000), nil))
	if rec.Code != http.StatusNoContent {
		t.Fatalf("a short cursor: status = %d, want 204", rec.Code)
	}
}
