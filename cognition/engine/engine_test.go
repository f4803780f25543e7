package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/engramhq/engram/cognition"
	"github.com/engramhq/engram/cognition/experts"
	"github.com/engramhq/engram/cognition/inmem"
	"github.com/engramhq/engram/cognition/routing"
	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/domain/memory"
	"github.com/engramhq/engram/domain/task"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/platform/livebus"
	"github.com/engramhq/engram/test/pgtest"
)

// The engine is tested against the real event store and commands; the
// consumer group is played by feeding the reactor the log by hand, and the
// tasks read model by a list of open tasks.

type fakeHasher struct{}

func (fakeHasher) Hash(p string) (string, error)    { return "h:" + p, nil }
func (fakeHasher) Verify(p, h string) (bool, error) { return h == "h:"+p, nil }
func (fakeHasher) VerifyDummy(string)               {}
func (fakeHasher) Issue(string, string, []string) (string, time.Time, error) {
	return "token", time.Now().Add(time.Hour), nil
}
func (fakeHasher) NewSecret(prefix string) (string, error) { return prefix + "secret", nil }
func (fakeHasher) HashSecret(s string) string              { return "h:" + s }

// recorder is a SignalPublisher that keeps what it is sent.
type recorder struct {
	mu  sync.Mutex
	got []livebus.Signal
}

func (r *recorder) Publish(_ context.Context, s livebus.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, s)
	return nil
}

func (r *recorder) find(typ, text string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.got {
		if s.Type == typ && strings.Contains(string(s.Data), text) {
			return true
		}
	}
	return false
}

// wait waits until a signal of type typ whose data holds text was sent.
func (r *recorder) wait(t *testing.T, typ, text string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !r.find(typ, text) {
		if time.Now().After(deadline) {
			r.mu.Lock()
			defer r.mu.Unlock()
			var got []string
			for _, s := range r.got {
				got = append(got, s.Type+" "+string(s.Data))
			}
			t.Fatalf("no %s signal with %q; got %q", typ, text, got)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// openTasks is an OpenTasks that lists what the test puts in it.
type openTasks struct {
	mu           sync.Mutex
	claim, stale []string
}

func (o *openTasks) Claimable(context.Context, []string, time.Time, time.Time, int) ([]string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.claim), nil
}

func (o *openTasks) Stale(context.Context, time.Time, time.Time, int) ([]string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.stale
	o.stale = nil
	return out, nil
}

type harness struct {
	t        *testing.T
	store    *eventstore.Store
	cmds     commands.Commands
	owner    access.Actor
	ws, conv string
	reactor  *Reactor
	fed      int64 // last position fed to the reactor
	sig      *recorder
	queue    chan string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	_, store := pgtest.NewStore(t)
	cmds, err := commands.New(commands.Dependencies{Store: store, Hasher: fakeHasher{}, Tokens: fakeHasher{}, Secrets: fakeHasher{}, RefreshTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	u, err := cmds.Register.Handle(context.Background(), commands.Register{Email: "ada@example.com",
		Password: "correct horse battery", DisplayName: "Ada"})
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, store: store, cmds: cmds, owner: access.Actor{UserID: u.User.ID, Roles: []string{access.RoleUser}}}
}

// sub returns a harness for the subtest t: a workspace and conversation of
// its own, and a reactor fed from now on.
func (h *harness) sub(t *testing.T) *harness {
	t.Helper()
	c := &harness{t: t, store: h.store, cmds: h.cmds, owner: h.owner, sig: &recorder{}, queue: make(chan string, 16)}
	ctx := context.Background()
	ws, err := c.cmds.CreateWorkspace.Handle(ctx, commands.CreateWorkspace{Actor: c.owner, Name: "Lab"})
	if err != nil {
		t.Fatal(err)
	}
	c.ws = ws.Workspace.ID
	conv, err := c.cmds.CreateConversation.Handle(ctx, commands.CreateConversation{Actor: c.owner, WorkspaceID: c.ws, Title: "Chat"})
	if err != nil {
		t.Fatal(err)
	}
	c.conv = conv.Conversation.ID
	router, err := routing.New(routing.KindRules, routing.Config{}, "echo", []string{"echo", "memory", "slow", "flaky", "gated"})
	if err != nil {
		t.Fatal(err)
	}
	c.reactor, err = NewReactor(ReactorConfig{Commands: c.cmds, Router: router, Signals: c.sig,
		Submitted: func(id string) { c.queue <- id }})
	if err != nil {
		t.Fatal(err)
	}
	c.fed = c.last()
	return c
}

// TestEngine runs the engine's tests on one database.
func TestEngine(t *testing.T) {
	h := newHarness(t)
	for _, tt := range []struct {
		name string
		test func(t *testing.T, h *harness)
	}{
		{"LoopRepliesOnce", testLoopRepliesOnce},
		{"RememberAndRecall", testRememberAndRecall},
		{"Retries", testRetries},
		{"CancelMidTask", testCancelMidTask},
		{"Claims", testClaims},
		{"RunRoutesInOneAppend", testRunRoutesInOneAppend},
		{"Typing", testTyping},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.test(t, h) })
	}
}

func (h *harness) post(content string) string {
	h.t.Helper()
	res, err := h.cmds.PostMessage.Handle(context.Background(), commands.PostMessage{Actor: h.owner, ConversationID: h.conv, Content: content})
	if err != nil {
		h.t.Fatal(err)
	}
	return res.MessageID
}

// feed gives the reactor every event it has not seen, as the consumer group
// would, and returns how many it was given.
func (h *harness) feed() int {
	h.t.Helper()
	events, err := h.store.ReadAll(context.Background(), h.fed, 10_000)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, e := range events {
		if err := h.reactor.Apply(context.Background(), nil, e); err != nil {
			h.t.Fatalf("reactor on %s: %v", e.Type, err)
		}
		h.fed = e.GlobalPosition
	}
	return len(events)
}

// replay feeds the reactor the whole log again, from the first event.
func (h *harness) replay() {
	h.t.Helper()
	h.fed = 0
	h.feed()
}

func (h *harness) last() int64 {
	h.t.Helper()
	p, err := h.store.LastPosition(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *harness) taskEvents(id string) []eventstore.Event {
	h.t.Helper()
	events, err := h.store.ReadStream(context.Background(), task.StreamID(id), 0)
	if err != nil {
		h.t.Fatal(err)
	}
	return events
}

func types(events []eventstore.Event) string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = strings.TrimPrefix(e.Type, "task.")
	}
	return strings.Join(out, ",")
}

