package sse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/catalog"
	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/platform/defaults"
	"github.com/engramhq/engram/platform/livebus"
)

// Log is what the hub reads from the event store (eventstore.Store).
type Log interface {
	// ReadCommitted returns up to limit events after a cursor in commit order.
	ReadCommitted(ctx context.Context, after eventstore.Cursor, limit int) ([]eventstore.Event, error)
	// CursorOf returns the cursor of the event at a global position, or
	// eventstore.ErrUnknownPosition.
	CursorOf(ctx context.Context, position int64) (eventstore.Cursor, error)
	// ReadStream returns the events of a stream after a version.
	ReadStream(ctx context.Context, streamID string, afterVersion int) ([]eventstore.Event, error)
	// FirstEvent returns the first event of a stream, and false when there
	// is none.
	FirstEvent(ctx context.Context, streamID string) (eventstore.Event, bool, error)
}

// Metrics records what the hub does (platform/metrics.Metrics).
type Metrics interface {
	// SSEConnected adds delta to the number of open streams.
	SSEConnected(delta int)
	// SSEFramesSent counts n event and signal frames written.
	SSEFramesSent(n int)
	// SSESlowDisconnect counts a stream closed for falling behind.
	SSESlowDisconnect()
}

// TicketStore keeps SSE tickets (platform/cache.Cache); share it between
// instances, so that a browser reconnects to any of them.
type TicketStore interface {
	// Get returns the value of key, and false when it is missing or expired.
	Get(ctx context.Context, key string) ([]byte, bool, error)
	// Set stores value under key for ttl.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Take returns the value of key and deletes it, atomically.
	Take(ctx context.Context, key string) ([]byte, bool, error)
	// Delete removes keys; missing keys are ignored.
	Delete(ctx context.Context, keys ...string) error
}

// Revocations tells whether a session or an API key was revoked
// (projections.RevocationSet); both answers hold on every instance from the
// moment the revoking command returns.
type Revocations interface {
	// SessionRevoked reports whether the session was revoked.
	SessionRevoked(ctx context.Context, sessionID string) (bool, error)
	// KeyRevoked reports whether the API key was revoked.
	KeyRevoked(ctx context.Context, keyID string) (bool, error)
}

// DefaultFlushInterval is the least time between two writes to one stream
// unless Config.FlushInterval says otherwise. At 200 watchers of a
// conversation taking 200 posts a second, 10 ms against 5 halved the
// writes and their reads and lowered the delivery's p95 and p99
// (docs/benchmarks.md).
const DefaultFlushInterval = 10 * time.Millisecond

// Config tunes the hub; zero values take the defaults.
type Config struct {
	// Heartbeat is the interval of the ": ping" comment (default 15s).
	Heartbeat time.Duration
	// Retry is the reconnection delay advertised on connect (default 2s).
	Retry time.Duration
	// MaxConnectionsPerUser caps one user's streams on this instance
	// (default 16).
	MaxConnectionsPerUser int
	// Buffer is how many frames a stream may stay behind for longer than
	// SlowGrace, or fall 16 times behind at all, before it is disconnected
	// as too slow (default 256).
	Buffer int
	// SlowGrace is how long a stream may stay more than Buffer frames
	// behind, to absorb a burst (default 3s).
	SlowGrace time.Duration
	// MaxLifetime closes a stream after this long, less up to a tenth of
	// it at random, so that clients do not all reconnect at once (default 1h).
	MaxLifetime time.Duration
	// WriteTimeout bounds writing one frame to a client (default 10s).
	WriteTimeout time.Duration
	// FlushInterval is the least time between two writes to one stream:
	// frames that come meanwhile wait for the next write and go out with it,
	// in one system call. A stream that has not written for that long
	// writes a frame as soon as it comes. Under a busy conversation it
	// bounds the writes per stream (1/FlushInterval a second), at a cost of
	// at most FlushInterval of latency (default DefaultFlushInterval;
	// negative: every frame is written as soon as it comes).
	FlushInterval time.Duration
	// SendBuffer is the socket send buffer of a stream, in bytes (default
	// 64 KiB; negative leaves the kernel's default). See ConnContext.
	SendBuffer int
	// MaxReplays bounds the resumes that read the store at the same time,
	// so that a reconnection storm (after a restart) does not take every
	// database connection (default 8). Resumes wait their turn, buffering
	// live events meanwhile.
	MaxReplays int
	// TicketLifetime is how long a ticket opens its stream again (an
	// EventSource reconnecting) after it was minted, and when the streams
	// it opened end; never beyond the expiry of the credential that asked
	// for it (default DefaultTicketLifetime). Keep it within the time an
	// API key's revocation is remembered by Revocations.
	TicketLifetime time.Duration
}

