package projections

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/engramhq/engram/domain/workspace"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/platform/defaults"
)

// Defaults of ReadCacheConfig.
const (
	DefaultReadCacheBytes    = 64 << 20
	DefaultReadCacheCatchUp  = 100 * time.Millisecond
	DefaultReadCacheRotation = time.Second
)

// ReadCacheConfig configures a ReadCache.
type ReadCacheConfig struct {
	// Head reads the last committed event of the log (eventstore.Store.Tip).
	Head func(ctx context.Context) (eventstore.Cursor, error)
	// Lease, when set, tells the last committed event without a round
	// trip while this instance holds the read lease
	// (eventstore.ReadLease.Head); when it reports false, Head is read.
	Lease func() (eventstore.Cursor, bool)
	// MaxBytes bounds the estimated size of the answers kept (default
	// DefaultReadCacheBytes); beyond it, entries picked at random make room.
	MaxBytes int
	// CatchUp bounds how long a read waits for this instance's pipeline to
	// apply the head of the log before it goes to the read models instead
	// (default DefaultReadCacheCatchUp).
	CatchUp time.Duration
	// Rotation is how long an event's mark stays in the short history that
	// fills are checked against (default DefaultReadCacheRotation): a
	// fill read from a read model that lags this instance's pipeline by
	// more than about that is not kept.
	Rotation time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// ReadCache keeps the answers of the hottest queries (a conversation, a page
// of its messages, a member's role, a user's workspaces) in this process's
// memory, so that reading them costs no round trip to a read model.
//
// Exactness rests on three rules:
//
//   - Every event of the log reaches the cache through the instance's one
//     pass over the log (Handle is a sink of the Pipeline), in commit order.
//     An event evicts every entry that depends on it: its stream, and for a
//     membership event the member's list of workspaces.
//   - An entry is filled from a SQL read model whose checkpoint was read
//     before the rows (Put's asOf). It is kept only when no event after that
//     checkpoint that it depends on has passed the cache already; later ones
//     evict it. An entry therefore always holds its read model's answer as
//     of the last event the cache applied.
//   - A read is answered from the cache only once the cache has applied
//     every event committed before the read began (Current): one read of
//     the head of the log, shared by the reads that arrive together, then a
//     wait for the pipeline — so a removed member's next request is refused
//     on every instance, and Engram-Min-Position holds by construction.
//     While the instance holds the read lease (no other writer can commit),
//     the head is known without the read: the later of the tip when the
//     lease was taken and the instance's own last append.
//
// When any of that cannot be shown quickly, the query reads the read model
// as before: the cache only ever makes a read faster, never staler.
type ReadCache struct {
	cfg   ReadCacheConfig
	fence fence

	mu       sync.RWMutex
	applied  eventstore.Cursor // the last event applied
	highest  int64             // the highest global position applied
	advanced chan struct{}     // closed when applied moves
	active   bool              // Activate has run: fills are accepted
	floor    eventstore.Cursor // every event after it is marked in recent or older
	rotated  eventstore.Cursor // applied at the last rotation
	rotateAt time.Time
	recent   map[string]eventstore.Cursor // dependency → its last event since the last rotation
	older    map[string]eventstore.Cursor // the same, for the rotation before
	entries  map[string]*cacheEntry
	byDep    map[string]map[*cacheEntry]struct{}
	bytes    int

	hits, misses, behind atomic.Int64
}

// ReadCacheStats counts what a ReadCache did since it started.
type ReadCacheStats struct {
	// Hits and Misses count the lookups of a current cache that found an
	// answer, and those that did not.
	Hits, Misses int64
	// Behind counts the reads that could not use the cache because it had
	// not applied the head of the log in time (or was not active).
	Behind int64
	// Entries and Bytes are what it holds now (bytes estimated).
	Entries, Bytes int
}

type cacheEntry struct {
	key   string
	value any
	deps  []string
	size  int
}

// NewReadCache returns an empty cache; it answers nothing until Activate.
func NewReadCache(cfg ReadCacheConfig) (*ReadCache, error) {
	if cfg.Head == nil {
		return nil, errors.New("read cache: a head reader is required")
	}
	defaults.Positive(&cfg.MaxBytes, DefaultReadCacheBytes)
	defaults.Positive(&cfg.CatchUp, DefaultReadCacheCatchUp)
	defaults.Positive(&cfg.Rotation, DefaultReadCacheRotation)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Lease == nil {
		cfg.Lease = func() (eventstore.Cursor, bool) { return eventstore.Cursor{}, false }
	}
	return &ReadCache{cfg: cfg, fence: fence{read: cfg.Head}, advanced: make(chan struct{}),
		recent: map[string]eventstore.Cursor{}, older: map[string]eventstore.Cursor{},
		entries: map[string]*cacheEntry{}, byDep: map[string]map[*cacheEntry]struct{}{}}, nil
}

// Activate starts answering: every event after from reaches Handle (from is
// at or after where the pipeline's subscription began).
func (c *ReadCache) Activate(from eventstore.Cursor) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if from.After(c.applied) {
		c.applied = from
		c.advance()
	}
	c.highest = max(c.highest, from.Position)
	c.floor, c.rotated, c.rotateAt = from, from, c.cfg.Now()
	c.active = true
}