// waitTask waits until the task's stream ends with an event of type last.
func (h *harness) waitTask(id, last string) []eventstore.Event {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		events := h.taskEvents(id)
		if n := len(events); n > 0 && events[n-1].Type == last {
			return events
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("task %s events = %s, waiting for %s", id, types(events), last)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *harness) worker(experts *cognition.Experts, tasks OpenTasks, tune func(*WorkerConfig)) *Worker {
	h.t.Helper()
	cfg := WorkerConfig{Commands: h.cmds, Experts: experts, Tasks: tasks, Streams: h.store, Signals: h.sig,
		Backoff: 10 * time.Millisecond, ScanInterval: 20 * time.Millisecond, CheckInterval: 10 * time.Millisecond,
		TypingInterval: 20 * time.Millisecond, Timeout: 10 * time.Second}
	if tune != nil {
		tune(&cfg)
	}
	w, err := NewWorker(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = w.Run(ctx)
	}()
	h.t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = w.Shutdown(sctx)
		cancel()
		<-done
	})
	return w
}

func (h *harness) messages() []conversation.MessagePosted {
	h.t.Helper()
	events, err := h.store.ReadStream(context.Background(), conversation.StreamID(h.conv), 0)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []conversation.MessagePosted
	for _, e := range events {
		if e.Type == conversation.EventMessagePosted {
			ev, _ := conversation.Decode(e.Type, e.SchemaVersion, e.Data)
			out = append(out, ev.(conversation.MessagePosted))
		}
	}
	return out
}

