// Package audit is how auditors read Engram's history: the events of the log
// under filters, page by page or streamed for any size, the state of a stream
// as it was at a version or a time, and the verification of every hash
// chain.
//
// It is the one place, besides the event store itself, that reads the event
// log for clients: query handlers (package queries) read read models only.
// Everything it hands out has its secrets removed — each event is decoded
// and redacted as its stream type's entry of domain/catalog says and encoded
// again, and states are rendered by that entry's view of the aggregate, which
// leaves secrets out.
//
// Every read is itself recorded, as an audit.log_read event (package
// domain/auditlog) in the reader's stream "audit-<actor id>": who read, what
// filter, how many results, and when. Reading history is thereby as
// tamper-evident as the history read. Reads answered in one piece (a page, a
// state, a verification) are recorded before the answer is returned, so that
// nothing leaves unrecorded; exports, which stream their results, are
// recorded when they end, however they end.
package audit
