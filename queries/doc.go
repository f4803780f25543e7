// Package queries holds Engram's query handlers, one file per query. They
// read read models only (never the event log) and apply the same
// authorization policy as the commands, from the membership read model.
//
// Every handler accepts a minimum position: when it is set, the handler first
// waits (bounded) until the read model it reads has applied that position, so
// that a client reads its own writes.
package queries
