package sse

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/domain/session"
	"github.com/engramhq/engram/domain/user"
	"github.com/engramhq/engram/domain/workspace"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/platform/cache"
	"github.com/engramhq/engram/platform/livebus"
)

// fakeLog is an event log in memory. Events are kept in commit order
// (tx_id, global_position); visible bounds what ReadCommitted returns, like
// a transaction still in flight does.
type fakeLog struct {
	mu      sync.Mutex
	events  []eventstore.Event
	nextTx  uint64
	nextPos int64
	visible int // -1: all
}

func newFakeLog() *fakeLog { return &fakeLog{nextTx: 100, visible: -1} }

// add appends an event in its own transaction and returns it.
func (l *fakeLog) add(streamType, id, typ string, data any) eventstore.Event {
	l.mu.Lock()
	l.nextTx++
	tx := l.nextTx
	l.mu.Unlock()
	return l.addTx(tx, streamType, id, typ, data)
}

// addTx appends an event of transaction tx.
func (l *fakeLog) addTx(tx uint64, streamType, id, typ string, data any) eventstore.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	raw, err := json.Marshal(data)
	if err != nil {
		panic(err)
	}
	streamID := streamType + "-" + id
	version := 1
	for _, e := range l.events {
		if e.StreamID == streamID {
			version++
		}
	}
	l.nextPos++
	e := eventstore.Event{GlobalPosition: l.nextPos, TxID: tx, EventID: uuid.NewString(), StreamID: streamID,
		StreamType: streamType, StreamVersion: version, Type: typ, SchemaVersion: 1, Data: raw,
		RecordedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l.events = append(l.events, e)
	slices.SortFunc(l.events, func(a, b eventstore.Event) int {
		switch {
		case a.TxID != b.TxID:
			return int(a.TxID) - int(b.TxID)
		default:
			return int(a.GlobalPosition - b.GlobalPosition)
		}
	})
	return e
}

func (l *fakeLog) ReadCommitted(_ context.Context, after eventstore.Cursor, limit int) ([]eventstore.Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	events := l.events
	if l.visible >= 0 {
		events = events[:l.visible]
	}
	var out []eventstore.Event
	for _, e := range events {
		if (eventstore.Cursor{TxID: e.TxID, Position: e.GlobalPosition}).After(after) && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (l *fakeLog) CursorOf(_ context.Context, position int64) (eventstore.Cursor, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.events {
		if e.GlobalPosition == position {
			return eventstore.Cursor{TxID: e.TxID, Position: position}, nil
		}
	}
	return eventstore.Cursor{}, eventstore.ErrUnknownPosition
}

func (l *fakeLog) ReadStream(_ context.Context, streamID string, after int) ([]eventstore.Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []eventstore.Event
	for _, e := range l.events {
		if e.StreamID == streamID && e.StreamVersion > after {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b eventstore.Event) int { return a.StreamVersion - b.StreamVersion })
	return out, nil
}

func (l *fakeLog) FirstEvent(ctx context.Context, streamID string) (eventstore.Event, bool, error) {
	events, _ := l.ReadStream(ctx, streamID, 0)
	if len(events) == 0 {
		return eventstore.Event{}, false, nil
	}
	return events[0], true, nil
}

// countingMetrics counts what the hub records.
type countingMetrics struct{ connected, frames, slow atomic.Int64 }

func (m *countingMetrics) SSEConnected(d int)  { m.connected.Add(int64(d)) }
func (m *countingMetrics) SSEFramesSent(n int) { m.frames.Add(int64(n)) }
func (m *countingMetrics) SSESlowDisconnect()  { m.slow.Add(1) }

func newTestHub(t testing.TB, log Log, cfg Config, bus livebus.Bus) (*Hub, *countingMetrics) {
	t.Helper()
	m := &countingMetrics{}
	memory := cache.NewMemory()
	t.Cleanup(func() { _ = memory.Close() })
	h, err := NewHub(context.Background(), cfg, Dependencies{Log: log, Tickets: memory, Revocations: noRevocations{}, Bus: bus, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h, m
}

// handle feeds events to the hub as the router would.
func handle(t *testing.T, h *Hub, events ...eventstore.Event) {
	t.Helper()
	for _, e := range events {
		if err := h.Handle(eventstore.ToMessage(e)); err != nil {
			t.Fatalf("Handle(%d %s): %v", e.GlobalPosition, e.Type, err)
		}
	}
}

func subscribe(t *testing.T, h *Hub, actor access.Actor, sc scope) *subscriber {
	t.Helper()
	s := h.newSubscriber(actor, sc, nil)
	if err := h.register(s); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.unregister(s) })
	return s
}

// buffered returns the ids (positions) or event names of the frames
// waiting in s's backlog, emptying it.
func buffered(s *subscriber) []string {
	var out []string
	for _, f := range s.pending.take() {
		out = append(out, frameName(f.data))
	}
	return out
}

// frameName is "id" for an event frame and "event" otherwise.
func frameName(b []byte) string {
	id, event := "", ""
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "id: "); ok {
			id = v
		}
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			event = v
		}
	}
	if id != "" {
		return id
	}
	return event
}