func (c *Config) defaults() {
	defaults.Positive(&c.Heartbeat, 15*time.Second)
	defaults.Positive(&c.Retry, 2*time.Second)
	defaults.Positive(&c.MaxConnectionsPerUser, 16)
	defaults.Positive(&c.Buffer, 256)
	defaults.Positive(&c.SlowGrace, 3*time.Second)
	defaults.Positive(&c.MaxLifetime, time.Hour)
	defaults.Positive(&c.WriteTimeout, 10*time.Second)
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.SendBuffer == 0 {
		c.SendBuffer = 64 << 10
	}
	defaults.Positive(&c.MaxReplays, 8)
	defaults.Positive(&c.TicketLifetime, DefaultTicketLifetime)
}

// Dependencies are what the hub works with.
type Dependencies struct {
	// Log is the event store.
	Log Log
	// Tickets stores SSE tickets.
	Tickets TicketStore
	// Revocations tells whether the credential of a ticket, or of an open
	// stream, has been revoked.
	Revocations Revocations
	// Bus carries ephemeral signals between instances; nil means none.
	Bus livebus.Bus
	// Metrics, when set, records connections, frames and slow consumers.
	Metrics Metrics
	// Logger logs what goes wrong.
	Logger *slog.Logger
}

// Hub fans events and signals out to this instance's live streams. Its
// Handle method is a Watermill handler to be fed every event in commit
// order; Register adds the HTTP routes. It is safe for concurrent use.
type Hub struct {
	cfg         Config
	log         Log
	tickets     TicketStore
	revocations Revocations
	bus         livebus.Bus
	metrics     Metrics
	logger      *slog.Logger
	view        *view

	undecodable sync.Map // stream type → struct{}: warned once
	recent      *frameCache
	replays     chan struct{} // a slot per running replay

	open atomic.Int64 // streams registered and not yet unregistered

	mu     sync.RWMutex
	closed bool
	// byUser holds every stream of a user, ended or not, until its
	// handler returns: it counts connections and finds streams to revoke.
	byUser map[string]map[*subscriber]struct{}
	// The delivery indexes hold the streams not yet ended.
	seeAll         map[*subscriber]struct{}            // scopeAll of admins and auditors
	global         map[string]map[*subscriber]struct{} // scopeAll of others, by user
	me             map[string]map[*subscriber]struct{} // scopeMe, by user
	byWorkspace    map[string]map[*subscriber]struct{}
	byConversation map[string]map[*subscriber]struct{}

	stopSignals func()
	signalsDone chan struct{}

	// held are the streams given frames of the tailer's current read
	// without being woken: they are woken at its last event (see Handle).
	heldMu sync.Mutex
	held   map[*subscriber]struct{}

	// flush writes the streams in direct mode (see flusher).
	flush *flusher
}

