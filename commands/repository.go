package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/eventstore"
)

// EventStore is what command handlers need from the event store.
type EventStore interface {
	Append(ctx context.Context, stream eventstore.Stream, expectedVersion int, events []eventstore.NewEvent,
		md eventstore.Metadata, opts ...eventstore.AppendOption) (eventstore.AppendResult, error)
	ReadStream(ctx context.Context, streamID string, afterVersion int) ([]eventstore.Event, error)
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

// repository loads and saves aggregates of one type. It keeps recently used
// aggregates in memory: a load takes the cached aggregate (if any) and reads
// only the events appended after it, so a long stream is not replayed on
// every command. The expected-version check at append time keeps this
// correct across instances.
type repository[T aggregate] struct {
	store      EventStore
	streamType string
	streamID   func(id string) string
	newEmpty   func() T
	decode     decodeFunc
	cache      *aggregateCache[T]
	// wait: a load waits for an aggregate another command has out (see
	// aggregateCache) rather than reading its stream. Worth it for long
	// streams that are changed, not for short ones that are mostly read:
	// there, waiting would only serialise readers.
	wait bool
}

// waiting makes loads wait for an aggregate that is out.
func (r *repository[T]) waiting() *repository[T] {
	r.wait = true
	return r
}

func newRepository[T aggregate](store EventStore, streamType string, streamID func(string) string,
	newEmpty func() T, decode decodeFunc) *repository[T] {
	return &repository[T]{store: store, streamType: streamType, streamID: streamID,
		newEmpty: newEmpty, decode: decode, cache: newAggregateCache[T](10_000)}
}

// load returns the aggregate with the given id, or a CodeNotFound error when
// its stream is empty. The caller owns the returned aggregate; it goes back to
// the cache through save or release.
func (r *repository[T]) load(ctx context.Context, id string) (T, error) {
	agg := r.begin(ctx, id)
	events, err := r.store.ReadStream(ctx, r.streamID(id), agg.Version())
	if err != nil {
		r.cache.drop(r.streamID(id))
		var zero T
		return zero, fmt.Errorf("load %s: %w", r.streamID(id), err)
	}
	return r.finish(id, agg, events)
}

// begin takes the cached aggregate, or a new empty one.
func (r *repository[T]) begin(ctx context.Context, id string) T {
	agg, ok := r.cache.take(ctx, r.streamID(id), r.wait)
	if !ok {
		agg = r.newEmpty()
	}
	return agg
}

// finish applies the events read after the aggregate's version.
func (r *repository[T]) finish(id string, agg T, events []eventstore.Event) (T, error) {
	var zero T
	for _, e := range events {
		de, err := r.decode(e.Type, e.SchemaVersion, e.Data)
		if err != nil {
			r.cache.drop(r.streamID(id))
			return zero, fmt.Errorf("load %s version %d: %w", r.streamID(id), e.StreamVersion, err)
		}
		agg.Apply(de)
	}
	if agg.Version() == 0 {
		r.cache.drop(r.streamID(id))
		return zero, domain.Errorf(domain.CodeNotFound, "%s not found", r.streamType)
	}
	return agg, nil
}

// peek reports a cached aggregate's state through fn without taking it.
func (r *repository[T]) peek(id string, fn func(T)) bool {
	return r.cache.peek(r.streamID(id), fn)
}

// loadTwo loads two aggregates with one read of both streams' tails.
func loadTwo[A, B aggregate](ctx context.Context, store EventStore, ra *repository[A], idA string, rb *repository[B], idB string) (A, B, error) {
	var (
		zeroA A
		zeroB B
	)
	a, b := ra.begin(ctx, idA), rb.begin(ctx, idB)
	tails, err := store.ReadStreams(ctx, []eventstore.StreamTail{
		{StreamID: ra.streamID(idA), AfterVersion: a.Version()},
		{StreamID: rb.streamID(idB), AfterVersion: b.Version()},
	})
	if err != nil {
		ra.cache.drop(ra.streamID(idA))
		rb.cache.drop(rb.streamID(idB))
		return zeroA, zeroB, err
	}
	if a, err = ra.finish(idA, a, tails[ra.streamID(idA)]); err != nil {
		rb.cache.drop(rb.streamID(idB))
		return zeroA, zeroB, err
	}
	if b, err = rb.finish(idB, b, tails[rb.streamID(idB)]); err != nil {
		ra.release(idA, a)
		return zeroA, zeroB, err
	}
	return a, b, nil
}

// release returns an unchanged aggregate to the cache.
func (r *repository[T]) release(id string, agg T) {
	if len(agg.Pending()) == 0 {
		r.cache.put(r.streamID(id), agg)
		return
	}
	r.cache.drop(r.streamID(id))
}

// save appends the aggregate's pending events, expecting the stream to be at
// the version the aggregate was loaded at.
func (r *repository[T]) save(ctx context.Context, id string, agg T, opts ...eventstore.AppendOption) (eventstore.AppendResult, error) {
	pending := agg.Pending()
	if len(pending) == 0 {
		r.cache.put(r.streamID(id), agg) // nothing to write: back to the cache, unchanged
		return eventstore.AppendResult{}, nil
	}
	events := make([]eventstore.NewEvent, len(pending))
	for i, e := range pending {
		data, err := json.Marshal(e)
		if err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("encode %s: %w", e.EventType(), err)
		}
		events[i] = eventstore.NewEvent{ID: newID(), Type: e.EventType(), SchemaVersion: domain.SchemaVersion(e), Data: data}
	}
	streamID := r.streamID(id)
	expected := agg.Version() - len(pending)
	res, err := r.store.Append(ctx, eventstore.Stream{ID: streamID, Type: r.streamType}, expected, events, metadataFrom(ctx), opts...)
	if err != nil {
		r.cache.drop(streamID)
		if errors.Is(err, eventstore.ErrConcurrency) {
			return eventstore.AppendResult{}, err
		}
		return eventstore.AppendResult{}, fmt.Errorf("save %s: %w", streamID, err)
	}
	agg.ClearPending()
	r.cache.put(streamID, agg)
	return res, nil
}

