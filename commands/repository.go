package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/eventstore"
)

// EventStore is what command handlers need from the event store.
type EventStore interface {
	Append(ctx context.Context, stream eventstore.Stream, expectedVersion int, events []eventstore.NewEvent,
		md eventstore.Metadata, opts ...eventstore.AppendOption) (eventstore.AppendResult, error)
	ReadStream(ctx context.Context, streamID string, afterVersion int) ([]eventstore.Event, error)
	// FirstEvent returns a stream's first event, and false when the stream
	// does not exist.
	FirstEvent(ctx context.Context, streamID string) (eventstore.Event, bool, error)
	ReadStreams(ctx context.Context, tails []eventstore.StreamTail) (map[string][]eventstore.Event, error)
	ClaimOwner(ctx context.Context, c eventstore.Claim) (string, error)
}

// aggregate is what the repository needs from every domain aggregate.
type aggregate interface {
	Apply(domain.Event)
	Version() int
	Pending() []domain.Event
	ClearPending()
}

// decodeFunc turns a stored event back into a domain event (upcasting old
// schema versions).
type decodeFunc func(eventType string, schemaVersion int, data []byte) (domain.Event, error)

// repository loads and changes aggregates of one type.
//
// Every change goes through update, which gives each stream one writer in
// this instance: the commands on a stream queue behind each other, and the
// stream's aggregate — kept in memory between commands — decides them in
// order. Commands that arrive together are decided one after the other on
// the same aggregate and their events go out in one append. Across
// instances the expected version of the append detects another writer; the
// commands are then decided again on the stream's new state, for as long as
// their contexts allow. A command therefore fails only when its own rule
// fails on the latest state, never because someone else wrote first.
//
// Reads that change nothing (load, release) take a separate cached copy and
// bring it up to date with the stream's tail.
type repository[T aggregate] struct {
	store      EventStore
	streamType string
	streamID   func(id string) string
	newEmpty   func() T
	decode     decodeFunc
	cache      *aggregateCache[T] // copies for reads
	writers    *writers[T]
}

func newRepository[T aggregate](store EventStore, streamType string, streamID func(string) string,
	newEmpty func() T, decode decodeFunc) *repository[T] {
	return &repository[T]{store: store, streamType: streamType, streamID: streamID,
		newEmpty: newEmpty, decode: decode, cache: newAggregateCache[T](10_000),
		writers: newWriters[T](10_000)}
}

// decideFunc checks a command's rules on an aggregate and records its events
// there. It may run more than once — again on a newer state when another
// instance wrote first — so it must change nothing but the aggregate and
// the caller's own result variables, and return an error only for a rule
// the command breaks (that error is the command's answer).
type decideFunc[T any] func(T) error

// job is one command waiting for its stream's writer.
type job[T any] struct {
	ctx    context.Context
	decide decideFunc[T]
	// fresh, when set, is a new aggregate holding the events of a creation:
	// the stream must not exist yet.
	fresh    *T
	maySkip  bool // the stream may be missing: decide sees an empty aggregate
	md       eventstore.Metadata
	opts     []eventstore.AppendOption
	alone    bool // appended on its own: claims or an idempotency key
	recorded int  // events decided in the current round
	// guard, when set, is the other stream's version the command was
	// decided on (see updateIf).
	guard eventstore.Guard

	result Written
	err    error
	done   chan struct{}
}

// update runs decide on the current state of the aggregate id and appends
// the events it records, as described on repository. It fails with
// CodeNotFound when the stream is empty, with decide's error when a rule is
// broken on the latest state, and with the context's error when the
// caller gives up.
func (r *repository[T]) update(ctx context.Context, id string, decide decideFunc[T], opts ...eventstore.AppendOption) (Written, error) {
	return r.submit(ctx, id, &job[T]{decide: decide, opts: opts})
}

// updateIf is update for a command decided on another stream as of a
// version — authorized on a workspace's members, say — without reading that
// stream: its events are appended only if the other stream is still at that
// version, checked by the statement that appends them. It fails with
// eventstore.ErrGuardChanged when the other stream has moved on; the caller
// then reads it and decides again. Commands of one guard, and unguarded
// ones, still share their stream's appends.
func (r *repository[T]) updateIf(ctx context.Context, id string, guard eventstore.Guard, decide decideFunc[T], opts ...eventstore.AppendOption) (Written, error) {
	return r.submit(ctx, id, &job[T]{decide: decide, guard: guard, opts: opts})
}

