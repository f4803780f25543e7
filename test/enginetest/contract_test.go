package enginetest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCheckContract(t *testing.T) {
	const conv = "/v1/conversations/6b0f7c3e-8f7a-4a55-9a8e-2f9d3c1b0a11"
	good := `{"id":"6b0f7c3e-8f7a-4a55-9a8e-2f9d3c1b0a11","workspace_id":"6b0f7c3e-8f7a-4a55-9a8e-2f9d3c1b0a12",
		"title":"Plans","modality":"text","metadata":{},"created_by":"6b0f7c3e-8f7a-4a55-9a8e-2f9d3c1b0a13","archived":false,
		"message_count":0,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z",
		"last_activity_at":"2026-01-01T00:00:00Z","version":1}`
	headers := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	ok := headers("Content-Type", "application/json", "X-Request-Id", "r1", "ETag", `"1"`)
	problem := headers("Content-Type", "application/problem+json", "X-Request-Id", "r1")
	tests := []struct {
		name         string
		method, path string
		status       int
		header       http.Header
		body         string
		wantErr      string
	}{
		{"documented answer", "GET", conv, 200, ok, good, ""},
		{"304 without a body", "GET", conv, 304, headers("ETag", `"1"`, "X-Request-Id", "r1"), "", ""},
		{"problem", "GET", conv, 404, problem, `{"type":"about:blank","title":"Not found","status":404}`, ""},
		{"undocumented route", "GET", "/v1/nowhere", 404, problem, `{}`, "not in openapi.yaml"},
		{"undocumented status", "GET", conv, 409, problem, `{"type":"x","title":"x","status":409}`, "status 409 is not documented"},
		{"undocumented 304", "POST", conv + "/messages", 304, headers("X-Request-Id", "r1"), "", "status 304 is not documented"},
		{"missing required field", "GET", conv, 200, ok, strings.Replace(good, `"version":1`, `"v":1`, 1), "version"},
		{"wrong type", "GET", conv, 200, ok, strings.Replace(good, `"title":"Plans"`, `"title":7`, 1), "title"},
		{"missing ETag", "GET", conv, 200, headers("Content-Type", "application/json", "X-Request-Id", "r1"), good, "ETag"},
		{"missing X-Request-Id", "GET", conv, 404, headers("Content-Type", "application/problem+json"), `{"type":"x","title":"x","status":404}`, "X-Request-Id"},
		{"undocumented media type", "GET", conv, 200, headers("Content-Type", "text/html", "X-Request-Id", "r1", "ETag", `"1"`), "<p>", "text/html"},
		{"a body on 304", "GET", conv, 304, headers("ETag", `"1"`, "X-Request-Id", "r1"), "{}", "a 304 answer has a body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "http://127.0.0.1:1"+tt.path, nil)
			err := CheckContract(req, tt.status, tt.header, []byte(tt.body))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("CheckContract = %v, want nil", err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("CheckContract = nil, want an error about %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("CheckContract = %v, want an error about %q", err, tt.wantErr)
			}
		})
	}
}