// NewHub returns a hub; it starts relaying deps.Bus at once, in the
// background (ctx gives the relay its values; Close stops it).
func NewHub(ctx context.Context, cfg Config, deps Dependencies) (*Hub, error) {
	if deps.Log == nil || deps.Tickets == nil || deps.Revocations == nil {
		return nil, errors.New("sse: a log, a ticket store and revocations are required")
	}
	cfg.defaults()
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Metrics == nil {
		deps.Metrics = noMetrics{}
	}
	h := &Hub{
		cfg: cfg, log: deps.Log, tickets: deps.Tickets, revocations: deps.Revocations, bus: deps.Bus,
		metrics: deps.Metrics, logger: deps.Logger, view: newView(deps.Log), recent: newFrameCache(recentFrames),
		replays: make(chan struct{}, cfg.MaxReplays),
		byUser:  map[string]map[*subscriber]struct{}{}, seeAll: map[*subscriber]struct{}{},
		global: map[string]map[*subscriber]struct{}{}, me: map[string]map[*subscriber]struct{}{},
		byWorkspace: map[string]map[*subscriber]struct{}{}, byConversation: map[string]map[*subscriber]struct{}{},
		held:        map[*subscriber]struct{}{},
		stopSignals: func() {}, signalsDone: make(chan struct{}),
	}
	h.flush = &flusher{hub: h, interval: cfg.FlushInterval}
	if h.bus != nil {
		ch, stop := h.bus.Subscribe()
		ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		h.stopSignals = func() { cancel(); stop() }
		go h.relaySignals(ctx, ch)
	} else {
		close(h.signalsDone)
	}
	return h, nil
}

// Close stops relaying signals. Streams are ended by Shutdown.
func (h *Hub) Close() {
	h.stopSignals()
	<-h.signalsDone
}

// subscriber is one live stream.
type subscriber struct {
	actor   access.Actor
	scope   scope
	pending *backlog
	// done is closed by the hub when it ends the stream; final, set before,
	// is the last frame to write (nil: close without one).
	done  chan struct{}
	final []byte
	ended bool // guarded by Hub.mu
	slow  atomic.Bool
	// abort, when set, interrupts a write blocked on a client that does
	// not read, so that a stream ended as too slow is closed at once.
	abort func()

	// Direct mode (see flusher). direct is set before the stream runs
	// when its connection can be written without waiting; live is set
	// while the flusher writes its frames (caught up, nothing left over);
	// marked while it waits for the flusher's pass.
	direct directConn
	live   atomic.Bool
	marked atomic.Bool
	// writeMu is held by whoever writes to the stream, its goroutine or
	// the flusher; it guards leftover and after.
	writeMu sync.Mutex
	// leftover is what a direct write could not write, for the goroutine,
	// and leftoverFrames the frames it ends.
	leftover       []byte
	leftoverFrames int
	// after is the cursor the replay reached: live frames up to it were
	// written by the replay (or were not for this stream). Set before
	// live.
	after eventstore.Cursor
}

// replayed reports whether f is an event frame the replay already wrote
// (or left out) for s; writeMu is held.
func (s *subscriber) replayed(f *frame) bool {
	return f.isEvent() && !f.cursor.After(s.after)
}

func (h *Hub) newSubscriber(actor access.Actor, sc scope, abort func()) *subscriber {
	if abort == nil {
		abort = func() {}
	}
	return &subscriber{actor: actor, scope: sc, pending: newBacklog(h.cfg.Buffer, h.cfg.SlowGrace),
		done: make(chan struct{}), abort: abort}
}

// Errors of register.
var (
	errTooManyStreams = errors.New("sse: too many streams for this user")
	errShuttingDown   = errors.New("sse: shutting down")
)

// register adds s to the hub: from now on it receives every frame it may see.
func (h *Hub) register(s *subscriber) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return errShuttingDown
	}
	u := s.actor.UserID
	if len(h.byUser[u]) >= h.cfg.MaxConnectionsPerUser {
		return errTooManyStreams
	}
	add(h.byUser, u, s)
	h.open.Add(1)
	switch s.scope.kind {
	case scopeAll:
		if s.actor.SeesEverything() {
			h.seeAll[s] = struct{}{}
		} else {
			add(h.global, u, s)
		}
	case scopeMe:
		add(h.me, u, s)
	case scopeWorkspace:
		add(h.byWorkspace, s.scope.id, s)
	case scopeConversation:
		add(h.byConversation, s.scope.id, s)
	}
	return nil
}