func ids(events ...eventstore.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = strconv.FormatInt(e.GlobalPosition, 10)
	}
	return out
}

// world is a small deployment: Ada owns workspace W (Bob is a viewer) with
// conversations C1 and C2; Ada also owns W2 with conversation C3; Eve is a
// member of nothing; Root is an admin, Audrey an auditor.
type world struct {
	log                                   *fakeLog
	ada, bob, eve, root, audrey           access.Actor
	w, w2, c1, c2, c3, bobSession         string
	wsCreated, memberAdded, c1c, c2c, c3c eventstore.Event
}

func newWorld() *world {
	id := func() string { return uuid.NewString() }
	w := &world{log: newFakeLog(), w: id(), w2: id(), c1: id(), c2: id(), c3: id(), bobSession: id()}
	w.ada = access.Actor{UserID: id(), Roles: []string{access.RoleUser}}
	w.bob = access.Actor{UserID: id(), Roles: []string{access.RoleUser}, SessionID: w.bobSession}
	w.eve = access.Actor{UserID: id(), Roles: []string{access.RoleUser}}
	w.root = access.Actor{UserID: id(), Roles: []string{access.RoleUser, access.RoleAdmin}}
	w.audrey = access.Actor{UserID: id(), Roles: []string{access.RoleUser, access.RoleAuditor}}
	l := w.log
	obj := json.RawMessage(`{}`)
	w.wsCreated = l.add("workspace", w.w, workspace.EventCreated, workspace.Created{WorkspaceID: w.w, OwnerID: w.ada.UserID, Name: "W", Config: obj})
	w.memberAdded = l.add("workspace", w.w, workspace.EventMemberAdded, workspace.MemberAdded{UserID: w.bob.UserID, Role: workspace.RoleViewer})
	l.add("workspace", w.w2, workspace.EventCreated, workspace.Created{WorkspaceID: w.w2, OwnerID: w.ada.UserID, Name: "W2", Config: obj})
	w.c1c = l.add("conversation", w.c1, conversation.EventCreated, conversation.Created{ConversationID: w.c1, WorkspaceID: w.w, Title: "C1", Metadata: obj})
	w.c2c = l.add("conversation", w.c2, conversation.EventCreated, conversation.Created{ConversationID: w.c2, WorkspaceID: w.w, Title: "C2", Metadata: obj})
	w.c3c = l.add("conversation", w.c3, conversation.EventCreated, conversation.Created{ConversationID: w.c3, WorkspaceID: w.w2, Title: "C3", Metadata: obj})
	l.add("session", w.bobSession, session.EventStarted, session.Started{SessionID: w.bobSession, UserID: w.bob.UserID, RefreshTokenHash: "secret-hash"})
	return w
}

func (w *world) post(conversationID, content string) eventstore.Event {
	return w.log.add("conversation", conversationID, conversation.EventMessagePosted,
		conversation.MessagePosted{MessageID: uuid.NewString(), Role: conversation.RoleUser, Content: content, Metadata: json.RawMessage(`{}`)})
}