// upsert is update for a stream that may not exist yet: decide then sees an
// empty aggregate (version 0).
func (r *repository[T]) upsert(ctx context.Context, id string, decide decideFunc[T], opts ...eventstore.AppendOption) (Written, error) {
	return r.submit(ctx, id, &job[T]{decide: decide, maySkip: true, opts: opts})
}

// create appends the events of a new aggregate, whose stream must not exist;
// a stream that exists already fails with eventstore.ErrConcurrency.
func (r *repository[T]) create(ctx context.Context, id string, agg T, opts ...eventstore.AppendOption) (Written, error) {
	return r.submit(ctx, id, &job[T]{fresh: &agg, opts: opts})
}

func (r *repository[T]) submit(ctx context.Context, id string, j *job[T]) (Written, error) {
	j.alone = j.fresh != nil || len(j.opts) > 0
	w := r.queue(id, []context.Context{ctx}, []*job[T]{j})
	return r.await(ctx, w, j)
}

// queue gives each job its context (and the metadata it carries), queues
// the jobs, in order, on the stream's writer and starts the writer when it
// is idle.
func (r *repository[T]) queue(id string, ctxs []context.Context, jobs []*job[T]) *writer[T] {
	for i, j := range jobs {
		j.ctx, j.md, j.done = ctxs[i], metadataFrom(ctxs[i]), make(chan struct{})
	}
	w, start := r.writers.enqueue(r.streamID(id), jobs...)
	if start {
		go r.write(id, w)
	}
	return w
}

// updateEach is update for several commands on one stream, each with its
// own context (and so its own metadata), queued together and in order:
// they are decided in that order and their events go out together — one
// append, one round trip, where one after the other took one each. Each
// gets its own outcome, as from update.
func (r *repository[T]) updateEach(ctxs []context.Context, id string, decides []decideFunc[T]) ([]Written, []error) {
	jobs := make([]*job[T], len(decides))
	for i, decide := range decides {
		jobs[i] = &job[T]{decide: decide}
	}
	w := r.queue(id, ctxs, jobs)
	written, errs := make([]Written, len(jobs)), make([]error, len(jobs))
	for i, j := range jobs {
		written[i], errs[i] = r.await(ctxs[i], w, j)
	}
	return written, errs
}

// await returns j's outcome, or the context's error when the caller gives
// up while j is still queued.
func (r *repository[T]) await(ctx context.Context, w *writer[T], j *job[T]) (Written, error) {
	select {
	case <-j.done:
		return j.result, j.err
	case <-ctx.Done():
		if r.writers.remove(w, j) {
			return Written{}, ctx.Err()
		}
		// Already being decided or appended: its outcome is the truth.
		<-j.done
		return j.result, j.err
	}
}

// write is the stream's writer: it takes the queued commands, decides them
// and appends their events until the queue is empty.
func (r *repository[T]) write(id string, w *writer[T]) {
	for {
		round := r.writers.next(w)
		if round == nil {
			return
		}
		r.decideAndAppend(id, w, round)
	}
}

