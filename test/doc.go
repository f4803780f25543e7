// Package test holds Engram's end-to-end tests: each starts the real engram
// binary (or, with enginetest.Options.InProcess, the same program inside
// the test process) on a free port against a fresh database and talks to
// it over HTTP (and SSE) like a client would. Shared helpers live in the
// subpackages enginetest (the running Engram) and pgtest (fresh databases).
//
// Every answer a test receives through an enginetest.Client is checked
// against openapi.yaml (enginetest.CheckContract): a route, a status, a
// header or a body the document does not describe fails the test, with the
// request, the status and the mismatch in the message. Fix the server or the
// document; a test that deliberately asks for what the API does not offer
// uses Client.OffContract.
package test

import _ "github.com/lib/pq" // PostgreSQL driver for direct checks