// Every stream receives exactly what its scope and its user's access allow,
// whichever index reaches it.
func TestHubDeliversByScopeAndAccess(t *testing.T) {
	w := newWorld()
	h, _ := newTestHub(t, w.log, Config{}, nil)

	streams := map[string]*subscriber{
		"ada all":         subscribe(t, h, w.ada, scope{kind: scopeAll}),
		"ada me":          subscribe(t, h, w.ada, scope{kind: scopeMe}),
		"bob all":         subscribe(t, h, w.bob, scope{kind: scopeAll}),
		"bob me":          subscribe(t, h, w.bob, scope{kind: scopeMe}),
		"bob workspace":   subscribe(t, h, w.bob, scope{kind: scopeWorkspace, id: w.w, workspaceID: w.w}),
		"bob c1":          subscribe(t, h, w.bob, scope{kind: scopeConversation, id: w.c1, workspaceID: w.w}),
		"eve all":         subscribe(t, h, w.eve, scope{kind: scopeAll}),
		"root all":        subscribe(t, h, w.root, scope{kind: scopeAll}),
		"audrey all":      subscribe(t, h, w.audrey, scope{kind: scopeAll}),
		"bob key no read": subscribe(t, h, access.Actor{UserID: w.bob.UserID, Scopes: []string{access.ScopeWrite}, KeyID: "k"}, scope{kind: scopeAll}),
	}
	emit := func(e eventstore.Event) eventstore.Event { handle(t, h, e); return e }
	m1 := emit(w.post(w.c1, "in C1"))
	m2 := emit(w.post(w.c2, "in C2"))
	m3 := emit(w.post(w.c3, "in C3 of W2"))
	eveAdded := emit(w.log.add("workspace", w.w2, workspace.EventMemberAdded, workspace.MemberAdded{UserID: w.eve.UserID, Role: workspace.RoleEditor}))
	m4 := emit(w.post(w.c3, "in C3, Eve now a member"))
	refreshed := emit(w.log.add("session", w.bobSession, session.EventRefreshed, session.Refreshed{RefreshTokenHash: "another-secret"}))
	profile := emit(w.log.add("user", w.ada.UserID, user.EventProfileUpdated, user.ProfileUpdated{DisplayName: "Ada L."}))

	everything := ids(m1, m2, m3, eveAdded, m4, refreshed, profile)
	want := map[string][]string{
		"ada all":         ids(m1, m2, m3, eveAdded, m4, profile),
		"ada me":          ids(profile),
		"bob all":         ids(m1, m2, refreshed),
		"bob me":          ids(refreshed),
		"bob workspace":   ids(m1, m2),
		"bob c1":          ids(m1),
		"eve all":         ids(eveAdded, m4),
		"root all":        everything,
		"audrey all":      everything,
		"bob key no read": nil,
	}
	for name, s := range streams {
		if got := buffered(s); !slices.Equal(got, want[name]) {
			t.Errorf("%s received %v, want %v", name, got, want[name])
		}
	}
}

// Frames are one line of JSON with the envelope, and never carry secrets.
func TestHubFramesAreRedactedEnvelopes(t *testing.T) {
	w := newWorld()
	h, _ := newTestHub(t, w.log, Config{}, nil)
	bob := subscribe(t, h, w.bob, scope{kind: scopeMe})
	refreshed := w.log.add("session", w.bobSession, session.EventRefreshed, session.Refreshed{RefreshTokenHash: "another-secret"})
	handle(t, h, refreshed)

	f := bob.pending.take()[0]
	want := "id: " + strconv.FormatInt(refreshed.GlobalPosition, 10) + "\nevent: session.refreshed\ndata: "
	if !bytes.HasPrefix(f.data, []byte(want)) || !bytes.HasSuffix(f.data, []byte("\n\n")) || bytes.Count(f.data, []byte("\n")) != 4 {
		t.Fatalf("frame = %q", f.data)
	}
	if bytes.Contains(f.data, []byte("another-secret")) {
		t.Fatalf("frame carries the refresh token hash: %q", f.data)
	}
	var env map[string]any
	line := strings.TrimSuffix(strings.SplitN(string(f.data), "data: ", 2)[1], "\n\n")
	if err := json.Unmarshal([]byte(line), &env); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"global_position", "event_id", "stream_id", "stream_type", "stream_version", "type", "schema_version", "data", "metadata", "recorded_at"} {
		if _, ok := env[k]; !ok {
			t.Errorf("envelope lacks %s: %v", k, env)
		}
	}
	if env["stream_id"] != refreshed.StreamID || env["global_position"] != float64(refreshed.GlobalPosition) {
		t.Errorf("envelope = %v", env)
	}
}

// Events of a stream type without a decoder are not streamed, even to admins.
func TestHubWithholdsUndecodableEvents(t *testing.T) {
	w := newWorld()
	h, _ := newTestHub(t, w.log, Config{}, nil)
	root := subscribe(t, h, w.root, scope{kind: scopeAll})
	secret := w.log.add("vault", uuid.NewString(), "vault.opened", map[string]string{"workspace_id": w.w, "key": "s3cr3t"})
	m := w.post(w.c1, "after")
	handle(t, h, secret, m)
	if got := buffered(root); !slices.Equal(got, ids(m)) {
		t.Fatalf("admin received %v, want only %v", got, ids(m))
	}
}