// decideAndAppend runs one round: the jobs decide in order on the writer's
// aggregate and their events go out in one append; on a clash with another
// instance the round is decided again on the stream's new state.
func (r *repository[T]) decideAndAppend(id string, w *writer[T], round []*job[T]) {
	streamID := r.streamID(id)
	ctx, stop := roundContext(round)
	defer stop()
	// fresh: the aggregate is known to be up to date in this round, so
	// that a refusal is the truth rather than a stale cache's opinion.
	// Success needs no such care: the append's expected version proves it.
	fresh := false
	for {
		round = unfinished(round)
		if len(round) == 0 {
			return
		}
		if round[0].fresh != nil {
			r.createRound(w, round[0])
			continue
		}
		if w.agg == nil {
			agg, err := r.rebuild(ctx, id)
			if err != nil {
				finishAll(round, err)
				return
			}
			w.agg, fresh = &agg, true
		}
		agg := *w.agg
		base := agg.Version()
		restart := false
		for _, j := range round {
			before := len(agg.Pending())
			var err error
			if agg.Version() == 0 && !j.maySkip {
				err = domain.Errorf(domain.CodeNotFound, "%s not found", r.streamType)
			} else {
				err = j.decide(agg)
			}
			j.recorded = len(agg.Pending()) - before
			if err == nil {
				continue
			}
			if fresh {
				j.finish(Written{}, err) // refused on the latest state: final
				if j.recorded == 0 {
					continue
				}
			}
			// A refusal on a cached state may be stale, and events recorded
			// before a refusal cannot be taken back: start over.
			restart = true
			break
		}
		if restart {
			if !fresh && len(agg.Pending()) == 0 {
				// Nothing recorded: only the stream's tail is missing.
				if err := r.refresh(ctx, w); err != nil {
					finishAll(unfinished(round), err)
					return
				}
			} else {
				w.agg = nil // rebuilt from the stream on the next pass
			}
			fresh = w.agg != nil
			continue
		}
		round = pendingJobs(round)
		pending := agg.Pending()
		if len(pending) == 0 {
			r.answer(round, base, eventstore.AppendResult{})
			return
		}
		events, err := r.encode(round, pending)
		if err != nil {
			w.agg = nil
			finishAll(unfinished(round), err)
			return
		}
		appendCtx := ctx
		var opts []eventstore.AppendOption
		if round[0].alone {
			appendCtx, opts = round[0].ctx, round[0].opts
		}
		if guard, ok := roundGuard(round); ok {
			opts = append(opts[:len(opts):len(opts)], eventstore.WithGuard(guard))
		}
		res, err := r.store.Append(appendCtx, eventstore.Stream{ID: streamID, Type: r.streamType}, base, events, eventstore.Metadata{}, opts...)
		if errors.Is(err, eventstore.ErrConcurrency) {
			// Another instance wrote first: decide again on what it wrote.
			w.agg, fresh = nil, false
			continue
		}
		if errors.Is(err, eventstore.ErrGuardChanged) {
			// The guarded commands were decided on an old state of another
			// stream: their callers decide them again on its new state. The
			// others are decided again here, on an aggregate without the
			// events that were not written.
			w.agg, fresh = nil, false
			for _, j := range round {
				if j.guard != (eventstore.Guard{}) {
					j.finish(Written{}, err)
				}
			}
			continue
		}
		if err != nil {
			w.agg = nil
			if !errors.Is(err, eventstore.ErrClaimed) && !errors.Is(err, eventstore.ErrIdempotencyKeyUsed) {
				err = fmt.Errorf("append to %s: %w", streamID, err)
			}
			finishAll(unfinished(round), err)
			return
		}
		agg.ClearPending()
		r.answer(round, base, res)
		return
	}
}

// roundGuard returns the guard of a round's guarded commands, which all
// share one (see writers.next).
func roundGuard[T any](round []*job[T]) (eventstore.Guard, bool) {
	for _, j := range round {
		if j.guard != (eventstore.Guard{}) {
			return j.guard, true
		}
	}
	return eventstore.Guard{}, false
}

// createRound appends a new aggregate's events with NoStream expected: the
// unique stream version refuses a stream that exists already.
func (r *repository[T]) createRound(w *writer[T], j *job[T]) {
	agg := *j.fresh
	if w.agg != nil && (*w.agg).Version() != 0 {
		j.finish(Written{}, eventstore.ErrConcurrency)
		return
	}
	pending := agg.Pending()
	j.recorded = len(pending)
	events, err := r.encode([]*job[T]{j}, pending)
	if err != nil {
		j.finish(Written{}, err)
		return
	}
	res, err := r.store.Append(j.ctx, eventstore.Stream{ID: w.streamID, Type: r.streamType}, eventstore.NoStream, events, eventstore.Metadata{}, j.opts...)
	if err != nil {
		if !errors.Is(err, eventstore.ErrConcurrency) && !errors.Is(err, eventstore.ErrClaimed) && !errors.Is(err, eventstore.ErrIdempotencyKeyUsed) {
			err = fmt.Errorf("create %s: %w", r.streamType, err)
		}
		w.agg = nil
		j.finish(Written{}, err)
		return
	}
	agg.ClearPending()
	w.agg = &agg
	j.finish(written(res, agg.Version()), nil)
}