// unregister removes s for good; its handler has returned.
func (h *Hub) unregister(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.detach(s)
	if set, ok := h.byUser[s.actor.UserID]; ok {
		if _, ok := set[s]; ok {
			h.open.Add(-1)
		}
	}
	remove(h.byUser, s.actor.UserID, s)
}

// end stops delivery to s and tells its handler to close the stream, after
// writing what is buffered and final (when final is not nil).
func (h *Hub) end(s *subscriber, final []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.endLocked(s, final)
}

func (h *Hub) endLocked(s *subscriber, final []byte) {
	if s.ended {
		return
	}
	h.detach(s)
	s.ended = true
	s.final = final
	close(s.done)
}

// detach removes s from the delivery indexes; h.mu is held.
func (h *Hub) detach(s *subscriber) {
	u := s.actor.UserID
	delete(h.seeAll, s)
	remove(h.global, u, s)
	remove(h.me, u, s)
	remove(h.byWorkspace, s.scope.id, s)
	remove(h.byConversation, s.scope.id, s)
}

func add(m map[string]map[*subscriber]struct{}, k string, s *subscriber) {
	set, ok := m[k]
	if !ok {
		set = map[*subscriber]struct{}{}
		m[k] = set
	}
	set[s] = struct{}{}
}

func remove(m map[string]map[*subscriber]struct{}, k string, s *subscriber) {
	if set, ok := m[k]; ok {
		delete(set, s)
		if len(set) == 0 {
			delete(m, k)
		}
	}
}

// Shutdown ends every stream with a final retry: line (spread at random
// between one and three times Config.Retry, so that clients do not all come
// back at once) and refuses new ones. Register it with the HTTP server's
// RegisterOnShutdown: http.Server.Shutdown does not end live streams.
func (h *Hub) Shutdown() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for _, set := range h.byUser {
		for s := range set {
			h.endLocked(s, retryFrame(h.cfg.Retry+rand.N(2*h.cfg.Retry)))
		}
	}
}

// Connections returns the number of open streams.
func (h *Hub) Connections() int { return int(h.open.Load()) }

// Handle takes the next event of the log in commit order: it updates the
// access view, ends the streams that lost access and delivers the event to
// every stream that may see it. It is a Watermill handler
// (message.NoPublishHandlerFunc); it returns an error only when the log
// could not be read to decide who may see the event, so that the event is
// delivered again.
func (h *Hub) Handle(msg *message.Message) error {
	e, ok := eventstore.EventOf(msg, h.logger, "live events")
	if !ok {
		return nil
	}
	ctx := msg.Context()
	// The events of one read of the log come one after the other: the
	// streams are woken at the last, and each writes them in one go,
	// rather than writing the first alone and the rest a flush interval
	// later.
	hold := msg.Metadata.Get(eventstore.MetaMore) != ""
	if !hold {
		defer h.wakeHeld()
	}
	change, err := h.view.observe(e)
	if err != nil {
		h.logger.Warn("live events: cannot read access from an event", "position", e.GlobalPosition, "type", e.Type, "err", err)
	}
	h.revoke(change, e)
	if h.Connections() == 0 {
		return nil // nobody to tell; the view is current all the same
	}
	subj, err := h.view.subject(ctx, e)
	if err != nil {
		return fmt.Errorf("live events: owner of event %d: %w", e.GlobalPosition, err)
	}
	if subj.workspaceID != "" {
		if err := h.view.members.Ensure(ctx, subj.workspaceID); err != nil {
			return fmt.Errorf("live events: event %d: %w", e.GlobalPosition, err)
		}
	}

	var (
		built bool
		f     *frame
	)
	h.fanOut(subj, hold, func() *frame {
		if !built {
			built, f = true, h.encode(e)
		}
		return f
	})
	return nil
}