// Removing a member ends, with a reason, the streams that depended on the
// membership; the member's global stream stays open and stops receiving the
// workspace.
func TestHubRevokesRemovedMember(t *testing.T) {
	w := newWorld()
	h, _ := newTestHub(t, w.log, Config{}, nil)
	ws := subscribe(t, h, w.bob, scope{kind: scopeWorkspace, id: w.w, workspaceID: w.w})
	conv := subscribe(t, h, w.bob, scope{kind: scopeConversation, id: w.c1, workspaceID: w.w})
	all := subscribe(t, h, w.bob, scope{kind: scopeAll})
	me := subscribe(t, h, w.bob, scope{kind: scopeMe})
	other := subscribe(t, h, w.ada, scope{kind: scopeConversation, id: w.c1, workspaceID: w.w})

	emit := func(e eventstore.Event) eventstore.Event { handle(t, h, e); return e }
	before := emit(w.post(w.c1, "before"))
	removed := emit(w.log.add("workspace", w.w, workspace.EventMemberRemoved, workspace.MemberRemoved{UserID: w.bob.UserID}))
	after := emit(w.post(w.c1, "after"))

	for name, s := range map[string]*subscriber{"workspace": ws, "conversation": conv} {
		select {
		case <-s.done:
		default:
			t.Fatalf("%s stream not ended", name)
		}
		if !bytes.HasPrefix(s.final, []byte("event: access_revoked\ndata: ")) || !bytes.Contains(s.final, []byte(`"reason":"member_removed"`)) ||
			bytes.Contains(s.final, []byte("id: ")) {
			t.Errorf("%s final frame = %q", name, s.final)
		}
		if got := buffered(s); !slices.Equal(got, ids(before)) {
			t.Errorf("%s received %v, want %v", name, got, ids(before))
		}
	}
	select {
	case <-all.done:
		t.Fatal("the global stream was ended")
	default:
	}
	if got := buffered(all); !slices.Equal(got, ids(before, removed)) {
		t.Errorf("global stream received %v, want %v", got, ids(before, removed))
	}
	if got := buffered(me); !slices.Equal(got, ids(removed)) {
		t.Errorf("me stream received %v, want %v", got, ids(removed))
	}
	if got := buffered(other); !slices.Equal(got, ids(before, after)) {
		t.Errorf("Ada's stream received %v", got)
	}

	// A revoked session ends the streams it authenticated.
	revoked := w.log.add("session", w.bobSession, session.EventRevoked, session.Revoked{Reason: "logout"})
	handle(t, h, revoked)
	for _, s := range []*subscriber{all, me} {
		select {
		case <-s.done:
			if !bytes.Contains(s.final, []byte(`"reason":"session_revoked"`)) {
				t.Errorf("final frame = %q", s.final)
			}
		default:
			t.Fatal("stream of a revoked session not ended")
		}
	}
}

// The hub starts at the head: what it did not see, it reads from the log.
// The log is never behind the hub, so a removal already in the log counts
// even before the hub reaches it: nothing leaks to a removed member.
func TestHubReadsWhatItMissedFromTheLog(t *testing.T) {
	w := newWorld()
	h, _ := newTestHub(t, w.log, Config{}, nil)
	bob := subscribe(t, h, w.bob, scope{kind: scopeAll})
	first := w.post(w.c1, "the hub never saw W created")
	handle(t, h, first)
	if got := buffered(bob); !slices.Equal(got, ids(first)) {
		t.Fatalf("Bob received %v, want %v", got, ids(first))
	}

	w2 := newWorld()
	h2, _ := newTestHub(t, w2.log, Config{}, nil)
	bob2 := subscribe(t, h2, w2.bob, scope{kind: scopeAll})
	before := w2.post(w2.c1, "posted while Bob was a member")
	removed := w2.log.add("workspace", w2.w, workspace.EventMemberRemoved, workspace.MemberRemoved{UserID: w2.bob.UserID})
	after := w2.post(w2.c1, "posted after Bob left")
	// The hub is behind: the log already holds the removal when the hub
	// first needs W's members.
	handle(t, h2, before, removed, after)
	if got := buffered(bob2); !slices.Equal(got, ids(removed)) {
		t.Fatalf("Bob received %v, want only %v", got, ids(removed))
	}
}