func echoExperts(t *testing.T, extra ...cognition.Expert) *cognition.Experts {
	t.Helper()
	set, err := cognition.NewExperts(append([]cognition.Expert{experts.Echo{}, experts.NewRecall(inmem.New(), nil)}, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// The loop: a message is routed, a task is submitted and run, the answer is
// posted once; redelivery, replay and a second claim change nothing.
func testLoopRepliesOnce(t *testing.T, h *harness) {
	h = h.sub(t)
	w := h.worker(echoExperts(t), &openTasks{}, nil)
	msg := h.post("hello")
	h.feed()
	id := <-h.queue
	if id != TaskID(msg) {
		t.Fatalf("task id %s is not derived from the message", id)
	}
	w.Submitted(id)
	events := h.waitTask(id, task.EventCompleted)
	if types(events) != "submitted,started,completed" {
		t.Fatalf("task events = %s", types(events))
	}
	h.feed()
	msgs := h.messages()
	if len(msgs) != 2 || msgs[1].Role != conversation.RoleAssistant || msgs[1].Content != "ECHO: hello" ||
		msgs[1].AuthorID != "expert:echo" || msgs[1].MessageID != ReplyID(id) {
		t.Fatalf("messages = %+v", msgs)
	}
	h.sig.wait(t, livebus.TypeStatus, "Processing your request...")

	// Metadata: everything is correlated with the user's message and caused
	// by it (the reply) or by the task's submission (the task's events).
	conv, _ := h.store.ReadStream(context.Background(), conversation.StreamID(h.conv), 0)
	var userEvent, routingEvent, replyEvent eventstore.Event
	for _, e := range conv {
		switch {
		case e.Type == conversation.EventMessagePosted && e.Metadata.ActorID == h.owner.UserID:
			userEvent = e
		case e.Type == conversation.EventRoutingDecided:
			routingEvent = e
		case e.Type == conversation.EventMessagePosted:
			replyEvent = e
		}
	}
	for _, e := range []eventstore.Event{routingEvent, replyEvent, events[0]} {
		if e.Metadata.CausationID != userEvent.EventID || e.Metadata.CorrelationID == "" {
			t.Fatalf("%s metadata = %+v, want caused by %s", e.Type, e.Metadata, userEvent.EventID)
		}
	}
	if events[1].Metadata.CausationID != events[0].EventID || events[2].Metadata.ActorID != "expert:echo" {
		t.Fatalf("task event metadata = %+v, %+v", events[1].Metadata, events[2].Metadata)
	}
	if replyEvent.Metadata.CorrelationID != routingEvent.Metadata.CorrelationID {
		t.Fatalf("reply correlation %q, routing correlation %q", replyEvent.Metadata.CorrelationID, routingEvent.Metadata.CorrelationID)
	}

	h.feed() // the reply itself is remembered
	before := h.last()
	h.replay()
	w.execute(context.Background(), id, &run{cancel: func(error) {}})
	if after := h.last(); after != before {
		events, _ := h.store.ReadAll(context.Background(), before, 100)
		t.Fatalf("replay and a second run wrote %d events: %s", len(events), types(events))
	}
	if n := len(h.messages()); n != 2 {
		t.Fatalf("%d messages after replay", n)
	}
	select {
	case id := <-h.queue:
		t.Fatalf("replay submitted task %s again", id)
	default:
	}
}

func testRememberAndRecall(t *testing.T, h *harness) {
	h = h.sub(t)
	h.post("/remember Ada: a mathematician")
	h.post("Lunch is at noon")
	h.feed()
	h.sig.wait(t, livebus.TypeStatus, "Remembered: Ada")
	events, err := h.store.ReadStream(context.Background(), "memory-"+h.ws, 0)
	if err != nil {
		t.Fatal(err)
	}
	var stored []memory.ItemStored
	for _, e := range events {
		ev, err := memory.Decode(e.Type, e.SchemaVersion, e.Data)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, ev.(memory.ItemStored))
	}
	if len(stored) != 2 || stored[0].Type != memory.TypeEntity || stored[0].Content != "Ada: a mathematician" ||
		string(stored[0].Metadata) != `{"name":"Ada"}` || stored[1].Type != memory.TypeMessage || stored[1].Content != "Lunch is at noon" {
		t.Fatalf("memory events = %+v", stored)
	}
	select {
	case id := <-h.queue: // "Lunch is at noon" is answered, "/remember" is not
		if id == "" {
			t.Fatal("empty task id")
		}
	default:
		t.Fatal("the plain message submitted no task")
	}
	select {
	case id := <-h.queue:
		t.Fatalf("a second task %s was submitted", id)
	default:
	}
	before := h.last()
	h.replay()
	if h.last() != before {
		t.Fatal("replaying /remember wrote events")
	}
}

// flaky fails its first `failures` attempts (or all, when negative).
type flaky struct {
	failures  int32
	permanent bool
	calls     atomic.Int32
}

func (f *flaky) Name() string           { return "flaky" }
func (f *flaky) Capabilities() []string { return nil }
func (f *flaky) Handle(_ context.Context, t cognition.Task, _ cognition.Progress) (cognition.Result, error) {
	n := f.calls.Add(1)
	if f.failures < 0 || n <= f.failures {
		err := fmt.Errorf("flaky failure %d", n)
		if f.permanent {
			return cognition.Result{}, cognition.Permanent(err)
		}
		return cognition.Result{}, err
	}
	return cognition.Result{Output: "fine after " + fmt.Sprint(n)}, nil
}

// slow works until it is stopped, reporting progress once.
type slow struct {
	started chan string
	stopped chan error
}

func (s *slow) Name() string           { return "slow" }
func (s *slow) Capabilities() []string { return nil }
func (s *slow) Handle(ctx context.Context, t cognition.Task, p cognition.Progress) (cognition.Result, error) {
	if err := p.Report(ctx, 10, "warming up"); err != nil {
		return cognition.Result{}, err
	}
	s.started <- t.ID
	<-ctx.Done()
	s.stopped <- ctx.Err()
	return cognition.Result{}, ctx.Err()
}

// gated answers once it is let go.
type gated struct{ release chan struct{} }

func (g *gated) Name() string           { return "gated" }
func (g *gated) Capabilities() []string { return nil }
func (g *gated) Handle(ctx context.Context, _ cognition.Task, _ cognition.Progress) (cognition.Result, error) {
	select {
	case <-g.release:
		return cognition.Result{Output: "done"}, nil
	case <-ctx.Done():
		return cognition.Result{}, ctx.Err()
	}
}

// An expert is shown typing once its attempt has run for TypingDelay, until
// the attempt ends; an answer that comes sooner shows none.
func testTyping(t *testing.T, h *harness) {
	t.Run("an answer sooner than the delay shows none", func(t *testing.T) {
		h := h.sub(t)
		w := h.worker(echoExperts(t), &openTasks{}, func(c *WorkerConfig) { c.TypingDelay = time.Hour })
		id := h.submitTo("echo", "x")
		w.Submitted(id)
		h.waitTask(id, task.EventCompleted)
		h.sig.wait(t, livebus.TypeStatus, "Processing your request...")
		// The attempt's signals are all sent before its task completes.
		if h.sig.find(livebus.TypeTyping, "") {
			t.Fatalf("typing shown for an answer that came at once: %+v", h.sig.got)
		}
	})
	t.Run("a slower answer shows typing until it ends", func(t *testing.T) {
		h := h.sub(t)
		g := &gated{release: make(chan struct{})}
		w := h.worker(echoExperts(t, g), &openTasks{}, func(c *WorkerConfig) { c.TypingDelay = 10 * time.Millisecond })
		id := h.submitTo("gated", "x")
		w.Submitted(id)
		h.sig.wait(t, livebus.TypeTyping, `"state":"start"`)
		if h.sig.find(livebus.TypeTyping, `"state":"stop"`) {
			t.Fatal("typing stopped while the expert works")
		}
		close(g.release)
		h.waitTask(id, task.EventCompleted)
		h.sig.wait(t, livebus.TypeTyping, `"state":"stop"`)
	})
}

// within receives from ch, failing the test with why after 10 s.
func within[T any](t *testing.T, ch <-chan T, why string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal(why)
	}
	var zero T
	return zero
}

func (h *harness) submitTo(expert, input string) string {
	h.t.Helper()
	h.post("/task " + expert + " " + input)
	h.feed()
	return <-h.queue
}

func testRetries(t *testing.T, h *harness) {
	t.Run("succeeds on the second attempt", func(t *testing.T) {
		h := h.sub(t)
		f := &flaky{failures: 1}
		w := h.worker(echoExperts(t, f), &openTasks{}, nil)
		id := h.submitTo("flaky", "x")
		w.Submitted(id)
		events := h.waitTask(id, task.EventCompleted)
		if types(events) != "submitted,started,started,completed" || f.calls.Load() != 2 {
			t.Fatalf("events = %s after %d calls", types(events), f.calls.Load())
		}
	})
	t.Run("fails after its attempts", func(t *testing.T) {
		h := h.sub(t)
		f := &flaky{failures: -1}
		w := h.worker(echoExperts(t, f), &openTasks{}, func(c *WorkerConfig) { c.Attempts = 3 })
		id := h.submitTo("flaky", "x")
		w.Submitted(id)
		events := h.waitTask(id, task.EventFailed)
		if types(events) != "submitted,started,started,started,failed" {
			t.Fatalf("events = %s", types(events))
		}
		var failed task.Failed
		_ = json.Unmarshal(events[4].Data, &failed)
		if failed.Attempts != 3 || failed.Reason != "flaky failure 3" {
			t.Fatalf("failed = %+v", failed)
		}
		h.sig.wait(t, livebus.TypeStatus, "The flaky expert could not answer: flaky failure 3")
		h.feed()
		for _, m := range h.messages() {
			if m.MessageID == ReplyID(id) {
				t.Fatal("a failed task posted a reply")
			}
		}
	})
	t.Run("a permanent error is not retried", func(t *testing.T) {
		h := h.sub(t)
		f := &flaky{failures: -1, permanent: true}
		w := h.worker(echoExperts(t, f), &openTasks{}, nil)
		id := h.submitTo("flaky", "x")
		w.Submitted(id)
		if events := h.waitTask(id, task.EventFailed); types(events) != "submitted,started,failed" {
			t.Fatalf("events = %s", types(events))
		}
	})
	t.Run("an attempt times out", func(t *testing.T) {
		h := h.sub(t)
		s := &slow{started: make(chan string, 1), stopped: make(chan error, 1)}
		w := h.worker(echoExperts(t, s), &openTasks{}, func(c *WorkerConfig) { c.Attempts = 1; c.Timeout = 100 * time.Millisecond })
		id := h.submitTo("slow", "x")
		w.Submitted(id)
		events := h.waitTask(id, task.EventFailed)
		if types(events) != "submitted,started,progressed,failed" || !strings.Contains(string(events[3].Data), "timed out after 100ms") {
			t.Fatalf("events = %s %s", types(events), events[len(events)-1].Data)
		}
	})
}

func testCancelMidTask(t *testing.T, h *harness) {
	h = h.sub(t)
	s := &slow{started: make(chan string, 1), stopped: make(chan error, 1)}
	w := h.worker(echoExperts(t, s), &openTasks{}, nil)
	id := h.submitTo("slow", "think hard")
	w.Submitted(id)
	within(t, s.started, "the slow expert did not start")
	if _, err := h.cmds.CancelTask.Handle(context.Background(), commands.CancelTask{Actor: h.owner, TaskID: id, Reason: "changed my mind"}); err != nil {
		t.Fatal(err)
	}
	if err := within(t, s.stopped, "the expert was not stopped"); !errors.Is(err, context.Canceled) {
		t.Fatalf("expert stopped with %v", err)
	}
	h.sig.wait(t, livebus.TypeStatus, `"state":"cancelled"`)
	if events := h.taskEvents(id); types(events) != "submitted,started,progressed,cancelled" {
		t.Fatalf("events = %s", types(events))
	}
	// Cancelling again, or after the end, is a conflict.
	_, err := h.cmds.CancelTask.Handle(context.Background(), commands.CancelTask{Actor: h.owner, TaskID: id})
	if domain.ErrorCode(err) != domain.CodeConflict {
		t.Fatalf("second cancel: %v", err)
	}
}

func testClaims(t *testing.T, h *harness) {
	t.Run("one of many workers wins", func(t *testing.T) {
		h := h.sub(t)
		f := &flaky{}
		set := echoExperts(t, f)
		w1 := h.worker(set, &openTasks{}, nil)
		w2 := h.worker(set, &openTasks{}, nil)
		id := h.submitTo("flaky", "once")
		var wg sync.WaitGroup
		for _, w := range []*Worker{w1, w2, w1, w2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.execute(context.Background(), id, &run{cancel: func(error) {}})
			}()
		}
		wg.Wait()
		if events := h.taskEvents(id); types(events) != "submitted,started,completed" || f.calls.Load() != 1 {
			t.Fatalf("events = %s after %d runs", types(events), f.calls.Load())
		}
	})
	t.Run("a scan starts open tasks and fails stale ones", func(t *testing.T) {
		h := h.sub(t)
		open := &openTasks{}
		h.worker(echoExperts(t), open, nil)
		fresh := h.submitTo("echo", "found by a scan")
		stale := h.submitTo("echo", "too old")
		open.mu.Lock()
		open.claim, open.stale = []string{fresh}, []string{stale}
		open.mu.Unlock()
		h.waitTask(fresh, task.EventCompleted)
		events := h.waitTask(stale, task.EventFailed)
		if types(events) != "submitted,failed" || !strings.Contains(string(events[1].Data), "expired") {
			t.Fatalf("stale task events = %s %s", types(events), events[1].Data)
		}
	})
	t.Run("shutdown interrupts a task, which is claimed again after its deadline", func(t *testing.T) {
		h := h.sub(t)
		s := &slow{started: make(chan string, 2), stopped: make(chan error, 2)}
		set := echoExperts(t, s)
		cfg := WorkerConfig{Commands: h.cmds, Experts: set, Tasks: &openTasks{}, Streams: h.store, Timeout: 200 * time.Millisecond, Attempts: 1}
		w, err := NewWorker(cfg)
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = w.Run(context.Background()) }()
		id := h.submitTo("slow", "x")
		w.Submitted(id)
		within(t, s.started, "the slow expert did not start")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		if err := w.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("shutdown = %v", err)
		}
		within(t, s.stopped, "the interrupted expert did not stop")
		if events := h.taskEvents(id); types(events) != "submitted,started,progressed" {
			t.Fatalf("after shutdown: %s", types(events))
		}
		// Another worker claims it once the lease of the interrupted attempt
		// ends. Its attempt times out in turn, and was the last: the time
		// out leaves the expert's progress report (an append) time enough on
		// a loaded machine, where it would otherwise fail the attempt before
		// the expert starts.
		open := &openTasks{claim: []string{id}}
		h.worker(set, open, func(c *WorkerConfig) { c.Timeout = time.Second; c.Attempts = 2 })
		within(t, s.started, "the task was not claimed again")
		events := h.waitTask(id, task.EventFailed)
		if types(events) != "submitted,started,progressed,started,progressed,failed" {
			t.Fatalf("after reclaim: %s", types(events))
		}
	})
}

