package sse

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/transport/request"
)

// replayBatch is the number of events read per query when resuming.
const replayBatch = 500

// writeBatch is the most frames written between two flushes.
const writeBatch = 64

// Register adds the live event routes, the ticket route and the typing
// route to v1, a group of the API server's router under /v1 (behind its
// authentication middleware).
func (h *Hub) Register(v1 *echo.Group) {
	v1.GET("/events", h.streamAll)
	v1.GET("/users/me/events", h.streamMe)
	v1.GET("/workspaces/:id/events", h.streamWorkspace)
	v1.GET("/conversations/:id/events", h.streamConversation)
	v1.POST("/auth/sse-ticket", h.issueTicket)
	v1.POST("/conversations/:id/typing", h.typing)
}

func (h *Hub) streamAll(c echo.Context) error { return h.serve(c, scopeAll) }
func (h *Hub) streamMe(c echo.Context) error  { return h.serve(c, scopeMe) }
func (h *Hub) streamWorkspace(c echo.Context) error {
	return h.serve(c, scopeWorkspace)
}
func (h *Hub) streamConversation(c echo.Context) error {
	return h.serve(c, scopeConversation)
}

// serve runs one live stream: authenticate, check access, register, write
// the stream until it ends.
func (h *Hub) serve(c echo.Context, kind scopeKind) error {
	ctx := c.Request().Context()
	actor, expiry, err := h.authenticate(c, kind, c.Param("id"))
	if err != nil {
		return err
	}
	sc, err := h.scopeFor(ctx, actor, kind, c.Param("id"))
	if err != nil {
		return err
	}
	resume, err := h.resumeCursor(c)
	if err != nil {
		return err
	}
	out := newHTTPSink(c.Response(), h.cfg.WriteTimeout)
	defer out.finish()
	s := h.newSubscriber(actor, sc, out.abort)
	switch err := h.register(s); {
	case errors.Is(err, errTooManyStreams):
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(h.cfg.Retry.Seconds()+1)))
		return domain.Errorf(request.CodeTooManyRequests, "at most %d live streams per user; close one first", h.cfg.MaxConnectionsPerUser)
	case errors.Is(err, errShuttingDown):
		return echo.NewHTTPError(http.StatusServiceUnavailable, "the server is shutting down; reconnect to another instance")
	case err != nil:
		return err
	}
	defer h.unregister(s)
	// A revocation handled by the hub before the stream was registered did
	// not reach it: look again, now that any later one will.
	reason, err := h.revokedReason(ctx, actor)
	if err != nil {
		return err
	}
	if reason != "" {
		h.end(s, controlFrame("access_revoked", revocation{Reason: reason}))
	}
	h.metrics.SSEConnected(1)
	defer h.metrics.SSEConnected(-1)
	limitSendBuffer(ctx, h.cfg.SendBuffer)

	w := c.Response()
	hdr := w.Header()
	hdr.Set(echo.HeaderContentType, "text/event-stream")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Accel-Buffering", "no")
	ctx, stop := out.start(ctx, c)
	defer stop()
	if out.raw != nil {
		s.direct = out
	}
	h.run(ctx, s, resume, out, expiry)
	return nil
}

// authenticate returns the request's actor and when its stream must end
// (zero: never), from the Authorization header or a ticket, which must be
// for the stream of kind and id. A ticket sent from another origin than
// this server's or an allowed one is refused before it is looked at, so
// that a page the browser blocks cannot use it up or bind it.
func (h *Hub) authenticate(c echo.Context, kind scopeKind, id string) (access.Actor, time.Time, error) {
	if a, ok := request.Actor(c); ok {
		expiry, _ := request.CredentialExpiry(c)
		return a, expiry, nil
	}
	if ticket := c.QueryParam("ticket"); ticket != "" {
		if request.CrossOriginRefused(c) {
			return access.Actor{}, time.Time{}, domain.Errorf(domain.CodeForbidden, "this origin may not open live streams; see ENGRAM_CORS_ALLOWED_ORIGINS")
		}
		a, until, refusal, err := h.redeem(c.Request().Context(), ticket, streamKey(kind, id))
		if err != nil {
			return access.Actor{}, time.Time{}, err
		}
		if refusal != "" {
			return access.Actor{}, time.Time{}, unauthorized(c, string(refusal))
		}
		request.SetActor(c, a, until)
		return a, until, nil
	}
	return access.Actor{}, time.Time{}, unauthorized(c, "authentication required: Authorization: Bearer <token> or ?ticket= from POST /v1/auth/sse-ticket")
}

