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

// buffered holds log output and writes it in one system call at most every
// interval, rather than one per record: under load an instance logs a line
// per request, and writing each alone costs more than formatting it.
type buffered struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

func newBuffered(out io.Writer, interval time.Duration) *buffered {
	b := &buffered{w: bufio.NewWriterSize(out, bufferSize),
		stop: make(chan struct{}), done: make(chan struct{})}
	go b.flushEvery(interval)
	return b
}

// Write holds p; a record larger than what is left of the buffer writes
// what is held first.
func (b *buffered) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Write(p)
}

// Flush writes what is held.
func (b *buffered) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Flush()
}

func (b *buffered) flushEvery(interval time.Duration) {
	defer close(b.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = b.Flush()
		case <-b.stop:
			return
		}
	}
}

// Close stops the flushing and writes what is held; the output stays open.
func (b *buffered) Close() error {
	close(b.stop)
	<-b.done
	return b.Flush()
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
