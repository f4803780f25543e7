package enginetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// The API contract: every answer a Client receives is checked against
// openapi.yaml (status, headers, body). An answer the document does not
// describe fails the test that received it, naming the request, the status
// and what does not match, so that either the server or the document is
// fixed.

var (
	contractOnce   sync.Once
	contractRouter routers.Router
	contractErr    error
)

// contract loads openapi.yaml from the repository once per test process.
func contract() (routers.Router, error) {
	contractOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		path := filepath.Join(filepath.Dir(file), "..", "..", "openapi.yaml")
		data, err := os.ReadFile(path)
		if err != nil {
			contractErr = fmt.Errorf("read %s: %w", path, err)
			return
		}
		doc, err := openapi3.NewLoader().LoadFromData(data)
		if err != nil {
			contractErr = fmt.Errorf("load %s: %w", path, err)
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			contractErr = fmt.Errorf("validate %s: %w", path, err)
			return
		}
		// The console's page and files are text: their bodies are checked
		// as plain strings.
		for _, ct := range []string{"text/html", "text/css", "text/javascript", "image/svg+xml"} {
			openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder)
		}
		// Test instances listen on free ports: match paths, not servers.
		doc.Servers = nil
		contractRouter, contractErr = legacy.NewRouter(doc)
	})
	return contractRouter, contractErr
}

// CheckContract reports how an answer to req departs from openapi.yaml, or
// nil when the document describes it: the route must be documented, and the
// status, the headers and the body must match the operation's response (only
// the status and the headers for text/event-stream answers).
func CheckContract(req *http.Request, status int, header http.Header, body []byte) error {
	router, err := contract()
	if err != nil {
		return err
	}
	route, pathParams, err := router.FindRoute(req)
	if err != nil {
		return fmt.Errorf("the route is not in openapi.yaml: %w", err)
	}
	responses := route.Operation.Responses
	if responses == nil || responses.Status(status) == nil {
		// ValidateResponse lets some statuses (304, redirects) through
		// unchecked: the document must list them all the same.
		return fmt.Errorf("status %d is not documented for %s %s", status, route.Method, route.Path)
	}
	contentType := header.Get("Content-Type")
	streamed := strings.HasPrefix(contentType, "text/event-stream")
	ndjson := strings.HasPrefix(contentType, "application/x-ndjson")
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: pathParams, Route: route},
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			ExcludeResponseBody:   streamed || ndjson,
			MultiError:            true,
		},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		return err
	}
	if status == http.StatusNotModified && len(body) > 0 {
		return fmt.Errorf("a 304 answer has a body of %d bytes", len(body))
	}
	if ndjson {
		return checkNDJSON(route, status, body)
	}
	return nil
}

// checkNDJSON validates each line of a newline-delimited JSON answer against
// the schema the document gives for application/x-ndjson (one item).
func checkNDJSON(route *routers.Route, status int, body []byte) error {
	media := route.Operation.Responses.Status(status).Value.Content.Get("application/x-ndjson")
	if media == nil {
		return fmt.Errorf("application/x-ndjson is not documented for status %d", status)
	}
	if media.Schema == nil || media.Schema.Value == nil {
		return nil
	}
	for i, line := range bytes.Split(bytes.TrimRight(body, "\n"), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var v any
		if err := json.Unmarshal(line, &v); err != nil {
			return fmt.Errorf("line %d is not JSON: %w", i+1, err)
		}
		if err := media.Schema.Value.VisitJSON(v, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors()); err != nil {
			return fmt.Errorf("line %d: %w", i+1, err)
		}
	}
	return nil
}

// checkContract fails the client's test when an answer departs from
// openapi.yaml (with Errorf: Do may be called from other goroutines).
func (c *Client) checkContract(req *http.Request, resp *Response) {
	c.t.Helper()
	if c.skipContract {
		return
	}
	if err := CheckContract(req, resp.Status, resp.Header, resp.Body); err != nil {
		body := resp.Body
		if len(body) > 512 {
			body = append(body[:512:512], "…"...)
		}
		c.t.Errorf("openapi.yaml contract: %s %s answered %d, which the document does not describe:\n  %v\n  body: %s",
			req.Method, req.URL.RequestURI(), resp.Status, err, body)
	}
}

// OffContract returns a copy of the client whose answers are not checked
// against openapi.yaml: for tests that deliberately ask for what the API does
// not offer (unknown routes, methods the server refuses).
func (c *Client) OffContract() *Client {
	cp := *c
	cp.skipContract = true
	return &cp
}