// streamKey names the stream a ticket is bound to.
func streamKey(kind scopeKind, id string) string {
	switch kind {
	case scopeMe:
		return "me"
	case scopeWorkspace:
		return "workspace:" + id
	case scopeConversation:
		return "conversation:" + id
	}
	return "all"
}

// revokedReason returns the reason of an access_revoked frame when the
// session or API key of actor has been revoked, and "" otherwise.
func (h *Hub) revokedReason(ctx context.Context, actor access.Actor) (string, error) {
	revoked, err := h.credentialRevoked(ctx, actor)
	switch {
	case err != nil || !revoked:
		return "", err
	case actor.SessionID != "":
		return "session_revoked", nil
	}
	return "api_key_revoked", nil
}

func unauthorized(c echo.Context, detail string) error {
	c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="engram"`)
	return domain.Errorf(domain.CodeUnauthorized, "%s", detail)
}

// scopeFor checks that actor may follow the scope and returns it.
func (h *Hub) scopeFor(ctx context.Context, actor access.Actor, kind scopeKind, id string) (scope, error) {
	switch kind {
	case scopeAll, scopeMe:
		return scope{kind: kind}, access.CheckRead(actor)
	case scopeWorkspace:
		if !isUUID(id) {
			return scope{}, domain.Errorf(domain.CodeNotFound, "workspace not found")
		}
		if err := h.checkWorkspace(ctx, actor, access.ReadWorkspace, id, "workspace"); err != nil {
			return scope{}, err
		}
		return scope{kind: kind, id: id, workspaceID: id}, nil
	}
	ws, err := h.conversationWorkspace(ctx, id)
	if err != nil {
		return scope{}, err
	}
	if err := h.checkWorkspace(ctx, actor, access.ReadConversation, ws, "conversation"); err != nil {
		return scope{}, err
	}
	return scope{kind: kind, id: id, workspaceID: ws}, nil
}

// conversationWorkspace returns the workspace of a conversation, or a not
// found error.
func (h *Hub) conversationWorkspace(ctx context.Context, conversationID string) (string, error) {
	if !isUUID(conversationID) {
		return "", domain.Errorf(domain.CodeNotFound, "conversation not found")
	}
	o, found, err := h.view.owner(ctx, conversation.StreamID(conversationID))
	if err != nil {
		return "", err
	}
	if !found || o.WorkspaceID == "" {
		return "", domain.Errorf(domain.CodeNotFound, "conversation not found")
	}
	return o.WorkspaceID, nil
}

// checkWorkspace applies the policy to action on a resource of a workspace
// (what names the resource in a not found error), with the membership as
// the log has it now: a member added a moment ago is not refused because
// the hub has not handled the addition yet.
func (h *Hub) checkWorkspace(ctx context.Context, actor access.Actor, action access.Action, workspaceID, what string) error {
	role, exists, err := h.view.members.CurrentRole(ctx, workspaceID, actor.UserID)
	if err != nil {
		return err
	}
	if !exists {
		return domain.Errorf(domain.CodeNotFound, "%s not found", what)
	}
	if err := access.CheckWorkspace(actor, action, role); err != nil {
		if domain.ErrorCode(err) == domain.CodeNotFound {
			return domain.Errorf(domain.CodeNotFound, "%s not found", what)
		}
		return err
	}
	return nil
}

// resumeCursor reads Last-Event-ID (or last_event_id): nil when absent, the
// cursor of that event otherwise, 400 when it is not a stored event's id.
func (h *Hub) resumeCursor(c echo.Context) (*eventstore.Cursor, error) {
	raw := c.Request().Header.Get("Last-Event-ID")
	if raw == "" {
		raw = c.QueryParam("last_event_id")
	}
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, nil
	}
	bad := echo.NewHTTPError(http.StatusBadRequest,
		"Last-Event-ID must be the id of an event received from a live stream (or 0 for the beginning)")
	position, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || position < 0 {
		return nil, bad
	}
	cursor, err := h.log.CursorOf(c.Request().Context(), position)
	if errors.Is(err, eventstore.ErrUnknownPosition) {
		return nil, bad
	}
	if err != nil {
		return nil, err
	}
	return &cursor, nil
}

// sink is where a stream's frames go: begin, then writes, then flush.
type sink interface {
	// begin starts a batch of writes (and sets its deadline).
	begin() error
	write(b []byte) error
	flush() error
}

// run writes a registered stream until it ends: the retry: line, the replay
// of what the client missed (when resume is set), then live frames and
// heartbeats, until the client leaves, the hub ends the stream, the
// credential expires or the stream has lived its maximum lifetime.
func (h *Hub) run(ctx context.Context, s *subscriber, resume *eventstore.Cursor, out sink, expiry time.Time) {
	w := &streamWriter{hub: h, ctx: ctx, s: s, out: out}
	// However the stream ends, the flusher writes no more to it.
	defer s.live.Store(false)
	if !w.writeAll(retryFrame(h.cfg.Retry)) {
		return
	}
	if resume != nil && !w.catchUp(*resume) {
		return
	}
	w.goLive()

	heartbeat := time.NewTicker(h.cfg.Heartbeat)
	defer heartbeat.Stop()
	lifetime := time.NewTimer(h.cfg.MaxLifetime - rand.N(h.cfg.MaxLifetime/10+1))
	defer lifetime.Stop()
	var expired <-chan time.Time
	if !expiry.IsZero() {
		t := time.NewTimer(time.Until(expiry))
		defer t.Stop()
		expired = t.C
	}
	for {
		select {
		case <-s.pending.ready:
			if !w.writeFrames() {
				return
			}
			if w.goLive() {
				continue // the flusher writes from now on, and lingers
			}
			// The next write comes FlushInterval after this one at the
			// soonest: the frames that come meanwhile gather, and the
			// stream waits here rather than be woken by each of them.
			if !w.linger(h.cfg.FlushInterval) {
				return
			}
		case <-heartbeat.C:
			if !w.writeAll(pingFrame) {
				return
			}
		case <-s.done:
			// Ended by the hub: too slow (nothing more), or with a reason
			// after what is buffered.
			s.live.Store(false)
			if s.final != nil && w.writeFrames() {
				w.writeAll(s.final)
			}
			return
		case <-expired:
			s.live.Store(false)
			w.writeAll(controlFrame("token_expired", struct {
				Reason string `json:"reason"`
			}{"token_expired"}))
			return
		case <-lifetime.C:
			s.live.Store(false)
			w.writeAll(retryFrame(h.cfg.Retry))
			return
		case <-ctx.Done():
			return
		}
	}
}

// streamWriter writes one stream's frames.
type streamWriter struct {
	hub *Hub
	ctx context.Context
	s   *subscriber
	out sink
	// timer times linger, reused.
	timer *time.Timer
}

// catchUp replays what the client missed after from, once a replay slot is
// free. It reports whether the stream goes on.
func (w *streamWriter) catchUp(from eventstore.Cursor) bool {
	select {
	case w.hub.replays <- struct{}{}:
	case <-w.ctx.Done():
		return false
	case <-w.s.done:
		// Ended before its turn: no live frame may be written without the
		// replay before it; the client comes back from where it was.
		if w.s.final != nil {
			w.writeAll(w.s.final)
		}
		return false
	}
	after, err := w.hub.replay(w.ctx, w.s, from, w.out)
	<-w.hub.replays
	w.s.writeMu.Lock()
	w.s.after = after
	w.s.writeMu.Unlock()
	return w.ok(err)
}

// goLive hands the stream to the flusher when its connection can be
// written without waiting and nothing is left over from a write that
// could not be; it reports whether it did.
func (w *streamWriter) goLive() bool {
	s := w.s
	if s.direct == nil {
		return false
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.leftover != nil {
		return false
	}
	s.direct.idle()
	s.live.Store(true)
	if s.pending.len() > 0 {
		w.hub.flush.mark(s)
	}
	return true
}

// linger lets the frames that come within d gather, to be written
// together (see Config.FlushInterval). It reports false when the client has
// left; the hub ending the stream ends the wait early.
func (w *streamWriter) linger(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	if w.timer == nil {
		w.timer = time.NewTimer(d)
	} else {
		w.timer.Reset(d)
	}
	defer w.timer.Stop()
	select {
	case <-w.timer.C:
	case <-w.s.done:
	case <-w.ctx.Done():
		return false
	}
	return true
}

// writeFrames writes every waiting frame, flushing every writeBatch
// frames and at the end. It reports whether the stream goes on.
func (w *streamWriter) writeFrames() bool {
	return w.exclusive(w.writePending)
}

// writePending writes the waiting frames; writeMu is held.
func (w *streamWriter) writePending() bool {
	frames := w.s.pending.take()
	defer w.s.pending.recycle(frames)
	n := 0
	defer func() { w.hub.metrics.SSEFramesSent(n) }()
	for len(frames) > 0 {
		batch := frames[:min(len(frames), writeBatch)]
		frames = frames[len(batch):]
		if !w.ok(w.out.begin()) {
			return false
		}
		for _, f := range batch {
			if w.s.replayed(f) {
				continue // the replay wrote it
			}
			if !w.ok(w.out.write(f.data)) {
				return false
			}
			n++
		}
		if !w.ok(w.out.flush()) {
			return false
		}
	}
	return true
}

// exclusive runs write with writeMu held, after what a direct write left
// over, and then, when the flusher has the stream, lifts the deadline of
// the blocking writes. It reports whether the stream goes on.
func (w *streamWriter) exclusive(write func() bool) bool {
	w.s.writeMu.Lock()
	defer w.s.writeMu.Unlock()
	if !w.writeLeftover() || !write() {
		return false
	}
	if w.s.live.Load() {
		w.s.direct.idle()
	}
	return true
}

// writeLeftover writes what a direct write left over, if anything; writeMu
// is held. It reports whether the stream goes on.
func (w *streamWriter) writeLeftover() bool {
	rest, n := w.s.leftover, w.s.leftoverFrames
	if rest == nil {
		return true
	}
	w.s.leftover, w.s.leftoverFrames = nil, 0
	if !w.ok(writeAll(w.out, rest)) {
		return false
	}
	w.hub.metrics.SSEFramesSent(n)
	return true
}

// writeAll writes one frame on its own and reports whether the stream goes on.
func (w *streamWriter) writeAll(b []byte) bool {
	return w.exclusive(func() bool { return w.ok(writeAll(w.out, b)) })
}

// ok reports whether err is nil; a write error ends the stream (the client
// has gone or does not read), which is logged at debug level only.
func (w *streamWriter) ok(err error) bool {
	if err != nil && w.ctx.Err() == nil {
		w.hub.logger.Debug("live stream ended by a write error", "user_id", w.s.actor.UserID, "err", err)
	}
	return err == nil
}

// replay writes what the client missed after from, in commit order, and
// returns the cursor of the last event read: live frames up to it were
// written by the replay (or were not for this stream).
func (h *Hub) replay(ctx context.Context, s *subscriber, from eventstore.Cursor, out sink) (eventstore.Cursor, error) {
	cursor := from
	for {
		events, err := h.log.ReadCommitted(ctx, cursor, replayBatch)
		if err != nil {
			return cursor, err
		}
		if err := out.begin(); err != nil {
			return cursor, err
		}
		n := 0
		for _, e := range events {
			cursor = eventstore.Cursor{TxID: e.TxID, Position: e.GlobalPosition}
			subj, err := h.view.subject(ctx, e)
			if err != nil {
				return cursor, err
			}
			role := ""
			if subj.workspaceID != "" {
				if role, _, err = h.view.members.Role(ctx, subj.workspaceID, s.actor.UserID); err != nil {
					return cursor, err
				}
			}
			if !visible(s.actor, s.scope, subj, role) {
				continue
			}
			if f := h.encode(e); f != nil {
				if err := out.write(f.data); err != nil {
					return cursor, err
				}
				n++
			}
		}
		if err := out.flush(); err != nil {
			return cursor, err
		}
		h.metrics.SSEFramesSent(n)
		if len(events) < replayBatch {
			return cursor, nil
		}
	}
}

func writeAll(out sink, b []byte) error {
	if err := out.begin(); err != nil {
		return err
	}
	if err := out.write(b); err != nil {
		return err
	}
	return out.flush()
}

// httpSink writes to the client with a deadline per batch of writes.
//
// An HTTP/1.1 stream takes its connection over from net/http (Hijack): the
// frames gathered between two flushes then go out in one system call
// (writev), with no chunked encoding, where net/http's 4 KiB connection
// buffer split every flush of a busy stream into two or three writes. The
// body ends when the connection closes (Connection: close). Where the
// connection cannot be taken over (HTTP/2), the stream is written through
// the ResponseWriter.
type httpSink struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	aborted atomic.Bool

	conn    net.Conn        // the taken-over connection, or nil
	raw     syscall.RawConn // conn's descriptor, when it can be written directly
	pending net.Buffers     // what the next flush sends on conn

	mu       sync.Mutex
	finished bool
}

func newHTTPSink(w http.ResponseWriter, timeout time.Duration) *httpSink {
	return &httpSink{w: w, rc: http.NewResponseController(w), timeout: timeout}
}

// start sends the response head (200 and the headers set so far) and
// returns the stream's context, which ends when the client leaves, and the
// function that ends the stream's use of the connection.
func (s *httpSink) start(ctx context.Context, c echo.Context) (context.Context, func()) {
	conn, rw, err := s.rc.Hijack()
	if err != nil {
		// Not HTTP/1.1: written through the ResponseWriter, which lifts
		// the server's timeouts (they are for ordinary requests: a stream
		// has no read deadline, and a deadline per write).
		c.Response().WriteHeader(http.StatusOK)
		_ = s.rc.SetReadDeadline(time.Time{})
		_ = s.rc.SetWriteDeadline(time.Time{})
		return ctx, func() {}
	}
	_ = conn.SetDeadline(time.Time{})
	// The head goes out with the first frames.
	var head bytes.Buffer
	head.WriteString("HTTP/1.1 200 OK\r\n")
	hdr := c.Response().Header()
	hdr.Set("Connection", "close")
	hdr.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	_ = hdr.Write(&head)
	head.WriteString("\r\n")
	c.Response().Status, c.Response().Committed = http.StatusOK, true
	s.mu.Lock()
	s.conn = conn
	if tcp, ok := conn.(*net.TCPConn); ok && directWrites {
		s.raw, _ = tcp.SyscallConn()
	}
	if s.aborted.Load() {
		s.setWriteDeadline(time.Now()) // Hijack's deadline reset undid abort's
	}
	s.mu.Unlock()
	s.pending = net.Buffers{head.Bytes()}
	// The client sends nothing more: its leaving (or the connection
	// closing) ends the read, which ends the stream. The read goes through
	// the connection's own buffer: io.Copy to io.Discard would hold an 8 KiB
	// buffer of its own per stream while it waits. Only the reader is kept:
	// the writer Hijack made for rw (4 KiB) is never used.
	ctx, cancel := context.WithCancel(ctx)
	r := rw.Reader
	go func() {
		var discard [64]byte
		for {
			if _, err := r.Read(discard[:]); err != nil {
				break
			}
		}
		cancel()
	}()
	return ctx, func() {
		cancel()
		_ = conn.Close()
	}
}

// abort makes a blocked write fail now, and every later one. It may be
// called from any goroutine; after finish it does nothing, since the
// connection may already serve another request.
func (s *httpSink) abort() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		return
	}
	s.aborted.Store(true)
	s.setWriteDeadline(time.Now())
}

// setWriteDeadline sets the deadline of the writes to come, on the
// taken-over connection or through the ResponseWriter.
func (s *httpSink) setWriteDeadline(t time.Time) {
	if s.conn != nil {
		_ = s.conn.SetWriteDeadline(t)
		return
	}
	_ = s.rc.SetWriteDeadline(t)
}

// finish marks the end of the stream's handler.
func (s *httpSink) finish() {
	s.mu.Lock()
	s.finished = true
	s.mu.Unlock()
}

// begin sets the deadline of the writes up to the next flush, unless the
// sink was aborted. It checks after setting, so that an abort racing with
// it always wins: abort sets its flag before its deadline.
func (s *httpSink) begin() error {
	s.setWriteDeadline(time.Now().Add(s.timeout))
	if s.aborted.Load() {
		s.setWriteDeadline(time.Now())
		return errAborted
	}
	return nil
}

// tryWrite writes what the connection takes of b without waiting (see
// directConn). The descriptor's write lock keeps it apart from any other
// write; a deadline past (an abort) refuses it.
func (s *httpSink) tryWrite(b []byte) []byte {
	written := 0
	err := s.raw.Write(func(fd uintptr) bool {
		for written < len(b) {
			n, err := writeFD(fd, b[written:])
			if n <= 0 || err != nil {
				break // would block, interrupted or failed: the goroutine goes on
			}
			written += n
		}
		return true // never wait here
	})
	if err == nil && written == len(b) {
		return nil
	}
	return b[written:]
}

// idle lifts the write deadline, unless the sink was aborted (see
// directConn).
func (s *httpSink) idle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil && !s.aborted.Load() {
		_ = s.conn.SetWriteDeadline(time.Time{})
	}
}

// errAborted is the error of writes after abort.
var errAborted = errors.New("sse: stream aborted")

// write queues b for the next flush (b is not changed until then: frames
// are shared and never changed).
func (s *httpSink) write(b []byte) error {
	if s.conn == nil {
		_, err := s.w.Write(b)
		return err
	}
	s.pending = append(s.pending, b)
	return nil
}

func (s *httpSink) flush() error {
	if s.conn == nil {
		return s.rc.Flush()
	}
	out := s.pending // WriteTo consumes the copy; pending keeps its array
	_, err := out.WriteTo(s.conn)
	clear(s.pending) // drop the frames' references
	s.pending = s.pending[:0]
	return err
}

func isUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}