// A slow stream is ended when it stays behind, without holding back a fast
// one.
func TestHubEndsSlowSubscribers(t *testing.T) {
	w := newWorld()
	h, m := newTestHub(t, w.log, Config{Buffer: 2, SlowGrace: time.Nanosecond}, nil)
	var aborted atomic.Bool
	slow := h.newSubscriber(w.ada, scope{kind: scopeConversation, id: w.c1, workspaceID: w.w}, func() { aborted.Store(true) })
	if err := h.register(slow); err != nil {
		t.Fatal(err)
	}
	defer h.unregister(slow)
	fast := subscribe(t, h, w.ada, scope{kind: scopeConversation, id: w.c1, workspaceID: w.w})
	for i := range 5 {
		e := w.post(w.c1, strconv.Itoa(i))
		handle(t, h, e)
		if got := buffered(fast); !slices.Equal(got, ids(e)) { // the fast reader keeps up
			t.Fatalf("fast stream received %v, want %v", got, ids(e))
		}
		time.Sleep(time.Microsecond) // past the grace period of a nanosecond
	}
	select {
	case <-slow.done:
	default:
		t.Fatal("slow stream not ended")
	}
	if slow.final != nil || !aborted.Load() || m.slow.Load() != 1 {
		t.Errorf("final %q, aborted %v, slow disconnects %d", slow.final, aborted.Load(), m.slow.Load())
	}
}

// A burst above the soft limit is absorbed for the grace period; staying
// behind longer, or falling behind the hard limit, is too slow.
func TestBacklog(t *testing.T) {
	t0 := time.Now()
	f := &frame{data: []byte("x")}
	b := newBacklog(2, time.Second)
	for i := range 10 {
		if !b.add(f, t0.Add(time.Duration(i)*time.Millisecond)) {
			t.Fatalf("frame %d of a burst refused", i)
		}
	}
	if b.add(f, t0.Add(2*time.Second)) {
		t.Fatal("still behind after the grace period, but not too slow")
	}
	if got := len(b.take()); got != 10 {
		t.Fatalf("took %d frames, want 10", got)
	}
	// Once the writer has caught up, the grace period starts afresh.
	for i := range 5 {
		if !b.add(f, t0.Add(3*time.Second)) {
			t.Fatalf("frame %d after catching up refused", i)
		}
	}
	b.take()
	for i := range 32 {
		if !b.add(f, t0.Add(4*time.Second)) {
			t.Fatalf("frame %d refused below the hard limit", i)
		}
	}
	if b.add(f, t0.Add(4*time.Second)) || b.len() != 32 {
		t.Fatalf("hard limit not enforced: %d waiting", b.len())
	}
}

func TestHubCapsConnectionsPerUser(t *testing.T) {
	w := newWorld()
	h, _ := newTestHub(t, w.log, Config{MaxConnectionsPerUser: 2}, nil)
	a, b := subscribe(t, h, w.ada, scope{kind: scopeAll}), subscribe(t, h, w.ada, scope{kind: scopeMe})
	if err := h.register(h.newSubscriber(w.ada, scope{kind: scopeAll}, nil)); !errors.Is(err, errTooManyStreams) {
		t.Fatalf("third stream: err = %v, want errTooManyStreams", err)
	}
	subscribe(t, h, w.bob, scope{kind: scopeAll}) // another user is not limited by Ada's streams
	// An ended stream counts until its handler returns.
	h.end(a, nil)
	if err := h.register(h.newSubscriber(w.ada, scope{kind: scopeAll}, nil)); !errors.Is(err, errTooManyStreams) {
		t.Fatalf("err = %v while the ended stream's handler runs", err)
	}
	if n := h.Connections(); n != 3 {
		t.Fatalf("Connections = %d, want 3", n)
	}
	h.unregister(a)
	h.unregister(a)
	if n := h.Connections(); n != 2 {
		t.Fatalf("Connections after unregister = %d, want 2", n)
	}
	subscribe(t, h, w.ada, scope{kind: scopeAll})

	h.Shutdown()
	select {
	case <-b.done:
		if !bytes.HasPrefix(b.final, []byte("retry: ")) {
			t.Errorf("final frame on shutdown = %q", b.final)
		}
	default:
		t.Fatal("Shutdown did not end the streams")
	}
	if err := h.register(h.newSubscriber(w.eve, scope{kind: scopeAll}, nil)); !errors.Is(err, errShuttingDown) {
		t.Fatalf("register after Shutdown: err = %v", err)
	}
}

