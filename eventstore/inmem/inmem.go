// Package inmem is an event store held in memory, with the semantics of the
// PostgreSQL store (package eventstore): appends guarded by an expected
// version, all or nothing; events that never change once stored; unique
// claims and idempotency keys written with the events; positions in commit
// order; and the per-stream hash chain. The contract suite
// (eventstore/storetest) holds both stores to the same tests.
//
// It is for tests of what is built on an event store (the command handlers,
// the live streams): it keeps everything, forever, in one process.
package inmem

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/engramhq/engram/eventstore"
)

// Store is an event store in memory. The zero value is not usable; call
// New. It is safe for concurrent use.
type Store struct {
	now func() time.Time

	mu        sync.Mutex
	log       []eventstore.Event          // in position (and commit) order
	streams   map[string][]int            // stream id → indexes into log, in version order
	eventIDs  map[string]bool             // ids of stored events
	claims    map[eventstore.Claim]string // claim → stream id
	responses map[[2]string]stored        // (scope, key) → first response
	txID      uint64                      // the last append's transaction id
	hooks     []func(eventstore.AppendResult)
}

type stored = eventstore.StoredResponse

// Option configures a Store.
type Option func(*Store)

// WithClock sets the clock used for recorded_at (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(s *Store) { s.now = now }
}

// WithAppendHook registers fn to be called after every successful append,
// outside the store's lock. fn must be quick and must not block.
func WithAppendHook(fn func(eventstore.AppendResult)) Option {
	return func(s *Store) { s.hooks = append(s.hooks, fn) }
}

