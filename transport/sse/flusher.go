package sse

import (
	"bytes"
	"runtime"
	"sync"
	"time"
)

// Direct writes: the frames of a live stream whose connection this process
// holds (HTTP/1.1, plain TCP) are written by the hub's flusher, one
// goroutine for every such stream, rather than by the stream's own.
//
// A stream's goroutine wakes for each write it makes and sleeps on a timer
// between two (Config.FlushInterval): at 200 busy watchers that is 40,000
// goroutine switches a second, and each woken writer waits in the
// scheduler's run queue ahead of the request handlers whose commands have
// just committed. The flusher makes one pass over the streams that have
// frames, writes each with one non-blocking system call, and lingers
// FlushInterval before its next pass: the same writes, no switches, and a
// short run queue.
//
// A write the socket does not take at once (a client that reads slowly, or
// has gone) is handed back to the stream's goroutine, which writes the rest
// with a deadline, as every stream did before, and returns the stream to
// the flusher once it has caught up. Everything else a stream writes — the
// replay of what it missed, heartbeats, its last frame — is the goroutine's
// too; a stream's mutex keeps the two writers' bytes apart.

// directConn is a connection that can be written without waiting.
type directConn interface {
	// tryWrite writes what the connection takes of b at once and returns
	// the rest (nil when it took everything, b itself when the connection
	// is gone or refuses).
	tryWrite(b []byte) (rest []byte)
	// idle lifts the deadline of the last blocking write, unless the
	// stream was aborted: a deadline past would refuse the next tryWrite.
	idle()
}

// flushYield is how many streams the flusher writes before it lets other
// goroutines run.
const flushYield = 32

// flusher writes the frames of streams in direct mode.
type flusher struct {
	hub      *Hub
	interval time.Duration

	mu      sync.Mutex
	dirty   []*subscriber
	running bool

	// Owned by the running pass.
	spare []*subscriber
	buf   bytes.Buffer
}

// mark tells the flusher that s has frames to write. The first mark after
// an idle time starts a pass at once; later ones wait for the next pass.
func (f *flusher) mark(s *subscriber) {
	if s.marked.Swap(true) {
		return
	}
	f.mu.Lock()
	f.dirty = append(f.dirty, s)
	start := !f.running
	f.running = true
	f.mu.Unlock()
	if start {
		go f.run()
	}
}

// run makes passes until a linger ends with nothing to write.
func (f *flusher) run() {
	for {
		f.mu.Lock()
		if len(f.dirty) == 0 {
			f.running = false
			f.mu.Unlock()
			return
		}
		batch := f.dirty
		f.dirty = f.spare[:0]
		f.mu.Unlock()

		start := time.Now()
		for i, s := range batch {
			// Cleared before the frames are taken: a frame added after
			// the take marks the stream again, for the next pass.
			s.marked.Store(false)
			f.write(s)
			if i%flushYield == flushYield-1 {
				runtime.Gosched()
			}
		}
		clear(batch)
		f.spare = batch
		if d := f.interval - time.Since(start); d > 0 {
			time.Sleep(d)
		}
	}
}

// write writes the waiting frames of s, unless its goroutine is writing
// (then s waits for the next pass) or has taken the stream back (then the
// goroutine writes them).
func (f *flusher) write(s *subscriber) {
	if !s.writeMu.TryLock() {
		if s.live.Load() {
			f.mark(s) // a heartbeat or a last frame: next pass
		}
		return // otherwise the goroutine has the stream, and was woken
	}
	defer s.writeMu.Unlock()
	if !s.live.Load() {
		s.pending.wake()
		return
	}
	frames := s.pending.take()
	defer s.pending.recycle(frames)
	f.buf.Reset()
	n := 0
	for _, fr := range frames {
		if s.replayed(fr) {
			continue // the replay wrote it
		}
		f.buf.Write(fr.data)
		n++
	}
	if n == 0 {
		return
	}
	if rest := s.direct.tryWrite(f.buf.Bytes()); rest != nil {
		// The goroutine writes the rest, with a deadline, and counts
		// the frames once it has.
		s.leftover, s.leftoverFrames = bytes.Clone(rest), n
		s.live.Store(false)
		s.pending.wake()
	} else {
		f.hub.metrics.SSEFramesSent(n)
	}
	if f.buf.Cap() > maxFlushBuffer {
		f.buf = bytes.Buffer{}
	}
}

// maxFlushBuffer is the largest buffer the flusher keeps between passes.
const maxFlushBuffer = 1 << 20
