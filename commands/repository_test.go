package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/eventstore/inmem"
)

// memStore is the in-memory event store, counting appends and clashes.
// beforeAppend, when set, runs before every append: a test uses it to play
// another instance writing first.
type memStore struct {
	*inmem.Store
	mu           sync.Mutex
	appends      int
	clashes      int
	beforeAppend func(streamID string)
}

func newMemStore() *memStore { return &memStore{Store: inmem.New()} }

func (m *memStore) Append(ctx context.Context, stream eventstore.Stream, expected int, events []eventstore.NewEvent,
	md eventstore.Metadata, opts ...eventstore.AppendOption) (eventstore.AppendResult, error) {
	if m.beforeAppend != nil {
		m.beforeAppend(stream.ID)
	}
	return m.count(m.Store.Append(ctx, stream, expected, events, md, opts...))
}

func (m *memStore) count(res eventstore.AppendResult, err error) (eventstore.AppendResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case err == nil:
		m.appends++
	case errors.Is(err, eventstore.ErrConcurrency):
		m.clashes++
	}
	return res, err
}

// write appends a domain event directly, as another instance would.
func (m *memStore) write(t *testing.T, streamID string, e domain.Event) {
	t.Helper()
	data, err := json.Marshal(e)
	if err != nil {
		t.Error(err)
		return
	}
	events, err := m.ReadStream(t.Context(), streamID, 0)
	if err == nil {
		_, err = m.count(m.Store.Append(t.Context(), eventstore.Stream{ID: streamID, Type: conversation.StreamType}, len(events),
			[]eventstore.NewEvent{{ID: newID(), Type: e.EventType(), Data: data}}, eventstore.Metadata{}))
	}
	if err != nil {
		t.Error(err)
	}
}

func newConversationRepo(t *testing.T, store *memStore) (*repository[*conversation.Conversation], string) {
	t.Helper()
	r := newRepository(EventStore(store), conversation.StreamType, conversation.StreamID,
		func() *conversation.Conversation { return &conversation.Conversation{} }, conversation.Decode)
	id := newID()
	c, err := conversation.New(id, newID(), newID(), "Room", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.create(t.Context(), id, c); err != nil {
		t.Fatal(err)
	}
	return r, id
}

func post(r *repository[*conversation.Conversation], ctx context.Context, id, messageID string) (Written, error) {
	return r.update(ctx, id, func(c *conversation.Conversation) error {
		return c.PostMessage(messageID, "u", conversation.RoleUser, "hello", nil)
	})
}

// Commands on one stream queue behind each other: every one succeeds, each
// is told its own events and version, and those that arrive together share
// an append.
func TestUpdateOneWriterPerStream(t *testing.T) {
	store := newMemStore()
	r, id := newConversationRepo(t, store)
	const n = 200
	var wg sync.WaitGroup
	versions := make(chan int, n)
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			w, err := post(r, t.Context(), id, newID())
			if err != nil {
				errs <- err
				return
			}
			if len(w.Events) != 1 || w.Events[0].StreamVersion != w.Version {
				errs <- fmt.Errorf("written %+v: want its one event at its version", w)
				return
			}
			versions <- w.Version
		})
	}
	wg.Wait()
	close(errs)
	close(versions)
	for err := range errs {
		t.Fatal(err)
	}
	seen := make(map[int]bool)
	for v := range versions {
		if seen[v] {
			t.Fatalf("version %d answered twice", v)
		}
		seen[v] = true
	}
	for v := 2; v <= n+1; v++ {
		if !seen[v] {
			t.Fatalf("version %d missing: versions are not contiguous", v)
		}
	}
	if store.clashes != 0 {
		t.Fatalf("%d clashes inside one instance, want 0", store.clashes)
	}
	if store.appends > n {
		t.Fatalf("%d appends for %d commands", store.appends, n)
	}
	t.Logf("%d commands in %d appends", n, store.appends-1)
}