// answer gives each job of a successful round its share of the append.
func (r *repository[T]) answer(round []*job[T], base int, res eventstore.AppendResult) {
	off := 0
	for _, j := range round {
		w := Written{Version: base + off + j.recorded}
		if j.recorded > 0 {
			w.Events = res.Events[off : off+j.recorded]
			w.Position = w.Events[len(w.Events)-1].GlobalPosition
		}
		off += j.recorded
		j.finish(w, nil)
	}
}

// encode turns the round's pending domain events into events to append,
// each with the metadata of the command that recorded it.
func (r *repository[T]) encode(round []*job[T], pending []domain.Event) ([]eventstore.NewEvent, error) {
	events := make([]eventstore.NewEvent, 0, len(pending))
	k := 0
	for _, j := range round {
		md := j.md
		for range j.recorded {
			e := pending[k]
			k++
			data, err := json.Marshal(e)
			if err != nil {
				return nil, fmt.Errorf("encode %s: %w", e.EventType(), err)
			}
			events = append(events, eventstore.NewEvent{ID: newID(), Type: e.EventType(),
				SchemaVersion: domain.SchemaVersion(e), Data: data, Metadata: &md})
		}
	}
	return events, nil
}

// rebuild reads the whole stream into a new aggregate (version 0 when the
// stream is empty).
func (r *repository[T]) rebuild(ctx context.Context, id string) (T, error) {
	agg := r.newEmpty()
	events, err := r.store.ReadStream(ctx, r.streamID(id), 0)
	if err != nil {
		return agg, fmt.Errorf("load %s: %w", r.streamID(id), err)
	}
	if err := r.apply(agg, events); err != nil {
		return agg, err
	}
	return agg, nil
}

// refresh brings the writer's aggregate, which holds no pending events, up
// to date with its stream's tail.
func (r *repository[T]) refresh(ctx context.Context, w *writer[T]) error {
	agg := *w.agg
	events, err := r.store.ReadStream(ctx, w.streamID, agg.Version())
	if err == nil {
		err = r.apply(agg, events)
	}
	if err != nil {
		w.agg = nil
		return fmt.Errorf("load %s: %w", w.streamID, err)
	}
	return nil
}

func (r *repository[T]) apply(agg T, events []eventstore.Event) error {
	for _, e := range events {
		de, err := r.decode(e.Type, e.SchemaVersion, e.Data)
		if err != nil {
			return fmt.Errorf("load %s version %d: %w", e.StreamID, e.StreamVersion, err)
		}
		agg.Apply(de)
	}
	return nil
}

// roundContext is the context of a round's reads and append: it ends when
// every job's context has ended, so that one caller giving up does not fail
// the others.
func roundContext[T any](round []*job[T]) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(round[0].ctx))
	left := atomic.Int64{}
	left.Store(int64(len(round)))
	stops := make([]func() bool, len(round))
	for i, j := range round {
		stops[i] = context.AfterFunc(j.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// unfinished drops the jobs already answered, and answers those whose
// context has ended.
func unfinished[T any](round []*job[T]) []*job[T] {
	out := round[:0:0]
	for _, j := range round {
		select {
		case <-j.done:
			continue
		default:
		}
		if err := j.ctx.Err(); err != nil {
			j.finish(Written{}, err)
			continue
		}
		out = append(out, j)
	}
	return out
}

// pendingJobs drops the jobs already answered (refused, recording nothing).
func pendingJobs[T any](round []*job[T]) []*job[T] {
	out := round[:0:0]
	for _, j := range round {
		select {
		case <-j.done:
		default:
			out = append(out, j)
		}
	}
	return out
}

func finishAll[T any](round []*job[T], err error) {
	for _, j := range round {
		j.finish(Written{}, err)
	}
}

func (j *job[T]) finish(w Written, err error) {
	j.result, j.err = w, err
	close(j.done)
}

// writers holds the writer of every stream that was recently changed.
type writers[T any] struct {
	mu  sync.Mutex
	max int
	m   map[string]*writer[T]
}

// writer is one stream's queue of commands and its aggregate, which only
// the stream's writer goroutine touches while running is set.
type writer[T any] struct {
	streamID string
	queue    []*job[T]
	running  bool
	agg      *T
}

// roundSize bounds the commands decided in one round (one append).
const roundSize = 256

func newWriters[T any](max int) *writers[T] {
	return &writers[T]{max: max, m: make(map[string]*writer[T])}
}

// enqueue queues jobs, in order, on the writer of streamID and returns that
// writer, and whether the caller must start it.
func (ws *writers[T]) enqueue(streamID string, jobs ...*job[T]) (*writer[T], bool) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	w, ok := ws.m[streamID]
	if !ok {
		if len(ws.m) >= ws.max {
			ws.evictLocked()
		}
		w = &writer[T]{streamID: streamID}
		ws.m[streamID] = w
	}
	w.queue = append(w.queue, jobs...)
	if w.running {
		return w, false
	}
	w.running = true
	return w, true
}

// remove takes j out of w's queue, reporting whether it was still there.
func (ws *writers[T]) remove(w *writer[T], j *job[T]) bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	i := slices.Index(w.queue, j)
	if i < 0 {
		return false
	}
	w.queue = slices.Delete(w.queue, i, i+1)
	return true
}

