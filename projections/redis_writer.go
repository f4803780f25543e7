package projections

import (
	"context"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Bounds of a Redis read model's writer.
const (
	// redisWriteBatch is how many scripts go in one pipeline.
	redisWriteBatch = 256
	// redisMaxPending is how many applications may wait; more are dropped,
	// which is a gap the model finds (and is rebuilt after).
	redisMaxPending = 16384
)

// redisWrite is one run of the apply script.
type redisWrite struct {
	args     []any
	position int64
}

// redisWriter sends a Redis read model's applications to Redis in the order
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
type redisWriter struct {
	m *redisModel

	mu       sync.Mutex
	pending  []redisWrite
	running  bool
	idle     chan struct{} // closed while nothing is pending or being sent
	dropping bool
}

func newRedisWriter(m *redisModel) *redisWriter {
	idle := make(chan struct{})
	close(idle)
	return &redisWriter{m: m, idle: idle}
}

// add queues x, and starts the sending goroutine if it is not running.
func (w *redisWriter) add(x redisWrite) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) >= redisMaxPending {
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

func (w *redisWriter) run() {
	for {
		w.mu.Lock()
		n := min(len(w.pending), redisWriteBatch)
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
func (w *redisWriter) send(batch []redisWrite) {
	m := w.m
	c := m.rm.client()
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisApplyTimeout)
	defer cancel()
	keys := []string{m.meta()}
	run := func() ([]*redis.Cmd, error) {
		pipe := c.Pipeline()
		cmds := make([]*redis.Cmd, len(batch))
		for i, x := range batch {
			cmds[i] = applyScript.EvalSha(ctx, pipe, keys, x.args...)
		}
		_, err := pipe.Exec(ctx)
		return cmds, err
	}
	cmds, err := run()
	if isNoScript(err) {
		// Redis restarted (or flushed its scripts): load it and send again;
		// what was applied is skipped.
		if err = applyScript.Load(ctx, c).Err(); err == nil {
			cmds, err = run()
		}
	}
	if err != nil {
		m.rm.failed(ctx, "apply "+m.name, err)
		return
	}
	for i, cmd := range cmds {
		switch res, _ := cmd.Text(); res {
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
func (w *redisWriter) flush(ctx context.Context) error {
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
func (rm *RedisReadModels) Flush(ctx context.Context) error {
	for _, m := range rm.models() {
		if err := m.writer.flush(ctx); err != nil {
			return err
		}
	}
	return nil
}

func isNoScript(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") }
