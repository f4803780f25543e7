// Package commands holds Engram's command handlers, one file per command.
//
// Every handler that changes an aggregate goes through one repository
// operation, update (create for a new stream): the command's decide function
// runs on the aggregate's current state and records events, which are
// appended with the version the aggregate was at as the expected version.
// Inside an instance each stream has one writer, which decides the commands
// queued on it in order and appends the events of those that arrived
// together in one append. When another instance appended first
// (eventstore.ErrConcurrency) the commands are decided again on the new
// tail, for as long as their contexts last: a command fails only when a
// rule it checks — an If-Match version, an archived conversation — fails on
// the latest state.
//
// Handlers never read read models for decisions: whatever they rely on comes
// from the event streams, which are always up to date.
package commands
