// Package test holds Engram's end-to-end tests: each starts the real engram
// binary on a free port against a fresh database and talks to it over HTTP
// (and SSE) like a client would. Shared helpers live in the subpackages
// enginetest (the running binary) and pgtest (fresh databases).
package test

import _ "github.com/lib/pq" // PostgreSQL driver for direct checks