// newID returns a new time-ordered UUID (version 7).
func newID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// aggregateCache is a bounded map of aggregates that callers take out while
// they work on them, so that no two commands ever share one instance.
//
// A command that finds an aggregate taken by another waits a moment for it
// to come back (put, or dropped) instead of reading the whole stream again:
// two commands on one stream cannot both append anyway, and a long stream (a
// busy conversation) is costly to read. The wait is bounded, so an
// aggregate that never comes back costs a caller at most takeWait.
type aggregateCache[T any] struct {
	mu  sync.Mutex
	max int
	m   map[string]T
	out map[string]chan struct{} // taken: closed when it comes back or is dropped
}

// takeWait bounds how long take waits for an aggregate another command has.
const takeWait = 100 * time.Millisecond

func newAggregateCache[T any](max int) *aggregateCache[T] {
	return &aggregateCache[T]{max: max, m: make(map[string]T), out: make(map[string]chan struct{})}
}

// take removes and returns the cached aggregate of key, waiting, when wait
// is set, up to takeWait (or until ctx ends) if another caller has it out.
// It reports false when there is none: the caller builds it from the
// stream.
func (c *aggregateCache[T]) take(ctx context.Context, key string, wait bool) (T, bool) {
	var zero T
	var timeout <-chan time.Time
	for {
		c.mu.Lock()
		v, ok := c.m[key]
		back, taken := c.out[key]
		if !ok && taken && !wait {
			c.mu.Unlock()
			return zero, false
		}
		if ok || !taken {
			if ok {
				delete(c.m, key)
				c.returned(key) // a marker left by a caller that stopped waiting
			}
			if wait {
				// Only waiting repositories mark what is out: no one waits
				// for the others' aggregates.
				c.out[key] = make(chan struct{})
			}
			c.mu.Unlock()
			return v, ok
		}
		c.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(takeWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-back:
		case <-timeout:
			return zero, false
		case <-ctx.Done():
			return zero, false
		}
	}
}

// peek calls fn with the cached aggregate of key, if there is one, without
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

// put caches v as the aggregate of key, and wakes a caller waiting for it.
func (c *aggregateCache[T]) put(key string, v T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[key] = v
	c.returned(key)
}

// drop says that the aggregate of key taken out will not come back (it
// failed, or changed without being saved).
func (c *aggregateCache[T]) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.returned(key)
}

func (c *aggregateCache[T]) returned(key string) {
	if ch, ok := c.out[key]; ok {
		close(ch)
		delete(c.out, key)
	}
}
