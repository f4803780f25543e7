package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

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
	agg := r.begin(id)
	events, err := r.store.ReadStream(ctx, r.streamID(id), agg.Version())
	if err != nil {
		var zero T
		return zero, fmt.Errorf("load %s: %w", r.streamID(id), err)
	}
	return r.finish(id, agg, events)
}

// begin takes the cached aggregate, or a new empty one.
func (r *repository[T]) begin(id string) T {
	agg, ok := r.cache.take(r.streamID(id))
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
			return zero, fmt.Errorf("load %s version %d: %w", r.streamID(id), e.StreamVersion, err)
		}
		agg.Apply(de)
	}
	if agg.Version() == 0 {
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
	a, b := ra.begin(idA), rb.begin(idB)
	tails, err := store.ReadStreams(ctx, []eventstore.StreamTail{
		{StreamID: ra.streamID(idA), AfterVersion: a.Version()},
		{StreamID: rb.streamID(idB), AfterVersion: b.Version()},
	})
	if err != nil {
		return zeroA, zeroB, err
	}
	if a, err = ra.finish(idA, a, tails[ra.streamID(idA)]); err != nil {
		return zeroA, zeroB, err
	}
	if b, err = rb.finish(idB, b, tails[rb.streamID(idB)]); err != nil {
		return zeroA, zeroB, err
	}
	return a, b, nil
}

// release returns an unchanged aggregate to the cache.
func (r *repository[T]) release(id string, agg T) {
	if len(agg.Pending()) == 0 {
		r.cache.put(r.streamID(id), agg)
	}
}

// save appends the aggregate's pending events, expecting the stream to be at
// the version the aggregate was loaded at.
func (r *repository[T]) save(ctx context.Context, id string, agg T, opts ...eventstore.AppendOption) (eventstore.AppendResult, error) {
	pending := agg.Pending()
	if len(pending) == 0 {
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
type aggregateCache[T any] struct {
	mu  sync.Mutex
	max int
	m   map[string]T
}

func newAggregateCache[T any](max int) *aggregateCache[T] {
	return &aggregateCache[T]{max: max, m: make(map[string]T)}
}

func (c *aggregateCache[T]) take(key string) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	if ok {
		delete(c.m, key)
	}
	return v, ok
}

func (c *aggregateCache[T]) peek(key string, fn func(T)) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	if ok {
		fn(v)
	}
	return ok
}

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
}
