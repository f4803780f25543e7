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