// wakeHeld wakes the streams that Handle gave frames without waking them.
func (h *Hub) wakeHeld() {
	h.heldMu.Lock()
	defer h.heldMu.Unlock()
	for s := range h.held {
		h.wake(s)
	}
	clear(h.held)
}

// wake tells whoever writes s that frames are waiting: the flusher in
// direct mode, the stream's goroutine otherwise.
func (h *Hub) wake(s *subscriber) {
	if s.live.Load() {
		h.flush.mark(s)
		return
	}
	s.pending.wake()
}

// encode builds the frame of e with its secrets removed, or nil when e
// cannot be shown (a stream type missing from the catalogue, or undecodable data).
// Recent frames are kept, so that clients resuming after a short break
// (or many at once, after a restart) do not encode them again.
func (h *Hub) encode(e eventstore.Event) *frame {
	if f, ok := h.recent.get(e.GlobalPosition); ok {
		return f
	}
	f := h.encodeNew(e)
	if f != nil {
		h.recent.put(e.GlobalPosition, f)
	}
	return f
}

func (h *Hub) encodeNew(e eventstore.Event) *frame {
	kind, ok := catalog.Lookup(e.StreamType)
	if !ok {
		if _, warned := h.undecodable.LoadOrStore(e.StreamType, struct{}{}); !warned {
			h.logger.Warn("live events: stream type not in the catalogue; its events are not streamed", "stream_type", e.StreamType)
		}
		return nil
	}
	ev, err := kind.Redacted(e.Type, e.SchemaVersion, e.Data)
	if err != nil {
		h.logger.Warn("live events: event not decodable; not streamed", "position", e.GlobalPosition, "type", e.Type, "err", err)
		return nil
	}
	data, err := oneLineJSON(ev)
	if err != nil {
		h.logger.Warn("live events: event not encodable; not streamed", "position", e.GlobalPosition, "type", e.Type, "err", err)
		return nil
	}
	f, err := eventFrame(e, data)
	if err != nil {
		h.logger.Warn("live events: event not streamable", "err", err)
		return nil
	}
	return f
}

// revoke ends the streams that a change of access closes.
func (h *Hub) revoke(c change, e eventstore.Event) {
	if c.memberRemoved == "" && c.sessionRevoked == "" && c.keyRevoked == "" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.memberRemoved != "" {
		role := h.view.members.CachedRole(c.workspace, c.memberRemoved)
		for s := range h.byUser[c.memberRemoved] {
			if s.scope.kind != scopeWorkspace && s.scope.kind != scopeConversation || s.scope.workspaceID != c.workspace {
				continue
			}
			if access.CheckWorkspace(s.actor, access.ReadWorkspace, role) != nil {
				h.endLocked(s, controlFrame("access_revoked", revocation{Reason: "member_removed", WorkspaceID: c.workspace, Position: e.GlobalPosition}))
			}
		}
	}
	if c.sessionRevoked == "" && c.keyRevoked == "" {
		return
	}
	for _, set := range h.byUser {
		for s := range set {
			switch {
			case c.sessionRevoked != "" && s.actor.SessionID == c.sessionRevoked:
				h.endLocked(s, controlFrame("access_revoked", revocation{Reason: "session_revoked", Position: e.GlobalPosition}))
			case c.keyRevoked != "" && s.actor.KeyID == c.keyRevoked:
				h.endLocked(s, controlFrame("access_revoked", revocation{Reason: "api_key_revoked", Position: e.GlobalPosition}))
			}
		}
	}
}

// revocation is the data of an access_revoked frame.
type revocation struct {
	Reason      string `json:"reason"`
	WorkspaceID string `json:"workspace_id,omitempty"`
	// Position is the event that revoked access (0: the revocation
	// happened before the stream opened).
	Position int64 `json:"position,omitempty"`
}

