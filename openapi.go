// Package engram is the root of Engram, an event-sourced CQRS backend for
// conversational workspaces. The program is cmd/engram; this package only
// carries files that belong to the whole project, such as the OpenAPI
// document.
package engram

import _ "embed"

// OpenAPI is the OpenAPI 3.1 description of the HTTP API (openapi.yaml).
//
//go:embed openapi.yaml
var OpenAPI []byte