// memorySink records what a stream writes.
type memorySink struct {
	mu      sync.Mutex
	frames  []string
	buf     bytes.Buffer
	flushes int
}

func (s *memorySink) begin() error { return nil }

func (s *memorySink) write(b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(b)
	return nil
}

func (s *memorySink) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushes++
	for _, f := range strings.SplitAfter(s.buf.String(), "\n\n") {
		if f != "" {
			s.frames = append(s.frames, f)
		}
	}
	s.buf.Reset()
	return nil
}

func (s *memorySink) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []string{}
	for _, f := range s.frames {
		out = append(out, frameLabel(f))
	}
	return out
}

// frameLabel names a written frame: "retry" for the retry: line, "ping" for
// a heartbeat, and frameName's otherwise.
func frameLabel(f string) string {
	switch {
	case strings.HasPrefix(f, "retry: "):
		return "retry"
	case strings.HasPrefix(f, ": "):
		return "ping"
	default:
		return frameName([]byte(f))
	}
}

// Resume: live delivery is buffered while the store replays what the client
// missed in commit order; the buffer is then drained without what the
// replay sent. An event with a smaller position that commits after the
// client's last one is not lost, and nothing comes twice.
func TestResumeHasNoGapAndNoDuplicate(t *testing.T) {
	w := newWorld()
	l := w.log
	h, m := newTestHub(t, l, Config{}, nil)
	seen := w.post(w.c1, "the client saw this one")
	handle(t, h, seen)

	// Transaction 502 takes position p, then transaction 501 takes p+1: in
	// commit order, p+1 comes first. A resume by position from p would
	// lose p+1; a resume in commit order from the client's last event gets
	// both.
	late := l.addTx(502, "conversation", w.c1, conversation.EventMessagePosted, conversation.MessagePosted{Metadata: json.RawMessage(`{}`), Content: "smaller position, committed later"})
	early := l.addTx(501, "conversation", w.c1, conversation.EventMessagePosted, conversation.MessagePosted{Metadata: json.RawMessage(`{}`), Content: "larger position, committed first"})
	if late.GlobalPosition > early.GlobalPosition {
		t.Fatal("setup: positions not out of commit order")
	}
	other := l.addTx(503, "conversation", w.c3, conversation.EventMessagePosted, conversation.MessagePosted{Metadata: json.RawMessage(`{}`), Content: "another workspace"})
	live := l.addTx(504, "conversation", w.c1, conversation.EventMessagePosted, conversation.MessagePosted{Metadata: json.RawMessage(`{}`), Content: "after the replay"})
	l.visible = len(l.events) - 1 // the replay sees everything but the last

	s := h.newSubscriber(w.ada, scope{kind: scopeConversation, id: w.c1, workspaceID: w.w}, nil)
	if err := h.register(s); err != nil {
		t.Fatal(err)
	}
	defer h.unregister(s)
	// The hub goes on while the client reconnects: all of these are
	// buffered for it.
	handle(t, h, early, late, other, live)

	out := &memorySink{}
	from, err := l.CursorOf(context.Background(), seen.GlobalPosition)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.run(context.Background(), s, &from, out, time.Time{})
	}()
	// End the stream once the replay is written (ended before, it would
	// write only the final frame).
	for deadline := time.Now().Add(5 * time.Second); len(out.names()) < 3; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("replay not written: %v", out.names())
		}
	}
	h.end(s, controlFrame("access_revoked", revocation{Reason: "test"}))
	<-done

	want := append([]string{"retry"}, ids(early, late, live)...)
	want = append(want, "access_revoked")
	if got := out.names(); !slices.Equal(got, want) {
		t.Fatalf("stream = %v, want %v", got, want)
	}
	if m.frames.Load() != 3 {
		t.Errorf("frames counted = %d, want 3", m.frames.Load())
	}
}

