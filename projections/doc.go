// Package projections builds Engram's read models from the event log.
//
// Each projector is a Watermill consumer group over the events table with a
// stable name (renaming one replays history into it). A projector applies an
// event through the subscriber's transaction, so its writes commit together
// with the group's checkpoint. Every write is idempotent — guarded by the
// stream version already applied to the row — because watermill-sql may
// deliver an event again (after a crash, or when a Nack is retried inside the
// same transaction) and because rebuilds replay everything.
//
// An event a projector cannot apply is retried with backoff inside a
// savepoint; after the last retry it is parked in parked_events and logged
// with its position, and the projector moves on. Nothing is skipped silently
// and no bad event blocks the others forever.
package projections
