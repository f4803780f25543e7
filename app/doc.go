// Package app is Engram's application core: what a transport drives.
//
// An Application holds the command handlers (package commands), the query
// handlers (package queries) and the few services a transport needs besides
// them — access tokens, revocations, counters for throttling, the stored
// answers of idempotent requests, readiness, the audit of the log, the
// experts — each behind a small interface declared here. It is built in one
// place, the program's wiring (cmd/engram/cli), and a transport depends on
// it rather than on the event store, the projections or the aggregates.
//
// The answer to a command is the resource it changed as a query shows it:
// the Application waits, through the query and its minimum position, for
// the read model to apply the command (read-your-writes), and builds the
// resource from the command's result only when the read model is late, or
// for the first answer to a creation (stored, with an idempotency key, in
// the append's transaction).
package app