// Another instance appends first: the command is decided again on the new
// tail and succeeds, however many times that happens, without a fixed
// number of tries.
func TestUpdateDecidesAgainOnTheNewTail(t *testing.T) {
	store := newMemStore()
	r, id := newConversationRepo(t, store)
	const interleaved = 12 // more than any small fixed retry count
	left := interleaved
	store.beforeAppend = func(streamID string) {
		if left > 0 {
			left--
			store.write(t, streamID, conversation.MessagePosted{MessageID: newID(), AuthorID: "other",
				Role: conversation.RoleUser, Content: "from elsewhere", Metadata: json.RawMessage(`{}`)})
		}
	}
	decided := 0
	w, err := r.update(t.Context(), id, func(c *conversation.Conversation) error {
		decided++
		return c.PostMessage(newID(), "u", conversation.RoleUser, "mine", nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	if decided != interleaved+1 {
		t.Fatalf("decided %d times, want %d", decided, interleaved+1)
	}
	if want := 1 + interleaved + 1; w.Version != want {
		t.Fatalf("version %d, want %d", w.Version, want)
	}
}

// If-Match is checked against the stream's latest state, not the cache's:
// a stale cache neither refuses a current version nor accepts an old one.
func TestUpdateIfMatchOnTheLatestState(t *testing.T) {
	store := newMemStore()
	r, id := newConversationRepo(t, store) // cached at version 1
	store.write(t, conversation.StreamID(id), conversation.MessagePosted{MessageID: newID(), AuthorID: "other",
		Role: conversation.RoleUser, Content: "elsewhere", Metadata: json.RawMessage(`{}`)}) // version 2, unknown to the cache

	rename := func(ifMatch int) (Written, error) {
		title := fmt.Sprintf("Renamed at %d", ifMatch)
		return r.update(t.Context(), id, func(c *conversation.Conversation) error {
			if err := checkIfMatch(&ifMatch, c.Version()); err != nil {
				return err
			}
			return c.Update(&title, nil)
		})
	}
	if _, err := rename(1); !errors.Is(err, ErrPreconditionFailed) {
		t.Fatalf("If-Match 1 at version 2: %v, want ErrPreconditionFailed", err)
	}
	w, err := rename(2)
	if err != nil {
		t.Fatalf("If-Match 2 at version 2: %v", err)
	}
	if w.Version != 3 {
		t.Fatalf("version %d, want 3", w.Version)
	}
	if _, err := rename(2); !errors.Is(err, ErrPreconditionFailed) {
		t.Fatalf("If-Match 2 at version 3: %v, want ErrPreconditionFailed", err)
	}
}

// A rule broken by what another instance appended meanwhile is the
// command's answer.
func TestUpdateRuleBrokenByTheNewTail(t *testing.T) {
	store := newMemStore()
	r, id := newConversationRepo(t, store)
	store.write(t, conversation.StreamID(id), conversation.Archived{})
	_, err := post(r, t.Context(), id, newID())
	if domain.ErrorCode(err) != domain.CodeConflict {
		t.Fatalf("post to a conversation archived elsewhere: %v, want CodeConflict", err)
	}
	if store.appends != 2 { // the creation and the archive: the post wrote nothing
		t.Fatalf("%d appends, want 2", store.appends)
	}
}

// A stream that keeps changing under the command is given up only when the
// caller's context ends.
func TestUpdateBoundedByTheContext(t *testing.T) {
	store := newMemStore()
	r, id := newConversationRepo(t, store)
	store.beforeAppend = func(streamID string) {
		store.write(t, streamID, conversation.MessagePosted{MessageID: newID(), AuthorID: "other",
			Role: conversation.RoleUser, Content: "always first", Metadata: json.RawMessage(`{}`)})
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := post(r, ctx, id, newID())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
	if store.clashes < 2 {
		t.Fatalf("%d clashes: the command gave up before its context ended", store.clashes)
	}
}

// A missing stream is not found; a creation over an existing one clashes.
func TestUpdateNotFoundAndCreateClash(t *testing.T) {
	store := newMemStore()
	r, id := newConversationRepo(t, store)
	if _, err := post(r, t.Context(), newID(), newID()); domain.ErrorCode(err) != domain.CodeNotFound {
		t.Fatalf("post to a missing conversation: %v, want CodeNotFound", err)
	}
	c, err := conversation.New(id, newID(), newID(), "Again", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.create(t.Context(), id, c); !errors.Is(err, eventstore.ErrConcurrency) {
		t.Fatalf("create over an existing stream: %v, want ErrConcurrency", err)
	}
}

// A guarded command is appended only while the stream it was decided on is
// at its version. Queued with an unguarded one, a stale guard fails alone:
// the other is decided again without it and appended.
func TestUpdateIfFailsOnlyTheStaleGuard(t *testing.T) {
	store := newMemStore()
	r, id := newConversationRepo(t, store)
	other := "workspace-" + newID() // what the guarded commands were decided on
	store.write(t, other, conversation.Archived{})
	stale := eventstore.Guard{StreamID: other, Version: 0}
	current := eventstore.Guard{StreamID: other, Version: 1}
	postIf := func(guard eventstore.Guard, content string) (Written, error) {
		return r.updateIf(t.Context(), id, guard, func(c *conversation.Conversation) error {
			return c.PostMessage(newID(), "u", conversation.RoleUser, content, nil)
		})
	}

	// The first append waits until the next two commands are queued.
	hold := make(chan struct{})
	store.beforeAppend = func(string) {
		store.beforeAppend = nil
		<-hold
	}
	first := make(chan error, 1)
	go func() { _, err := postIf(current, "first"); first <- err }()
	type outcome struct {
		w   Written
		err error
	}
	staleDone, plainDone := make(chan outcome, 1), make(chan outcome, 1)
	waitQueued := func(n int) {
		deadline := time.Now().Add(5 * time.Second)
		for queued(r, id) != n {
			if time.Now().After(deadline) {
				t.Fatalf("%d commands queued, want %d", queued(r, id), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	go func() { w, err := postIf(stale, "stale"); staleDone <- outcome{w, err} }()
	waitQueued(1)
	go func() { w, err := post(r, t.Context(), id, newID()); plainDone <- outcome{w, err} }()
	waitQueued(2)
	close(hold)

	if err := <-first; err != nil {
		t.Fatalf("guard on the current version: %v", err)
	}
	if o := <-staleDone; !errors.Is(o.err, eventstore.ErrGuardChanged) {
		t.Fatalf("guard on an old version: %v, want ErrGuardChanged", o.err)
	}
	o := <-plainDone
	if o.err != nil || o.w.Version != 3 {
		t.Fatalf("the unguarded command of the same round: %+v, %v; want version 3", o.w, o.err)
	}
	events, _ := store.ReadStream(t.Context(), conversation.StreamID(id), 0)
	for _, e := range events {
		if strings.Contains(string(e.Data), `"stale"`) {
			t.Fatalf("the stale command's message was written: %s", e.Data)
		}
	}
	if len(events) != 3 {
		t.Fatalf("%d events, want the creation and two messages", len(events))
	}
}

// queued is how many commands wait for the writer of conversation id.
func queued(r *repository[*conversation.Conversation], id string) int {
	r.writers.mu.Lock()
	defer r.writers.mu.Unlock()
	if w, ok := r.writers.m[conversation.StreamID(id)]; ok {
		return len(w.queue)
	}
	return 0
}
