package test

import (
	"context"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/engramhq/engram/test/enginetest"
)

// openapi.yaml is valid OpenAPI and describes exactly the routes the server
// serves: no route is undocumented, no documented path is missing.
func TestOpenAPIMatchesTheRoutes(t *testing.T) {
	inst := enginetest.Start(t, enginetest.Options{Env: map[string]string{"ENGRAM_LOG_LEVEL": "debug"}})
	body := inst.Client(t).Must(http.StatusOK, "GET", "/openapi.yaml", nil).Body

	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(body)
	if err != nil {
		t.Fatalf("openapi.yaml does not parse: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not valid: %v", err)
	}

	param := regexp.MustCompile(`:([a-z_]+)`)
	served := map[string]bool{}
	for _, r := range servedRoutes(t, inst) {
		method, path, _ := strings.Cut(r, " ")
		if method == "HEAD" || method == "OPTIONS" {
			continue
		}
		served[method+" "+param.ReplaceAllString(path, "{$1}")] = true
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	var undocumented, missing []string
	for r := range served {
		if !documented[r] {
			undocumented = append(undocumented, r)
		}
	}
	for r := range documented {
		if !served[r] {
			missing = append(missing, r)
		}
	}
	sort.Strings(undocumented)
	sort.Strings(missing)
	if len(undocumented) > 0 {
		t.Errorf("served but not in openapi.yaml:\n  %s", strings.Join(undocumented, "\n  "))
	}
	if len(missing) > 0 {
		t.Errorf("in openapi.yaml but not served:\n  %s", strings.Join(missing, "\n  "))
	}
}

// openapi.yaml documents what every route can answer: an operationId per
// operation, 401 wherever credentials are needed, 400/413/415/422 wherever a
// body is read, 422 for bad cursors, limits, Engram-Min-Position, If-Match
// and Idempotency-Key, 412 wherever If-Match is taken, 304 and the ETag on
// the GETs that answer one, X-Request-Id on every answer, and required
// fields on every object schema.
func TestOpenAPIDocumentsEveryAnswer(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromFile("../openapi.yaml")
	if err != nil {
		t.Fatalf("openapi.yaml does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not valid: %v", err)
	}
	ids := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			if op.OperationID == "" {
				t.Errorf("%s: no operationId", name)
			} else if other, dup := ids[op.OperationID]; dup {
				t.Errorf("%s: operationId %s is also %s's", name, op.OperationID, other)
			}
			ids[op.OperationID] = name
			want := map[string]string{}
			params := append(item.Parameters, op.Parameters...)
			has := func(in, param string) bool {
				for _, p := range params {
					if p.Value != nil && p.Value.In == in && strings.EqualFold(p.Value.Name, param) {
						return true
					}
				}
				return false
			}
			if op.Security == nil || len(*op.Security) > 0 {
				want["401"] = "credentials are required"
			}
			if op.RequestBody != nil {
				for _, s := range []string{"400", "413", "415", "422"} {
					want[s] = "a body is read"
				}
			}
			for _, p := range []string{"Engram-Min-Position", "If-Match", "Idempotency-Key"} {
				if has("header", p) {
					want["422"] = "it takes " + p
				}
			}
			if has("query", "cursor") || has("query", "limit") {
				want["422"] = "it takes a cursor and a limit"
			}
			if has("header", "If-Match") {
				want["412"] = "it takes If-Match"
			}
			if ok := op.Responses.Status(http.StatusOK); method == http.MethodGet && ok != nil && ok.Value != nil && ok.Value.Headers["ETag"] != nil {
				want["304"] = "it answers an ETag"
			}
			if method == http.MethodGet && has("header", "Engram-Min-Position") {
				if ok := op.Responses.Status(http.StatusOK); ok == nil || ok.Value.Headers["ETag"] == nil {
					t.Errorf("%s: the 200 answer documents no ETag", name)
				}
			}
			for status, why := range want {
				if op.Responses.Value(status) == nil {
					t.Errorf("%s: %s, but %s is not documented", name, why, status)
				}
			}
			for status, r := range op.Responses.Map() {
				if r.Value != nil && r.Value.Headers["X-Request-Id"] == nil {
					t.Errorf("%s: the %s answer documents no X-Request-Id", name, status)
				}
			}
		}
	}
	for name, s := range doc.Components.Schemas {
		if s.Value != nil && s.Value.Type.Is("object") && len(s.Value.Properties) > 0 && len(s.Value.Required) == 0 &&
			!strings.HasSuffix(name, "Request") {
			t.Errorf("schema %s lists no required property", name)
		}
	}
}
