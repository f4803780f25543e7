// Package sse serves Engram's live events as Server-Sent Events, at four
// scopes: everything the caller may see (/v1/events), the caller's own
// account (/v1/users/me/events), one workspace and its conversations
// (/v1/workspaces/{id}/events) and one conversation
// (/v1/conversations/{id}/events).
//
// # Delivery
//
// Every instance tails the event log by itself (eventstore.Tailer, a
// Watermill subscriber) and feeds each event to its [Hub] through a Watermill
// router handler, [Hub.Handle]. The hub sees every event in commit order; it
// keeps a small view of who may see what (workspace memberships, through
// the projection of projections/membership, and the owner of each stream)
// up to date from those events, decides per event which
// connections may see it and puts one shared, pre-encoded frame into each
// of their bounded buffers. The hub's flusher writes the buffers of the
// connections it holds, one non-blocking write each, a pass every flush
// interval; a connection's own goroutine writes the rest (its replay,
// heartbeats, what a socket did not take at once, streams over HTTP/2). The
// hub never waits for a socket, and a connection whose buffer is full is
// disconnected (it resumes with Last-Event-ID) rather than slowing the
// others. No instance depends on another: a client may connect
// to any of them.
//
// # Resume
//
// A client that sends Last-Event-ID (or last_event_id) is first registered
// for live delivery, which is buffered; then what it missed is replayed from
// the store in commit order (eventstore.Store.ReadCommitted from the cursor
// of that event, so that an event with a smaller position that committed
// later is not lost); then the buffer is drained, skipping what the replay
// already sent. There is no gap and no duplicate.
//
// # Access
//
// Access is decided by domain/access, at connect (404 for a workspace or
// conversation the caller may not see) and again whenever it changes: a
// member removed from a workspace stops receiving it at once, and a stream
// scoped to that workspace or one of its conversations gets a final
// access_revoked frame and closes. A revoked session or API key closes its
// streams the same way, and a stream authenticated by an access token ends
// when the token expires.
//
// # Tickets
//
// Browsers, whose EventSource cannot send an Authorization header, open a
// stream with ?ticket= (POST /v1/auth/sse-ticket). The first use binds a
// ticket to its stream; the same URL then opens that stream again, so that
// the browser's own reconnections (with Last-Event-ID) resume by
// themselves, on any instance. A ticket stands for the session or API key
// that asked for it: each use checks that credential again, its streams end
// with it, and it lives no longer than an access token. Secrets never leave: event data is decoded and
// redacted as its stream type's entry of domain/catalog says; events of
// stream types missing from the catalogue are not streamed.
//
// # Ephemeral signals
//
// Typing indicators and status updates travel over livebus.Bus, not the
// log. They reach the subscribers of their conversation (conversation,
// workspace and global scopes) as frames without an id.
package sse