// A run of one conversation's messages is routed with one append, each
// decision in the order of its message and caused by it; what follows is
// done for every message, and reacting to the run again writes nothing.
func testRunRoutesInOneAppend(t *testing.T, h *harness) {
	h = h.sub(t)
	ctx := context.Background()
	var ids []string
	for i := range 5 {
		ids = append(ids, h.post(fmt.Sprintf("message %d", i)))
	}
	posted, err := h.store.ReadAll(ctx, h.fed, 100)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.reactor.ApplyRun(ctx, posted); err != nil {
		t.Fatal(err)
	}
	conv, err := h.store.ReadStream(ctx, conversation.StreamID(h.conv), 0)
	if err != nil {
		t.Fatal(err)
	}
	var decided []eventstore.Event
	for _, e := range conv {
		if e.Type == conversation.EventRoutingDecided {
			decided = append(decided, e)
		}
	}
	if len(decided) != len(posted) {
		t.Fatalf("%d routing decisions for %d messages", len(decided), len(posted))
	}
	for i, e := range decided {
		ev, err := conversation.Decode(e.Type, e.SchemaVersion, e.Data)
		if err != nil {
			t.Fatal(err)
		}
		if got := ev.(conversation.RoutingDecided).MessageID; got != ids[i] {
			t.Errorf("decision %d is for message %s, want %s", i, got, ids[i])
		}
		if e.Metadata.CausationID != posted[i].EventID {
			t.Errorf("decision %d caused by %s, want %s", i, e.Metadata.CausationID, posted[i].EventID)
		}
		if e.TxID != decided[0].TxID {
			t.Errorf("decision %d appended apart from the first (tx %d, %d)", i, e.TxID, decided[0].TxID)
		}
	}
	for _, id := range ids {
		if got := types(h.taskEvents(TaskID(id))); got != "submitted" {
			t.Errorf("task of %s: %s", id, got)
		}
		select {
		case <-h.queue:
		default:
			t.Errorf("task of %s not handed to the worker", id)
		}
	}
	memoryEvents, err := h.store.ReadStream(ctx, memory.StreamID(h.ws), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(memoryEvents) != len(ids) {
		t.Fatalf("%d memory items for %d messages", len(memoryEvents), len(ids))
	}

	before := h.last()
	if err := h.reactor.ApplyRun(ctx, posted); err != nil {
		t.Fatal(err)
	}
	if after := h.last(); after != before {
		t.Fatalf("reacting to the run again appended %d events", after-before)
	}
}
