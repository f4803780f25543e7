package logging

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// bufferSize is how much log output is held between two writes.
const bufferSize = 64 << 10

// buffered holds log output and writes it in one system call at most an
// interval after the first record it holds, rather than one per record:
// under load an instance logs a line per request, and writing each alone
// costs more than formatting it. Nothing runs while nothing is held.
type buffered struct {
	interval time.Duration

	mu      sync.Mutex
	w       *bufio.Writer
	pending *time.Timer // the flush of what is held; nil when nothing is
	closed  bool        // every write goes out at once
}

func newBuffered(out io.Writer, interval time.Duration) *buffered {
	return &buffered{interval: interval, w: bufio.NewWriterSize(out, bufferSize)}
}

// Write holds p (a record larger than what is left of the buffer writes
// what is held first) and schedules the flush of what it holds.
func (b *buffered) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.w.Write(p)
	switch {
	case err != nil || b.w.Buffered() == 0:
	case b.closed:
		err = b.flushLocked()
	case b.pending == nil:
		b.pending = time.AfterFunc(b.interval, func() { _ = b.Flush() })
	}
	return n, err
}

// Flush writes what is held.
func (b *buffered) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked()
}

func (b *buffered) flushLocked() error {
	if b.pending != nil {
		b.pending.Stop()
		b.pending = nil
	}
	return b.w.Flush()
}

// Close writes what is held; later records are written as they come. The
// output stays open.
func (b *buffered) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return b.flushLocked()
}

// flushing is a handler that writes the held output at once after a
// warning or an error: what matters most is never left waiting in a
// buffer, and is not lost with it if the process dies.
type flushing struct {
	slog.Handler
	flush func()
}

func (h flushing) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		h.flush()
	}
	return err
}

func (h flushing) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushing{h.Handler.WithAttrs(attrs), h.flush}
}

func (h flushing) WithGroup(name string) slog.Handler {
	return flushing{h.Handler.WithGroup(name), h.flush}
}