// A stream that has just written lets the frames that follow gather for
// FlushInterval and writes them together; an idle one writes at once.
func TestHubCoalescesBusyStreams(t *testing.T) {
	w := newWorld()
	h, _ := newTestHub(t, w.log, Config{FlushInterval: 200 * time.Millisecond}, nil)
	handle(t, h, w.c1c)
	s := h.newSubscriber(w.ada, scope{kind: scopeConversation, id: w.c1, workspaceID: w.w}, nil)
	if err := h.register(s); err != nil {
		t.Fatal(err)
	}
	out := &memorySink{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.run(context.Background(), s, nil, out, time.Time{})
	}()
	waitFor := func(n int) time.Duration {
		t.Helper()
		start := time.Now()
		for len(out.names()) < n {
			if time.Since(start) > 5*time.Second {
				t.Fatalf("stream = %v, want %d frames", out.names(), n)
			}
			time.Sleep(time.Millisecond)
		}
		return time.Since(start)
	}
	waitFor(1) // retry:
	first := w.post(w.c1, "first")
	handle(t, h, first)
	if took := waitFor(2); took > 150*time.Millisecond {
		t.Errorf("an idle stream waited %v to write a frame", took)
	}
	burst := []eventstore.Event{w.post(w.c1, "a"), w.post(w.c1, "b"), w.post(w.c1, "c")}
	handle(t, h, burst...)
	waitFor(5)
	h.end(s, nil)
	<-done
	out.mu.Lock()
	flushes := out.flushes
	out.mu.Unlock()
	if flushes != 3 {
		t.Errorf("%d writes for retry:, one frame and a burst of three, want 3", flushes)
	}
	if got, want := out.names(), append([]string{"retry"}, ids(append([]eventstore.Event{first}, burst...)...)...); !slices.Equal(got, want) {
		t.Errorf("stream = %v, want %v", got, want)
	}
}

// The events of one read of the log (each but the last marked MetaMore by
// the tailer) wake a stream once, at the last, so that it writes them
// together; unmarked events wake it at once.
func TestHubWakesStreamsAtTheEndOfARead(t *testing.T) {
	w := newWorld()
	h, _ := newTestHub(t, w.log, Config{}, nil)
	handle(t, h, w.c1c)
	s := subscribe(t, h, w.ada, scope{kind: scopeConversation, id: w.c1, workspaceID: w.w})
	woken := func() bool {
		select {
		case <-s.pending.ready:
			return true
		default:
			return false
		}
	}
	read := []eventstore.Event{w.post(w.c1, "a"), w.post(w.c1, "b"), w.post(w.c1, "c")}
	for i, e := range read {
		msg := eventstore.ToMessage(e)
		if i < len(read)-1 {
			msg.Metadata.Set(eventstore.MetaMore, "1")
		}
		if err := h.Handle(msg); err != nil {
			t.Fatal(err)
		}
		if last := i == len(read)-1; woken() != last {
			t.Fatalf("after event %d of 3: woken = %v, want %v", i+1, !last, last)
		}
	}
	if got, want := buffered(s), ids(read...); !slices.Equal(got, want) {
		t.Fatalf("backlog = %v, want %v", got, want)
	}
	handle(t, h, w.post(w.c1, "alone"))
	if !woken() {
		t.Fatal("an event on its own did not wake the stream")
	}
}

