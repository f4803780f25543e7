package sse

import (
	"bytes"
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engramhq/engram/eventstore"
)

// directSink is a connection that can be written both ways: through the
// sink calls of a stream's goroutine, and directly by the flusher. Both
// land in one byte log, as on a socket.
type directSink struct {
	mu      sync.Mutex
	log     bytes.Buffer
	pending bytes.Buffer
	// limit, when ≥ 0, is how many bytes the next direct write takes.
	limit    int
	direct   int // direct writes that took everything
	cut      int // direct writes taken in part
	afterCut int // writes of the goroutine after a cut
}

func newDirectSink() *directSink { return &directSink{limit: -1} }

func (d *directSink) begin() error { return nil }

func (d *directSink) write(b []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pending.Write(b)
	return nil
}

func (d *directSink) flush() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.log.Write(d.pending.Bytes())
	d.pending.Reset()
	if d.cut > 0 {
		d.afterCut++
	}
	return nil
}

func (d *directSink) tryWrite(b []byte) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.limit < 0 || d.limit >= len(b) {
		d.log.Write(b)
		d.direct++
		return nil
	}
	d.log.Write(b[:d.limit])
	rest := b[d.limit:]
	d.limit = -1
	d.cut++
	return rest
}

func (d *directSink) idle() {}

// takeOnly makes the next direct write take n bytes only.
func (d *directSink) takeOnly(n int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.limit = n
}

// names returns the labels of the complete frames written so far (see
// frameLabel).
func (d *directSink) names() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := []string{}
	for _, f := range strings.SplitAfter(d.log.String(), "\n\n") {
		if strings.HasSuffix(f, "\n\n") {
			out = append(out, frameLabel(f))
		}
	}
	return out
}

// A stream whose connection can be written without waiting is written by
// the flusher. A direct write the connection takes only in part (here, in
// the middle of a frame) goes on from where it stopped in the stream's
// goroutine, and the stream then returns to the flusher: the client
// receives every frame once, in order.
func TestFlusherWritesLiveStreamsAndHandsBackWhatTheSocketRefuses(t *testing.T) {
	w := newWorld()
	h, m := newTestHub(t, w.log, Config{FlushInterval: time.Millisecond}, nil)
	handle(t, h, w.c1c)
	s := subscribe(t, h, w.ada, scope{kind: scopeConversation, id: w.c1, workspaceID: w.w})
	out := newDirectSink()
	s.direct = out
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.run(context.Background(), s, nil, out, time.Time{})
	}()
	waitFrames := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); len(out.names()) < n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("stream = %v, want %d frames", out.names(), n)
			}
		}
	}
	waitFrames(1) // retry:, written by the goroutine, which then hands the stream over
	for deadline := time.Now().Add(5 * time.Second); !s.live.Load(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the stream was not handed to the flusher")
		}
	}

	var posted []eventstore.Event
	post := func(n int) {
		for range n {
			e := w.post(w.c1, "message "+strconv.Itoa(len(posted)))
			posted = append(posted, e)
			handle(t, h, e)
		}
		waitFrames(1 + len(posted))
	}
	post(5)
	out.takeOnly(25)
	post(5)
	for deadline := time.Now().Add(5 * time.Second); !s.live.Load(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the stream did not return to the flusher after the rest was written")
		}
	}
	post(5)
	h.end(s, nil)
	<-done

	if got, want := out.names(), append([]string{"retry"}, ids(posted...)...); !slices.Equal(got, want) {
		t.Fatalf("stream = %v, want %v", got, want)
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	if out.cut != 1 || out.afterCut == 0 {
		t.Errorf("cut writes %d, goroutine writes after the cut %d: want 1 and some", out.cut, out.afterCut)
	}
	if out.direct < 2 {
		t.Errorf("%d whole direct writes, want some before and after the cut", out.direct)
	}
	if got := m.frames.Load(); got != int64(len(posted)) {
		t.Errorf("frames counted = %d, want %d", got, len(posted))
	}
}

// A stream whose connection cannot be written directly (HTTP/2, TLS, or a
// platform without it) is written by its goroutine, as before.
func TestFlusherLeavesOtherStreamsToTheirGoroutine(t *testing.T) {
	w := newWorld()
	h, _ := newTestHub(t, w.log, Config{FlushInterval: time.Millisecond}, nil)
	handle(t, h, w.c1c)
	s := subscribe(t, h, w.ada, scope{kind: scopeConversation, id: w.c1, workspaceID: w.w})
	out := &memorySink{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.run(context.Background(), s, nil, out, time.Time{})
	}()
	e := w.post(w.c1, "hello")
	handle(t, h, e)
	for deadline := time.Now().Add(5 * time.Second); len(out.names()) < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("stream = %v", out.names())
		}
	}
	if s.live.Load() {
		t.Error("a stream without a direct connection went to the flusher")
	}
	h.end(s, nil)
	<-done
	if got, want := out.names(), []string{"retry", ids(e)[0]}; !slices.Equal(got, want) {
		t.Errorf("stream = %v, want %v", got, want)
	}
}
