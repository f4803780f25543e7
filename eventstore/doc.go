// Package eventstore is Engram's PostgreSQL event store: the append-only
// `events` table that every other part of the system is derived from.
//
// # Writing
//
// [Store.Append] writes the events of one command to one stream in a single
// statement (or a single transaction when unique claims or an idempotency key
// travel with it), guarded by an expected version: if another writer got there
// first the append fails with [ErrConcurrency] and nothing is written. Each
// event carries [Metadata] (correlation, causation, actor and request ids) and
// is chained to its predecessor in the stream by a SHA-256 hash, so that any
// later change to a stored row is detectable with [Store.VerifyStream].
//
// An append may also be guarded on another stream ([WithGuard]): it is
// written only while that stream is still at a given version, checked in
// the same statement, else it fails with [ErrGuardChanged]. A command
// authorized on a workspace's members as of a version needs no read of the
// workspace before it appends: the guard proves the membership current.
//
// The table itself refuses UPDATE, DELETE and TRUNCATE through a trigger.
// [ChainHash] and [VerifyChain] compute and check the chain outside the
// database, for other stores: eventstore/inmem keeps events in memory with
// the same semantics, and eventstore/storetest is the contract that both
// pass.
//
// # Reading
//
// [Store.ReadStream] loads one stream in version order; [Store.ReadAll] reads
// the whole log in position order for audits and exports.
//
// # Tailing
//
// Transactions can commit out of position order: a transaction that took
// position 10 may commit after the one that took 11. A reader that follows
// global_position alone would skip 10 forever. Tailing readers therefore read
// in (tx_id, global_position) order and only below
// pg_snapshot_xmin(pg_current_snapshot()), the oldest transaction still in
// flight — the rule watermill-sql uses. [Store.ReadCommitted] passes the
// transactions of this process that write no events ([Store.Bystander]: a
// projectors' batch), so that they do not hold the tail back. [SchemaAdapter] makes the events table
// itself a Watermill topic with that rule, so events are written once and
// consumer groups (projectors) read them straight from the log.
package eventstore