// Ephemeral signals reach the streams of their conversation, without an id.
func TestHubRelaysSignals(t *testing.T) {
	w := newWorld()
	bus := livebus.NewLocal()
	h, _ := newTestHub(t, w.log, Config{}, bus)
	handle(t, h, w.c1c)
	conv := subscribe(t, h, w.bob, scope{kind: scopeConversation, id: w.c1, workspaceID: w.w})
	ws := subscribe(t, h, w.ada, scope{kind: scopeWorkspace, id: w.w, workspaceID: w.w})
	all := subscribe(t, h, w.bob, scope{kind: scopeAll})
	eve := subscribe(t, h, w.eve, scope{kind: scopeAll})
	me := subscribe(t, h, w.bob, scope{kind: scopeMe})
	otherConv := subscribe(t, h, w.ada, scope{kind: scopeConversation, id: w.c2, workspaceID: w.w})

	// The publisher's workspace id is not trusted: the conversation's is used.
	if err := bus.Publish(context.Background(), livebus.Signal{Type: livebus.TypeTyping, ConversationID: w.c1,
		WorkspaceID: w.w2, UserID: w.ada.UserID, Data: json.RawMessage(`{"state":"start"}`)}); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*subscriber{"conversation": conv, "workspace": ws, "global": all} {
		select {
		case <-s.pending.ready:
			f := s.pending.take()[0]
			if f.isEvent() || !bytes.HasPrefix(f.data, []byte("event: typing\ndata: {")) || bytes.Contains(f.data, []byte("id:")) ||
				!bytes.Contains(f.data, []byte(`"workspace_id":"`+w.w+`"`)) {
				t.Errorf("%s frame = %q", name, f.data)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s stream received no signal", name)
		}
	}
	for name, s := range map[string]*subscriber{"outsider": eve, "me": me, "other conversation": otherConv} {
		if got := buffered(s); len(got) != 0 {
			t.Errorf("%s received %v", name, got)
		}
	}
}

func TestVisible(t *testing.T) {
	ws, conv := "w", "c"
	member := access.Actor{UserID: "m"}
	outsider := access.Actor{UserID: "o"}
	admin := access.Actor{UserID: "a", Roles: []string{access.RoleAdmin}}
	readKey := access.Actor{UserID: "m", Scopes: []string{access.ScopeRead}, KeyID: "k"}
	writeKey := access.Actor{UserID: "m", Scopes: []string{access.ScopeWrite}, KeyID: "k"}
	inConv := subject{workspaceID: ws, conversationID: conv}
	own := subject{userID: "m"}
	about := subject{workspaceID: ws, aboutUserID: "m"}
	orphan := subject{}
	cases := []struct {
		name  string
		actor access.Actor
		sc    scope
		subj  subject
		role  string
		want  bool
	}{
		{"member sees conversation on all", member, scope{kind: scopeAll}, inConv, "viewer", true},
		{"outsider does not", outsider, scope{kind: scopeAll}, inConv, "", false},
		{"admin sees everything", admin, scope{kind: scopeAll}, orphan, "", true},
		{"member does not see orphans", member, scope{kind: scopeAll}, orphan, "viewer", false},
		{"own events on all", member, scope{kind: scopeAll}, own, "", true},
		{"own events on me", member, scope{kind: scopeMe}, own, "", true},
		{"about me on me after removal", member, scope{kind: scopeMe}, about, "", true},
		{"workspace events not on me", member, scope{kind: scopeMe}, inConv, "owner", false},
		{"workspace scope", member, scope{kind: scopeWorkspace, id: ws}, inConv, "viewer", true},
		{"other workspace", member, scope{kind: scopeWorkspace, id: "x"}, inConv, "viewer", false},
		{"workspace scope without membership", member, scope{kind: scopeWorkspace, id: ws}, inConv, "", false},
		{"conversation scope", member, scope{kind: scopeConversation, id: conv}, inConv, "editor", true},
		{"other conversation", member, scope{kind: scopeConversation, id: "y"}, inConv, "editor", false},
		{"read key", readKey, scope{kind: scopeAll}, inConv, "viewer", true},
		{"key without read scope", writeKey, scope{kind: scopeAll}, own, "", false},
		{"key without read scope on me", writeKey, scope{kind: scopeMe}, own, "", false},
	}
	for _, c := range cases {
		if got := visible(c.actor, c.sc, c.subj, c.role); got != c.want {
			t.Errorf("%s: visible = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestFrameCacheKeepsTheMostRecent(t *testing.T) {
	c := newFrameCache(3)
	for p := int64(1); p <= 5; p++ {
		c.put(p, &frame{data: []byte(strconv.FormatInt(p, 10))})
	}
	c.put(5, &frame{data: []byte("again")})
	for p := int64(1); p <= 5; p++ {
		f, ok := c.get(p)
		if want := p >= 3; ok != want {
			t.Errorf("position %d cached = %v, want %v", p, ok, want)
		}
		if ok && string(f.data) != strconv.FormatInt(p, 10) {
			t.Errorf("position %d = %q", p, f.data)
		}
	}
}

// A stream ended while waiting for its turn to replay writes its final
// frame and nothing live: live frames without the replay would leave a gap.
func TestResumeEndedBeforeReplay(t *testing.T) {
	w := newWorld()
	h, _ := newTestHub(t, w.log, Config{MaxReplays: 1}, nil)
	seen := w.post(w.c1, "seen")
	h.replays <- struct{}{} // another resume holds the only slot
	s := subscribe(t, h, w.ada, scope{kind: scopeConversation, id: w.c1, workspaceID: w.w})
	handle(t, h, w.post(w.c1, "live"))
	from, _ := w.log.CursorOf(context.Background(), seen.GlobalPosition)
	h.end(s, retryFrame(time.Second))
	out := &memorySink{}
	h.run(context.Background(), s, &from, out, time.Time{})
	if got := out.names(); !slices.Equal(got, []string{"retry", "retry"}) {
		t.Fatalf("stream = %v, want the opening and the final retry only", got)
	}
}