// fanOut offers the frame to every stream that may see subj. The frame is
// built (by build) only if some stream takes it; build may return nil.
// Backlogs are filled without waiting: a stream found too slow is ended.
// With hold, the streams are not woken but kept in h.held, for wakeHeld.
func (h *Hub) fanOut(subj subject, hold bool, build func() *frame) {
	var slow []*subscriber
	now := time.Now()
	offer := func(s *subscriber, role string) {
		if !visible(s.actor, s.scope, subj, role) {
			return
		}
		f := build()
		if f == nil {
			return
		}
		if !s.pending.add(f, now) {
			if s.slow.CompareAndSwap(false, true) {
				slow = append(slow, s)
			}
			return
		}
		if !hold {
			h.wake(s)
			return
		}
		h.heldMu.Lock()
		h.held[s] = struct{}{}
		h.heldMu.Unlock()
	}
	roleOf := func(s *subscriber) string {
		if subj.workspaceID == "" {
			return ""
		}
		return h.view.members.CachedRole(subj.workspaceID, s.actor.UserID)
	}

	h.mu.RLock()
	for s := range h.seeAll {
		offer(s, roleOf(s))
	}
	if ws := subj.workspaceID; ws != "" {
		for s := range h.byWorkspace[ws] {
			offer(s, roleOf(s))
		}
		// Global streams of the workspace's members: walk whichever is
		// smaller, the members or the users with global streams.
		if len(h.global) > 0 {
			if h.view.members.MemberCount(ws) <= len(h.global) {
				h.view.members.EachMember(ws, func(userID, role string) {
					for s := range h.global[userID] {
						offer(s, role)
					}
				})
			} else {
				for userID, set := range h.global {
					if role := h.view.members.CachedRole(ws, userID); role != "" {
						for s := range set {
							offer(s, role)
						}
					}
				}
			}
		}
	}
	if c := subj.conversationID; c != "" {
		for s := range h.byConversation[c] {
			offer(s, roleOf(s))
		}
	}
	for _, u := range []string{subj.userID, subj.aboutUserID} {
		if u == "" {
			continue
		}
		for s := range h.me[u] {
			offer(s, "")
		}
		// A member's global streams were reached through the members.
		if subj.workspaceID == "" || h.view.members.CachedRole(subj.workspaceID, u) == "" {
			for s := range h.global[u] {
				offer(s, "")
			}
		}
	}
	h.mu.RUnlock()

	for _, s := range slow {
		h.metrics.SSESlowDisconnect()
		h.end(s, nil)
		s.abort()
	}
}

// relaySignals delivers ephemeral signals until ctx ends.
func (h *Hub) relaySignals(ctx context.Context, ch <-chan livebus.Signal) {
	defer close(h.signalsDone)
	for {
		select {
		case <-ctx.Done():
			return
		case sig := <-ch:
			h.deliverSignal(ctx, sig)
		}
	}
}

func (h *Hub) deliverSignal(ctx context.Context, sig livebus.Signal) {
	subj := subject{workspaceID: sig.WorkspaceID, conversationID: sig.ConversationID}
	if subj.conversationID != "" {
		// The conversation's workspace decides who may see it, whatever the
		// publisher said.
		o, found, err := h.view.owner(ctx, conversation.StreamID(subj.conversationID))
		if err != nil || !found {
			if err != nil && ctx.Err() == nil {
				h.logger.Warn("live events: signal dropped: conversation unknown", "type", sig.Type, "err", err)
			}
			return
		}
		subj.workspaceID = o.WorkspaceID
	}
	if subj.workspaceID == "" {
		return
	}
	if err := h.view.members.Ensure(ctx, subj.workspaceID); err != nil {
		if ctx.Err() == nil {
			h.logger.Warn("live events: signal dropped: members unknown", "type", sig.Type, "err", err)
		}
		return
	}
	sig.WorkspaceID = subj.workspaceID
	f, err := signalFrame(sig)
	if err != nil {
		h.logger.Warn("live events: signal dropped", "err", err)
		return
	}
	h.fanOut(subj, false, func() *frame { return f })
}

type noMetrics struct{}

func (noMetrics) SSEConnected(int)   {}
func (noMetrics) SSEFramesSent(int)  {}
func (noMetrics) SSESlowDisconnect() {}
