package projections_test

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/domain/workspace"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/projections"
)

// cacheLog feeds a ReadCache events as the pipeline would, and tells it the
// tip of the log.
type cacheLog struct {
	t     *testing.T
	cache *projections.ReadCache
	mu    sync.Mutex
	tip   eventstore.Cursor
	reads atomic.Int64
}

func newCacheLog(t *testing.T, catchUp time.Duration) *cacheLog {
	t.Helper()
	l := &cacheLog{t: t}
	c, err := projections.NewReadCache(projections.ReadCacheConfig{CatchUp: catchUp, Head: func(context.Context) (eventstore.Cursor, error) {
		l.reads.Add(1)
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.tip, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	l.cache = c
	return l
}

// commit records an event at position pos (its own transaction) as the tip
// of the log, without handing it to the cache yet.
func (l *cacheLog) commit(pos int64, streamType, streamID, typ string, data any) eventstore.Event {
	l.t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		l.t.Fatal(err)
	}
	e := eventstore.Event{EventID: uuid.NewString(), StreamID: streamID, StreamType: streamType, Type: typ,
		StreamVersion: 1, GlobalPosition: pos, TxID: uint64(1000 + pos), Data: raw}
	l.mu.Lock()
	l.tip = eventstore.Cursor{TxID: e.TxID, Position: pos}
	l.mu.Unlock()
	return e
}

func (l *cacheLog) deliver(e eventstore.Event) {
	l.t.Helper()
	if err := l.cache.Handle(eventstore.ToMessage(e)); err != nil {
		l.t.Fatal(err)
	}
}

func at(pos int64) eventstore.Cursor {
	return eventstore.Cursor{TxID: uint64(1000 + pos), Position: pos}
}

func TestReadCacheAnswersNothingBeforeActivation(t *testing.T) {
	l := newCacheLog(t, 10*time.Millisecond)
	l.cache.Put("k", "v", at(0), 10, "s")
	if _, ok := l.cache.Get("k"); ok {
		t.Fatal("an entry was kept before activation")
	}
	if l.cache.Current(t.Context(), 0) {
		t.Fatal("an inactive cache says it is current")
	}
}

// An event evicts what depends on its stream, and only that; a fill read
// before an event it depends on that the cache has applied is not kept.
func TestReadCacheEvictsAndRefusesStaleFills(t *testing.T) {
	l := newCacheLog(t, 10*time.Millisecond)
	l.cache.Activate(at(1))
	a, b := conversation.StreamID(uuid.NewString()), conversation.StreamID(uuid.NewString())
	l.cache.Put("a", "a@1", at(1), 10, a)
	l.cache.Put("b", "b@1", at(1), 10, b)

	l.deliver(l.commit(2, conversation.StreamType, a, "conversation.message_posted", map[string]string{}))
	if _, ok := l.cache.Get("a"); ok {
		t.Fatal("an event of stream a left its entry in place")
	}
	if v, ok := l.cache.Get("b"); !ok || v != "b@1" {
		t.Fatalf("entry b = %v, %v; want it untouched", v, ok)
	}
	// Read from a read model at checkpoint 1: it misses event 2 of a.
	l.cache.Put("a", "a@1", at(1), 10, a)
	if _, ok := l.cache.Get("a"); ok {
		t.Fatal("a fill older than an applied event it depends on was kept")
	}
	// Read at checkpoint 2 or later: kept.
	l.cache.Put("a", "a@2", at(2), 10, a)
	if v, ok := l.cache.Get("a"); !ok || v != "a@2" {
		t.Fatalf("entry a = %v, %v; want a@2", v, ok)
	}
	// A fill from before the activation point cannot be checked.
	l.cache.Put("c", "c@0", at(0), 10, "other")
	if _, ok := l.cache.Get("c"); ok {
		t.Fatal("a fill from before the activation point was kept")
	}
}

// Adding or removing a member evicts the user's cached lists of workspaces.
func TestReadCacheMembershipEvictsTheMembersLists(t *testing.T) {
	l := newCacheLog(t, 10*time.Millisecond)
	l.cache.Activate(at(1))
	user, other := uuid.NewString(), uuid.NewString()
	l.cache.Put("list:"+user, "3 workspaces", at(1), 10, projections.MemberDependency(user))
	l.cache.Put("list:"+other, "1 workspace", at(1), 10, projections.MemberDependency(other))
	ws := workspace.StreamID(uuid.NewString())
	l.deliver(l.commit(2, workspace.StreamType, ws, "workspace.member_removed", map[string]string{"user_id": user}))
	if _, ok := l.cache.Get("list:" + user); ok {
		t.Fatal("removing a member left the member's list in the cache")
	}
	if _, ok := l.cache.Get("list:" + other); !ok {
		t.Fatal("removing one member evicted another's list")
	}
	l.deliver(l.commit(3, workspace.StreamType, workspace.StreamID(uuid.NewString()), "workspace.created",
		map[string]string{"owner_id": other, "name": "n"}))
	if _, ok := l.cache.Get("list:" + other); ok {
		t.Fatal("creating a workspace left its owner's list in the cache")
	}
}

// Current waits until the cache has applied what was committed before the
// call, and gives up after CatchUp.
func TestReadCacheCurrentWaitsForTheTip(t *testing.T) {
	l := newCacheLog(t, 2*time.Second)
	l.cache.Activate(at(1))
	l.mu.Lock()
	l.tip = at(1)
	l.mu.Unlock()
	if !l.cache.Current(t.Context(), 0) {
		t.Fatal("a cache that applied the tip is not current")
	}
	e := l.commit(2, conversation.StreamType, conversation.StreamID(uuid.NewString()), "conversation.message_posted", map[string]string{})
	done := make(chan bool, 1)
	go func() { done <- l.cache.Current(t.Context(), 0) }()
	select {
	case <-done:
		t.Fatal("Current answered before the cache applied the tip")
	case <-time.After(50 * time.Millisecond):
	}
	l.deliver(e)
	if !<-done {
		t.Fatal("Current gave up though the tip was applied")
	}
	if l.cache.Current(t.Context(), 3) {
		t.Fatal("Current vouched for a position beyond every event applied")
	}

	short := newCacheLog(t, 20*time.Millisecond)
	short.cache.Activate(at(1))
	short.commit(5, conversation.StreamType, "conversation-x", "conversation.message_posted", map[string]string{})
	if short.cache.Current(t.Context(), 0) {
		t.Fatal("a cache behind the tip says it is current")
	}
}

// While the read lease is trusted, the head it tells is the fence: no head
// read, and still a wait for the pipeline to apply it. Once it is not, the
// head is read again.
func TestReadCacheUsesTheLeasedHead(t *testing.T) {
	l := newCacheLog(t, 2*time.Second)
	var leased atomic.Bool
	var leaseHead atomic.Int64
	c, err := projections.NewReadCache(projections.ReadCacheConfig{CatchUp: 2 * time.Second,
		Head: func(ctx context.Context) (eventstore.Cursor, error) {
			l.reads.Add(1)
			l.mu.Lock()
			defer l.mu.Unlock()
			return l.tip, nil
		},
		Lease: func() (eventstore.Cursor, bool) { return at(leaseHead.Load()), leased.Load() },
	})
	if err != nil {
		t.Fatal(err)
	}
	l.cache = c
	c.Activate(at(1))
	leased.Store(true)
	leaseHead.Store(1)
	if !c.Current(t.Context(), 0) || l.reads.Load() != 0 {
		t.Fatalf("a cache at the leased head: not current, or %d head reads", l.reads.Load())
	}
	e := l.commit(2, conversation.StreamType, conversation.StreamID(uuid.NewString()), "conversation.message_posted", map[string]string{})
	leaseHead.Store(2) // the instance's own append
	done := make(chan bool, 1)
	go func() { done <- c.Current(t.Context(), 0) }()
	select {
	case <-done:
		t.Fatal("Current answered before the cache applied the leased head")
	case <-time.After(50 * time.Millisecond):
	}
	l.deliver(e)
	if !<-done || l.reads.Load() != 0 {
		t.Fatalf("after the leased head was applied: not current, or %d head reads", l.reads.Load())
	}
	leased.Store(false)
	l.commit(3, conversation.StreamType, conversation.StreamID(uuid.NewString()), "conversation.message_posted", map[string]string{})
	short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if c.Current(short, 0) || l.reads.Load() != 1 {
		t.Fatalf("without the lease, behind the tip: current, or %d head reads (want 1)", l.reads.Load())
	}
}

// Reads that arrive together share head reads, but none uses a head read
// that began before it arrived.
func TestReadCacheSharesHeadReads(t *testing.T) {
	release := make(chan struct{})
	var reads atomic.Int64
	started := make(chan struct{}, 100)
	c, err := projections.NewReadCache(projections.ReadCacheConfig{Head: func(context.Context) (eventstore.Cursor, error) {
		reads.Add(1)
		started <- struct{}{}
		<-release
		return eventstore.Cursor{}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	c.Activate(eventstore.Cursor{})
	first := make(chan bool)
	go func() { first <- c.Current(t.Context(), 0) }()
	<-started // the first head read is under way
	const n = 20
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !c.Current(t.Context(), 0) {
				t.Error("not current")
			}
		}()
	}
	// Whatever the schedule, each late read needs a head read of its own
	// or one it shares: at least one more, at most one each.
	close(release)
	<-first
	wg.Wait()
	if got := reads.Load(); got < 2 || got > 1+n {
		t.Fatalf("%d head reads for 1 + %d reads; want a second one shared by the late ones", got, n)
	}
}

// The cache keeps within its size, making room at random.
func TestReadCacheStaysWithinItsSize(t *testing.T) {
	c, err := projections.NewReadCache(projections.ReadCacheConfig{MaxBytes: 16 * 100,
		Head: func(context.Context) (eventstore.Cursor, error) { return eventstore.Cursor{}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	c.Activate(eventstore.Cursor{})
	for i := range 1000 {
		c.Put(uuid.NewString(), i, eventstore.Cursor{}, 100, "s")
	}
	if n := c.Stats().Entries; n > 16 || n == 0 {
		t.Fatalf("%d entries of 100 bytes in a 1600-byte cache", n)
	}
}
