package commands

import (
	"context"
	"testing"
	"time"

	"github.com/engramhq/engram/domain"
)

// A command that finds an aggregate taken waits for it instead of reading
// the stream again; one that is never returned costs at most takeWait.
func TestAggregateCacheTake(t *testing.T) {
	ctx := t.Context()
	c := newAggregateCache[int](10)

	if _, ok := c.take(ctx, "s", true); ok {
		t.Fatal("take from an empty cache found an aggregate")
	}
	c.put("s", 7) // the first caller built it and saved it
	v, ok := c.take(ctx, "s", true)
	if !ok || v != 7 {
		t.Fatalf("take = %d, %v; want 7, true", v, ok)
	}

	got := make(chan int, 1)
	go func() {
		v, ok := c.take(ctx, "s", true)
		if !ok {
			v = -1
		}
		got <- v
	}()
	select {
	case v := <-got:
		t.Fatalf("second take returned %d while the aggregate was out", v)
	case <-time.After(20 * time.Millisecond):
	}
	c.put("s", 8)
	if v := <-got; v != 8 {
		t.Fatalf("waiting take = %d, want the aggregate put back (8)", v)
	}

	// Dropped: the waiter builds its own at once.
	go func() {
		_, ok := c.take(ctx, "s", true)
		got <- map[bool]int{true: 1, false: 0}[ok]
	}()
	time.Sleep(10 * time.Millisecond)
	start := time.Now()
	c.drop("s")
	if v := <-got; v != 0 {
		t.Fatal("take after a drop found an aggregate")
	}
	if waited := time.Since(start); waited > takeWait/2 {
		t.Fatalf("take went on %v after the drop", waited)
	}

	// Never returned: the wait is bounded. The "s" taken just above is out.
	start = time.Now()
	if _, ok := c.take(ctx, "s", true); ok {
		t.Fatal("take found an aggregate that is out")
	}
	if waited := time.Since(start); waited < takeWait {
		t.Fatalf("take gave up after %v, before takeWait", waited)
	}

	// A caller that does not wait builds its own at once.
	start = time.Now()
	if _, ok := c.take(ctx, "s", false); ok {
		t.Fatal("take without waiting found an aggregate that is out")
	}
	if waited := time.Since(start); waited > takeWait/2 {
		t.Fatalf("take without waiting took %v", waited)
	}

	// A caller whose context ends stops waiting.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, ok := c.take(cctx, "s", true); ok {
		t.Fatal("take with an ended context found an aggregate that is out")
	}
}

// Saving an aggregate that recorded nothing returns it, so that the next
// command does not wait for it.
func TestSaveWithNothingToWriteReturnsTheAggregate(t *testing.T) {
	r := &repository[*fakeAggregate]{streamType: "fake", streamID: func(id string) string { return "fake-" + id },
		cache: newAggregateCache[*fakeAggregate](10), wait: true}
	ctx := t.Context()
	if _, ok := r.cache.take(ctx, "fake-1", true); ok {
		t.Fatal("empty cache")
	}
	if _, err := r.save(ctx, "1", &fakeAggregate{version: 3}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got, ok := r.cache.take(ctx, "fake-1", true)
	if !ok || got.version != 3 {
		t.Fatalf("take after an empty save = %v, %v", got, ok)
	}
	if waited := time.Since(start); waited > takeWait/2 {
		t.Fatalf("take waited %v", waited)
	}
}

type fakeAggregate struct{ version int }

func (f *fakeAggregate) Apply(domain.Event)      {}
func (f *fakeAggregate) Version() int            { return f.version }
func (f *fakeAggregate) Pending() []domain.Event { return nil }
func (f *fakeAggregate) ClearPending()           {}