// New returns an empty store.
func New(opts ...Option) *Store {
	s := &Store{now: time.Now, streams: map[string][]int{}, eventIDs: map[string]bool{},
		claims: map[eventstore.Claim]string{}, responses: map[[2]string]stored{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Append writes events to the end of stream, which must be at
// expectedVersion (eventstore.NoStream for a new stream), with the claims
// of opts and the idempotency key of ctx (eventstore.WithIdempotency), all
// or nothing. It fails as eventstore.Store.Append does: ErrConcurrency when
// the stream is not at expectedVersion or an event id is already stored,
// ErrClaimed when a claim is held by another stream, ErrIdempotencyKeyUsed
// when the key was stored first, ErrNoEvents without events; and with the
// context's error when ctx has ended.
func (s *Store) Append(ctx context.Context, stream eventstore.Stream, expectedVersion int, events []eventstore.NewEvent,
	md eventstore.Metadata, opts ...eventstore.AppendOption) (eventstore.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, err
	}
	if err := eventstore.CheckAppend(stream, expectedVersion, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	claims := eventstore.Claims(opts...)
	idem := eventstore.IdempotencyOf(opts...)
	recordedAt := s.now().UTC().Truncate(time.Microsecond)

	s.mu.Lock()
	var result eventstore.AppendResult
	var err error
	if g, ok := eventstore.GuardOf(opts...); ok && len(s.streams[g.StreamID]) > g.Version {
		err = eventstore.ErrGuardChanged
	} else {
		result, err = s.appendLocked(stream, expectedVersion, events, md, claims, idem, recordedAt)
	}
	s.mu.Unlock()
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	for _, fn := range s.hooks {
		fn(copyResult(result))
	}
	return copyResult(result), nil
}

func (s *Store) appendLocked(stream eventstore.Stream, expectedVersion int, events []eventstore.NewEvent,
	md eventstore.Metadata, claims []eventstore.Claim, idem *eventstore.Idempotency, recordedAt time.Time) (eventstore.AppendResult, error) {
	var key [2]string
	if idem != nil {
		key = [2]string{idem.Scope, idem.Key}
		if _, used := s.responses[key]; used {
			return eventstore.AppendResult{}, eventstore.ErrIdempotencyKeyUsed
		}
	}
	for _, c := range claims {
		if owner, held := s.claims[c]; held && owner != stream.ID {
			return eventstore.AppendResult{}, eventstore.ErrClaimed
		}
	}
	head := s.streams[stream.ID]
	if len(head) != expectedVersion {
		return eventstore.AppendResult{}, eventstore.ErrConcurrency
	}
	var prev []byte
	if len(head) > 0 {
		prev = s.log[head[len(head)-1]].Hash
	}
	txID := s.txID + 1
	position := int64(len(s.log))
	seen := map[string]bool{}
	out := make([]eventstore.Event, len(events))
	for i, ne := range events {
		if s.eventIDs[ne.ID] || seen[ne.ID] {
			return eventstore.AppendResult{}, eventstore.ErrConcurrency
		}
		seen[ne.ID] = true
		e := eventstore.Event{
			GlobalPosition: position + int64(i) + 1,
			TxID:           txID,
			EventID:        ne.ID,
			StreamID:       stream.ID,
			StreamType:     stream.Type,
			StreamVersion:  expectedVersion + i + 1,
			Type:           ne.Type,
			SchemaVersion:  max(ne.SchemaVersion, 1),
			Data:           bytes.Clone(ne.Data),
			Metadata:       md,
			RecordedAt:     recordedAt,
			PrevHash:       prev,
		}
		if ne.Metadata != nil {
			e.Metadata = *ne.Metadata
		}
		hash, err := eventstore.ChainHash(prev, &e)
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		e.Hash, prev = hash, hash
		out[i] = e
	}
	result := eventstore.AppendResult{Events: out}
	var response stored
	if idem != nil {
		status, body, err := idem.Render(copyResult(result))
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		response = stored{Status: status, Body: bytes.Clone(body), RequestHash: bytes.Clone(idem.RequestHash),
			Position: result.LastPosition()}
	}

	// Everything is checked: write it all.
	s.txID = txID
	for _, e := range out {
		s.streams[stream.ID] = append(s.streams[stream.ID], len(s.log))
		s.eventIDs[e.EventID] = true
		s.log = append(s.log, e)
	}
	for _, c := range claims {
		s.claims[c] = stream.ID
	}
	if idem != nil {
		s.responses[key] = response
	}
	return result, nil
}

// ReadStream returns the events of a stream with a version above
// afterVersion, in version order. A stream that does not exist has no
// events.
func (s *Store) ReadStream(ctx context.Context, streamID string, afterVersion int) ([]eventstore.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streamLocked(streamID, afterVersion), nil
}

func (s *Store) streamLocked(streamID string, afterVersion int) []eventstore.Event {
	idx := s.streams[streamID]
	if afterVersion < 0 {
		afterVersion = 0
	}
	if afterVersion >= len(idx) {
		return nil
	}
	out := make([]eventstore.Event, 0, len(idx)-afterVersion)
	for _, i := range idx[afterVersion:] {
		out = append(out, copyEvent(s.log[i]))
	}
	return out
}

// ReadStreams reads the tails of several streams: for each, the events
// with a version above AfterVersion, in version order. Streams without such
// events are missing from the map.
func (s *Store) ReadStreams(ctx context.Context, tails []eventstore.StreamTail) (map[string][]eventstore.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]eventstore.Event, len(tails))
	for _, t := range tails {
		if events := s.streamLocked(t.StreamID, t.AfterVersion); len(events) > 0 {
			out[t.StreamID] = events
		}
	}
	return out, nil
}

// FirstEvent returns the first event of a stream, and false when the
// stream does not exist.
func (s *Store) FirstEvent(ctx context.Context, streamID string) (eventstore.Event, bool, error) {
	if err := ctx.Err(); err != nil {
		return eventstore.Event{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	idx := s.streams[streamID]
	if len(idx) == 0 {
		return eventstore.Event{}, false, nil
	}
	return copyEvent(s.log[idx[0]]), true, nil
}

// ReadAll returns up to limit events with a global position above
// afterPosition, in position order.
func (s *Store) ReadAll(ctx context.Context, afterPosition int64, limit int) ([]eventstore.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Positions are 1, 2, 3…: the event at position p is s.log[p-1].
	from := int(min(max(afterPosition, 0), int64(len(s.log))))
	to := min(from+max(limit, 0), len(s.log))
	out := make([]eventstore.Event, 0, to-from)
	for _, e := range s.log[from:to] {
		out = append(out, copyEvent(e))
	}
	return out, nil
}

// ReadCommitted returns up to limit events after cursor in commit order.
// Every append is committed when it returns, so commit order is position
// order.
func (s *Store) ReadCommitted(ctx context.Context, after eventstore.Cursor, limit int) ([]eventstore.Event, error) {
	return s.ReadAll(ctx, after.Position, limit)
}

// CursorOf returns the commit-order cursor of the event at position, or
// eventstore.ErrUnknownPosition when no event has it. Position 0 is the
// cursor before every event.
func (s *Store) CursorOf(ctx context.Context, position int64) (eventstore.Cursor, error) {
	if err := ctx.Err(); err != nil {
		return eventstore.Cursor{}, err
	}
	if position == 0 {
		return eventstore.Cursor{}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if position < 0 || position > int64(len(s.log)) {
		return eventstore.Cursor{}, eventstore.ErrUnknownPosition
	}
	return eventstore.Cursor{TxID: s.log[position-1].TxID, Position: position}, nil
}

// LastPosition returns the highest global position written so far (0 when
// the log is empty).
func (s *Store) LastPosition(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.log)), nil
}

// ClaimOwner returns the stream that holds a unique claim, or "" when
// nobody does.
func (s *Store) ClaimOwner(ctx context.Context, c eventstore.Claim) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.claims[c], nil
}

// IdempotentResponse returns the response stored for (scope, key), if any.
func (s *Store) IdempotentResponse(ctx context.Context, scope, key string) (eventstore.StoredResponse, bool, error) {
	if err := ctx.Err(); err != nil {
		return eventstore.StoredResponse{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.responses[[2]string{scope, key}]
	r.Body, r.RequestHash = bytes.Clone(r.Body), bytes.Clone(r.RequestHash)
	return r, ok, nil
}

// VerifyStream recomputes the hash chain and checks the version sequence of
// a stream (see eventstore.VerifyChain).
func (s *Store) VerifyStream(ctx context.Context, streamID string) ([]eventstore.Break, error) {
	events, err := s.ReadStream(ctx, streamID, 0)
	if err != nil {
		return nil, err
	}
	return eventstore.VerifyChain(events), nil
}

// copyEvent returns e with its byte slices copied, so that what a caller
// does with an event it was given never changes the stored one.
func copyEvent(e eventstore.Event) eventstore.Event {
	e.Data = bytes.Clone(e.Data)
	e.PrevHash = bytes.Clone(e.PrevHash)
	e.Hash = bytes.Clone(e.Hash)
	return e
}

func copyResult(r eventstore.AppendResult) eventstore.AppendResult {
	events := slices.Clone(r.Events)
	for i := range events {
		events[i] = copyEvent(events[i])
	}
	return eventstore.AppendResult{Events: events}
}
