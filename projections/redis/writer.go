package redis

import (
	"context"
	"sync"
)

// Bounds of a Redis read model's writer.
const (
	// writeBatch is how many scripts go in one pipeline.
	writeBatch = 256
	// maxPending is how many applications may wait; more are dropped,
	// which is a gap the model finds (and is rebuilt after).
	maxPending = 16384
)

// write is one run of the apply script.
type write struct {
	args     []any
	position int64
}

// writer sends a Redis read model's applications to Redis in the order
// its consumer group handed them over, in pipelines, from a goroutine that
// runs while there is something to send.
//
// It keeps the network out of the consumer group's transaction: that
// transaction holds a transaction id, and every gap-safe reader of the log
// (the other groups, live streams) stops below the oldest one running, so a
// Redis round trip there would delay them all. The writer may send an event
// before the transaction that handed it over commits, or send it twice when
// the group delivers it again: both are harmless, since the event is in the
// log already and the script skips what the model has applied. What the
// writer loses (Redis failing, too much pending, the process ending before
// a Flush) is a gap that the model's next event finds; the model is then
// rebuilt, and queries use SQL until it is live again.
type writer struct {
	m *model

	mu       sync.Mutex
	pending  []write
	running  bool
	idle     chan struct{} // closed while nothing is pending or being sent
	dropping bool
}

func newWriter(m *model) *writer {
	idle := make(chan struct{})
	close(idle)
	return &writer{m: m, idle: idle}
}

// add queues x, and starts the sending goroutine if it is not running.
func (w *writer) add(x write) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) >= maxPending {
		if !w.dropping {
			w.dropping = true
			w.m.rm.logger.Warn("redis read model falls behind; events are dropped and the model will be rebuilt",
				"model", w.m.group, "pending", len(w.pending), "position", x.position)
		}
		return
	}
	w.pending = append(w.pending, x)
	if !w.running {
		w.running = true
		w.idle = make(chan struct{})
		go w.run()
	}
}

func (w *writer) run() {
	for {
		w.mu.Lock()
		n := min(len(w.pending), writeBatch)
		if n == 0 {
			w.running, w.dropping, w.pending = false, false, nil
			close(w.idle)
			w.mu.Unlock()
			return
		}
		// Appends go after len(w.pending): batch is not written to.
		batch := w.pending[:n:n]
		w.pending = w.pending[n:]
		w.mu.Unlock()
		w.send(batch)
	}
}

// send runs the batch's scripts in one pipeline.
func (w *writer) send(batch []write) {
	m := w.m
	c := m.rm.client()
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), applyTimeout)
	defer cancel()
	args := make([][]any, len(batch))
	for i, x := range batch {
		args[i] = x.args
	}
	results, err := apply(ctx, c, m.meta(), args)
	if err != nil {
		m.rm.failed(ctx, "apply "+m.name, err)
		return
	}
	for i, res := range results {
		switch res {
		case "gap":
			m.rm.logger.Warn("redis read model missed events; it is stale until rebuilt", "model", m.group, "position", batch[i].position)
			m.poke()
		case "skipped", "foreign":
			m.poke()
		}
	}
}

// flush waits until everything added before it was called has been sent
// (or given up), or ctx ends.
func (w *writer) flush(ctx context.Context) error {
	w.mu.Lock()
	idle := w.idle
	w.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Flush waits until every event handed to the Redis read models so far has
// been sent to Redis (or given up), or ctx ends. Call it after the consumer
// groups have stopped, so that an orderly shutdown leaves no gap.
func (rm *ReadModels) Flush(ctx context.Context) error {
	for _, m := range rm.models() {
		if err := m.writer.flush(ctx); err != nil {
			return err
		}
	}
	return nil
}
