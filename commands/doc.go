// Package commands holds Engram's command handlers, one file per command.
//
// Every handler follows the same path: load the aggregate's stream, let the
// aggregate decide (it checks the rules and records events), then append the
// recorded events with the version the aggregate was loaded at as the
// expected version. A concurrent change makes the append fail with
// eventstore.ErrConcurrency and nothing is written.
//
// Handlers never read read models for decisions: whatever they rely on comes
// from the event streams, which are always up to date.
package commands
