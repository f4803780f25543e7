// Package http is Engram's HTTP API: echo routes, authentication, problem
// errors (RFC 9457) and the mapping between JSON bodies and the commands and
// queries of the application.
//
// Handlers are thin: decode and validate the request, call one command or
// query, encode the answer. Every error goes through writeProblem, the one
// place that maps errors to HTTP statuses.
package http