// Handle is the Pipeline sink: it evicts what the event changes and marks
// its dependencies.
func (c *ReadCache) Handle(msg *message.Message) error {
	e, err := eventstore.FromMessage(msg)
	if err != nil {
		return nil // the pipeline has already reported it
	}
	cur := e.Cursor()
	deps := dependencies(e)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !cur.After(c.applied) {
		return nil // a redelivery
	}
	for _, d := range deps {
		for entry := range c.byDep[d] {
			c.evict(entry)
		}
		c.recent[d] = cur
	}
	c.applied = cur
	c.highest = max(c.highest, e.GlobalPosition)
	c.advance()
	if c.active && c.cfg.Now().Sub(c.rotateAt) >= c.cfg.Rotation {
		c.floor, c.rotated, c.rotateAt = c.rotated, c.applied, c.cfg.Now()
		c.older, c.recent = c.recent, map[string]eventstore.Cursor{}
	}
	return nil
}

// advance wakes the reads waiting for the cache to apply more (mu held).
func (c *ReadCache) advance() {
	close(c.advanced)
	c.advanced = make(chan struct{})
}

// Current reports whether the cache has applied every event committed
// before the call, waiting for the pipeline at most the configured CatchUp,
// and an event at minPosition or beyond (a position no event it applied
// reaches is left to the read models, which refuse one the log does not
// hold). False means: read the read models.
func (c *ReadCache) Current(ctx context.Context, minPosition int64) bool {
	c.mu.RLock()
	active := c.active
	c.mu.RUnlock()
	if !active {
		c.behind.Add(1)
		return false
	}
	head, ok := c.cfg.Lease()
	if !ok {
		var err error
		if head, err = c.fence.head(ctx); err != nil {
			c.behind.Add(1)
			return false
		}
	}
	var timeout <-chan time.Time
	for {
		c.mu.RLock()
		applied, highest, advanced := c.applied, c.highest, c.advanced
		c.mu.RUnlock()
		if !head.After(applied) {
			if minPosition > highest {
				c.behind.Add(1)
				return false
			}
			return true
		}
		if timeout == nil {
			timer := time.NewTimer(c.cfg.CatchUp)
			defer timer.Stop()
			timeout = timer.C
		}
		select {
		case <-advanced:
		case <-timeout:
			c.behind.Add(1)
			return false
		case <-ctx.Done():
			c.behind.Add(1)
			return false
		}
	}
}

// Get returns the entry kept under key. Call Current first: an entry is
// exact as of the last event applied, which Current shows is recent enough.
func (c *ReadCache) Get(key string) (any, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.entries[key]
	if !ok {
		c.misses.Add(1)
		return nil, false
	}
	c.hits.Add(1)
	return e.value, true
}