// evictLocked forgets idle writers (and their aggregates) to make room.
func (ws *writers[T]) evictLocked() {
	n := 0
	for k, w := range ws.m {
		if !w.running {
			delete(ws.m, k)
			if n++; n >= ws.max/10+1 {
				return
			}
		}
	}
}

// next takes the writer's next round: the queued commands that can share
// one append — with one guard at most — or one that must be appended
// alone. It returns nil, and stops the writer, when the queue is empty.
func (ws *writers[T]) next(w *writer[T]) []*job[T] {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if len(w.queue) == 0 {
		w.running = false
		return nil
	}
	n := 1
	if !w.queue[0].alone {
		guard := w.queue[0].guard
		for n < len(w.queue) && n < roundSize && !w.queue[n].alone {
			if g := w.queue[n].guard; g != (eventstore.Guard{}) {
				if guard != (eventstore.Guard{}) && g != guard {
					break
				}
				guard = g
			}
			n++
		}
	}
	round := make([]*job[T], n)
	copy(round, w.queue)
	w.queue = append(w.queue[:0], w.queue[n:]...)
	return round
}

// load returns a copy of the aggregate with the given id, up to date with
// its stream, or a CodeNotFound error when its stream is empty. It is for
// reads: the caller owns the copy and gives it back through release.
func (r *repository[T]) load(ctx context.Context, id string) (T, error) {
	var zero T
	agg, ok := r.cache.take(r.streamID(id))
	if !ok {
		agg = r.newEmpty()
	}
	events, err := r.store.ReadStream(ctx, r.streamID(id), agg.Version())
	if err == nil {
		err = r.apply(agg, events)
	}
	if err != nil {
		return zero, fmt.Errorf("load %s: %w", r.streamID(id), err)
	}
	if agg.Version() == 0 {
		return zero, domain.Errorf(domain.CodeNotFound, "%s not found", r.streamType)
	}
	return agg, nil
}

// release returns a copy taken by load, unchanged, to the cache.
func (r *repository[T]) release(id string, agg T) {
	if len(agg.Pending()) == 0 {
		r.cache.put(r.streamID(id), agg)
	}
}

// newID returns a new time-ordered UUID (version 7).
func newID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// aggregateCache is a bounded map of aggregates that readers take out while
// they use them, so that no two readers ever share one.
type aggregateCache[T any] struct {
	mu  sync.Mutex
	max int
	m   map[string]T
}

func newAggregateCache[T any](max int) *aggregateCache[T] {
	return &aggregateCache[T]{max: max, m: make(map[string]T)}
}

// take removes and returns the cached aggregate of key; false means there
// is none (the caller builds it from the stream).
func (c *aggregateCache[T]) take(key string) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	if ok {
		delete(c.m, key)
	}
	return v, ok
}

// peek calls fn with the cached value of key, if there is one, without
// taking it.
func (c *aggregateCache[T]) peek(key string, fn func(T)) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	if ok {
		fn(v)
	}
	return ok
}

// put caches v as the value of key.
func (c *aggregateCache[T]) put(key string, v T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok && len(c.m) >= c.max {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[key] = v
}