// Put keeps value under key: an answer read from read models whose
// checkpoints were all at or after asOf before the read began, that changes
// only with events of the dependencies deps (stream ids, or MemberDependency
// of a user). size estimates its bytes. The value must not be changed
// afterwards. Put keeps nothing when an event after asOf that the answer
// depends on has been applied already, or when asOf is too old to tell.
func (c *ReadCache) Put(key string, value any, asOf eventstore.Cursor, size int, deps ...string) {
	if size > c.cfg.MaxBytes/16 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.active || c.floor.After(asOf) {
		return
	}
	for _, d := range deps {
		if last, ok := c.recent[d]; ok && last.After(asOf) {
			return
		}
		if last, ok := c.older[d]; ok && last.After(asOf) {
			return
		}
	}
	if old, ok := c.entries[key]; ok {
		c.evict(old)
	}
	for c.bytes+size > c.cfg.MaxBytes && len(c.entries) > 0 {
		c.evictRandom()
	}
	e := &cacheEntry{key: key, value: value, deps: deps, size: size}
	c.entries[key] = e
	c.bytes += size
	for _, d := range deps {
		set := c.byDep[d]
		if set == nil {
			set = map[*cacheEntry]struct{}{}
			c.byDep[d] = set
		}
		set[e] = struct{}{}
	}
}

// Stats returns the counts of the cache.
func (c *ReadCache) Stats() ReadCacheStats {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return ReadCacheStats{Hits: c.hits.Load(), Misses: c.misses.Load(), Behind: c.behind.Load(),
		Entries: len(c.entries), Bytes: c.bytes}
}

func (c *ReadCache) evict(e *cacheEntry) {
	if c.entries[e.key] == e {
		delete(c.entries, e.key)
		c.bytes -= e.size
	}
	for _, d := range e.deps {
		if set := c.byDep[d]; set != nil {
			delete(set, e)
			if len(set) == 0 {
				delete(c.byDep, d)
			}
		}
	}
}

// evictRandom drops one entry; map order is random enough to spread the
// losses over the hot and the cold.
func (c *ReadCache) evictRandom() {
	skip := rand.IntN(min(len(c.entries), 8))
	for _, e := range c.entries {
		if skip == 0 {
			c.evict(e)
			return
		}
		skip--
	}
}

// MemberDependency is the dependency of a user's list of workspaces: every
// event that adds or removes the user as a member evicts the answers that
// depend on it.
func MemberDependency(userID string) string { return "member:" + userID }

// dependencies lists what an event changes: its stream, and for a workspace
// event naming a user (its owner, a member added or removed) that user's
// list of workspaces.
func dependencies(e eventstore.Event) []string {
	deps := []string{e.StreamID}
	if e.StreamType != workspace.StreamType {
		return deps
	}
	var named struct {
		UserID  string `json:"user_id"`
		OwnerID string `json:"owner_id"`
	}
	if json.Unmarshal(e.Data, &named) != nil {
		return deps
	}
	for _, u := range []string{named.UserID, named.OwnerID} {
		if u != "" {
			deps = append(deps, MemberDependency(u))
		}
	}
	return deps
}

// fence reads the head of the log for the reads that wait for it, sharing
// one read among those that arrive together: a read joins the next head
// read that has not started yet, never one already under way, so the head
// it gets was read after it arrived.
type fence struct {
	read func(ctx context.Context) (eventstore.Cursor, error)

	mu      sync.Mutex
	next    *headRead
	running bool
}

type headRead struct {
	done chan struct{}
	head eventstore.Cursor
	err  error
}

func (f *fence) head(ctx context.Context) (eventstore.Cursor, error) {
	f.mu.Lock()
	if f.next == nil {
		f.next = &headRead{done: make(chan struct{})}
	}
	r := f.next
	if !f.running {
		f.running = true
		// The reads outlive the request that starts them: the others
		// that join wait for them too.
		go f.run(context.WithoutCancel(ctx))
	}
	f.mu.Unlock()
	select {
	case <-r.done:
		return r.head, r.err
	case <-ctx.Done():
		return eventstore.Cursor{}, ctx.Err()
	}
}

// run reads heads while reads wait for one.
func (f *fence) run(base context.Context) {
	for {
		f.mu.Lock()
		r := f.next
		f.next = nil
		if r == nil {
			f.running = false
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
		ctx, cancel := context.WithTimeout(base, time.Second)
		r.head, r.err = f.read(ctx)
		cancel()
		close(r.done)
	}
}
