package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/engramhq/engram/cognition"
	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/task"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/platform/livebus"
)

// OpenTasks is where a worker finds work (see postgres.Tasks).
type OpenTasks interface {
	// Claimable returns tasks for the given experts, submitted after since,
	// that may be claimed at now, most urgent first.
	Claimable(ctx context.Context, experts []string, now, since time.Time, limit int) ([]string, error)
	// Stale returns tasks submitted at or before since that nobody runs.
	Stale(ctx context.Context, now, since time.Time, limit int) ([]string, error)
}

// StreamReader reads streams of the log (see eventstore.Store).
type StreamReader interface {
	ReadStream(ctx context.Context, streamID string, afterVersion int) ([]eventstore.Event, error)
	// ReadStreams reads the tails of several streams in one query.
	ReadStreams(ctx context.Context, tails []eventstore.StreamTail) (map[string][]eventstore.Event, error)
	// FirstEvent returns a stream's first event, and false when the stream
	// does not exist.
	FirstEvent(ctx context.Context, streamID string) (eventstore.Event, bool, error)
}

// DefaultTypingDelay is how long an attempt runs before its expert is shown
// typing, unless WorkerConfig.TypingDelay says otherwise: about what a
// person notices as a wait.
const DefaultTypingDelay = 300 * time.Millisecond

// WorkerConfig configures a Worker.
type WorkerConfig struct {
	Commands commands.Commands
	Experts  *cognition.Experts
	Tasks    OpenTasks
	Streams  StreamReader
	// Signals, when set, receives typing, status and delta signals.
	Signals cognition.SignalPublisher
	// Wake, when set, subscribes to appends (eventstore.Notifier.Subscribe):
	// a cancellation is then noticed at once instead of at the next check.
	Wake func() (<-chan struct{}, func())
	// ID names the worker in task.started; default: host, process and a
	// random suffix.
	ID string
	// Concurrency is how many tasks run at once (default 4).
	Concurrency int
	// Timeout bounds one attempt (default 2 minutes).
	Timeout time.Duration
	// Attempts is how many attempts a task gets (default 3).
	Attempts int
	// Backoff is the wait before the second attempt, doubled before each
	// next one (default 500ms).
	Backoff time.Duration
	// MaxAge is how long after its submission a task may still be started;
	// older ones are failed, never run (default 10 minutes).
	MaxAge time.Duration
	// ScanInterval is how often the open tasks are looked for (default 1s);
	// tasks submitted by this instance's reactor start at once.
	ScanInterval time.Duration
	// CheckInterval is how often running tasks are checked for a
	// cancellation when no append wakes the worker (default 1s).
	CheckInterval time.Duration
	// TypingDelay is how long an attempt runs before its expert is shown
	// typing (default DefaultTypingDelay): an answer that comes sooner
	// shows none, rather than an indicator that flickers on and off.
	TypingDelay time.Duration
	// TypingInterval is how often a typing signal is repeated while an
	// expert works (default 3s).
	TypingInterval time.Duration
	Logger         *slog.Logger
}

// Worker claims submitted tasks and runs their experts, outside any
// transaction. Claims go through the task's stream: task.started is
// appended with the expected version, so of several workers (in one
// instance or many) exactly one wins a task, and a task that has ended is
// never started again. Each attempt has a deadline; a task whose worker
// died is claimed again once it passes.
type Worker struct {
	cfg WorkerConfig
	sig signaler

	queue    chan string
	stopping chan struct{}
	stopOnce sync.Once

	runCtx    context.Context
	cancelRun context.CancelFunc
	wg        sync.WaitGroup

	mu      sync.Mutex
	running map[string]*run
	// waiting are tasks to start when a slot frees, in order.
	waiting    []string
	waitingSet map[string]bool
}

// run is a task this worker has claimed.
type run struct {
	cancel context.CancelCauseFunc
	seen   int // last version of the task stream checked for a cancellation
}

// Causes of a run's end other than its expert returning.
var (
	errCancelled = errors.New("the task was cancelled")
	errTakenOver = errors.New("the task was taken over by another worker")
	errShutdown  = errors.New("the server is shutting down")
)

// NewWorker returns a Worker. It refuses missing commands, experts, open
// tasks or stream reader.
func NewWorker(cfg WorkerConfig) (*Worker, error) {
	c := cfg.Commands
	if cfg.Experts == nil || cfg.Tasks == nil || cfg.Streams == nil || c.StartTask == nil || c.CompleteTask == nil ||
		c.FailTask == nil || c.ReportTaskProgress == nil || c.PostReply == nil {
		return nil, errors.New("engine: worker needs experts, open tasks, a stream reader and the task commands")
	}
	setDefault(&cfg.Concurrency, 4)
	setDefault(&cfg.Attempts, 3)
	setDefault(&cfg.Timeout, 2*time.Minute)
	setDefault(&cfg.Backoff, 500*time.Millisecond)
	setDefault(&cfg.MaxAge, 10*time.Minute)
	setDefault(&cfg.ScanInterval, time.Second)
	setDefault(&cfg.CheckInterval, time.Second)
	setDefault(&cfg.TypingDelay, DefaultTypingDelay)
	setDefault(&cfg.TypingInterval, 3*time.Second)
	if cfg.ID == "" {
		cfg.ID = workerID()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Logger = cfg.Logger.With("component", "worker", "worker", cfg.ID)
	runCtx, cancel := context.WithCancel(context.Background())
	return &Worker{cfg: cfg, sig: signaler{publisher: cfg.Signals, logger: cfg.Logger},
		queue: make(chan string, 256), stopping: make(chan struct{}),
		runCtx: runCtx, cancelRun: cancel, running: map[string]*run{}, waitingSet: map[string]bool{}}, nil
}

func setDefault[T int | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

func workerID() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f {
			return -1
		}
		return r
	}, host)
	if len(host) > 64 {
		host = host[:64]
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// ID returns the worker's name.
func (w *Worker) ID() string { return w.cfg.ID }

// Submitted tells the worker of a task just submitted, to start it at once.
// It never blocks: when the worker is busy the task waits for a scan.
func (w *Worker) Submitted(taskID string) {
	select {
	case w.queue <- taskID:
	default:
	}
}

// Run claims and runs tasks until Shutdown is called or ctx ends.
func (w *Worker) Run(ctx context.Context) error {
	checkDone := make(chan struct{})
	go func() {
		defer close(checkDone)
		w.watchCancellations(ctx)
	}()
	defer func() { <-checkDone }()
	scan := time.NewTicker(w.cfg.ScanInterval)
	defer scan.Stop()
	w.scan(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.stopping:
			return nil
		case id := <-w.queue:
			w.start(id)
		case <-scan.C:
			w.scan(ctx)
		}
	}
}

// Shutdown stops claiming tasks and waits for the running ones to finish.
// When ctx ends first, it cancels them (they are left running, to be claimed
// again once their deadline passes) and waits for their experts to return.
func (w *Worker) Shutdown(ctx context.Context) error {
	// Under the lock: a task being started either started before (and is
	// waited for) or sees the worker stopping.
	w.mu.Lock()
	w.stopOnce.Do(func() { close(w.stopping) })
	w.mu.Unlock()
	done := make(chan struct{})
	go func() {
		w.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		w.cancelRun()
		return nil
	case <-ctx.Done():
	}
	w.mu.Lock()
	for _, r := range w.running {
		r.cancel(errShutdown)
	}
	w.mu.Unlock()
	w.cancelRun()
	<-done
	return ctx.Err()
}

func (w *Worker) stopped() bool {
	select {
	case <-w.stopping:
		return true
	default:
		return false
	}
}

// scan fails the stale tasks and starts the claimable ones.
func (w *Worker) scan(ctx context.Context) {
	now := time.Now()
	since := now.Add(-w.cfg.MaxAge)
	stale, err := w.cfg.Tasks.Stale(ctx, now, since, 20)
	if err != nil && ctx.Err() == nil {
		w.cfg.Logger.Warn("cannot look for stale tasks", "err", err)
	}
	for _, id := range stale {
		reason := fmt.Sprintf("expired: not run within %s of its submission", w.cfg.MaxAge)
		_, err := w.cfg.Commands.FailTask.Handle(ctx, commands.FailTask{TaskID: id, Worker: w.cfg.ID, Reason: reason})
		if err == nil {
			w.cfg.Logger.Info("stale task failed", "task_id", id)
		} else if !isLostRace(err) {
			w.cfg.Logger.Warn("cannot fail a stale task", "task_id", id, "err", err)
		}
	}
	ids, err := w.cfg.Tasks.Claimable(ctx, w.cfg.Experts.Names(), now, since, 2*w.cfg.Concurrency)
	if err != nil && ctx.Err() == nil {
		w.cfg.Logger.Warn("cannot look for tasks", "err", err)
	}
	for _, id := range ids {
		w.start(id)
	}
}

// maxWaiting bounds the tasks waiting for a free slot; beyond it a task is
// left to a later scan.
const maxWaiting = 10_000

// start runs a task in its own goroutine unless it runs already or the
// worker is stopping. When every slot is taken, the task waits for the
// first one to free (in submission order), rather than for the next scan.
func (w *Worker) start(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped() {
		return
	}
	if _, ok := w.running[id]; ok || w.waitingSet[id] {
		return
	}
	if len(w.running) >= w.cfg.Concurrency {
		if len(w.waiting) < maxWaiting {
			w.waiting = append(w.waiting, id)
			w.waitingSet[id] = true
		}
		return
	}
	w.startLocked(id)
}

// next starts the first waiting task, if any. w.mu is held.
func (w *Worker) next() {
	for len(w.waiting) > 0 && len(w.running) < w.cfg.Concurrency && !w.stopped() {
		id := w.waiting[0]
		w.waiting = w.waiting[1:]
		delete(w.waitingSet, id)
		if _, ok := w.running[id]; !ok {
			w.startLocked(id)
		}
	}
}

// startLocked runs a task in its own goroutine. w.mu is held.
func (w *Worker) startLocked(id string) {
	ctx, cancel := context.WithCancelCause(w.runCtx)
	r := &run{cancel: cancel}
	w.running[id] = r
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer func() {
			w.mu.Lock()
			delete(w.running, id)
			w.next()
			w.mu.Unlock()
			cancel(nil)
		}()
		w.execute(ctx, id, r)
	}()
}

// isLostRace reports whether a task command failed because another worker,
// a cancellation or a concurrent append got there first.
func isLostRace(err error) bool {
	code := domain.ErrorCode(err)
	return code == domain.CodeConflict || code == domain.CodeNotFound || errors.Is(err, eventstore.ErrConcurrency)
}

// execute claims the task and runs its attempts.
func (w *Worker) execute(ctx context.Context, id string, r *run) {
	log := w.cfg.Logger.With("task_id", id)
	origin, submitted, err := w.origin(ctx, id)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("cannot read a task's submission", "err", err)
		}
		return
	}
	expert, ok := w.cfg.Experts.Get(submitted.Expert)
	if !ok {
		// Another instance may run it; if none does, it expires.
		log.Debug("task left to an instance that runs its expert", "expert", submitted.Expert)
		return
	}
	// Every event of the task is caused by its submission, and correlated
	// with the request that posted the message.
	ctx = commands.WithMetadata(ctx, eventstore.Metadata{CorrelationID: origin.Metadata.CorrelationID,
		CausationID: origin.EventID, ActorID: commands.ExpertAuthor(submitted.Expert)})
	claim, err := w.claim(ctx, id, r)
	if err != nil {
		if !isLostRace(err) && ctx.Err() == nil {
			log.Warn("cannot claim a task", "err", err)
		}
		return
	}
	st := claim.Task
	log = log.With("expert", st.Expert, "conversation_id", st.ConversationID)
	t := cognition.Task{ID: id, WorkspaceID: st.WorkspaceID, ConversationID: st.ConversationID, MessageID: st.MessageID,
		RequestedBy: st.RequestedBy, Expert: st.Expert, Input: st.Input, Priority: st.Priority, Attempt: st.Attempts}
	backoff := w.cfg.Backoff
	for {
		res, err := w.attempt(ctx, expert, t)
		if cause := context.Cause(ctx); cause != nil {
			w.interrupted(ctx, t, cause, log)
			return
		}
		if err == nil {
			w.complete(ctx, t, res.Output, log)
			return
		}
		log.Info("attempt failed", "attempt", t.Attempt, "err", err)
		if cognition.IsPermanent(err) || t.Attempt >= w.cfg.Attempts {
			w.fail(ctx, t, err.Error(), log)
			return
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			w.interrupted(ctx, t, context.Cause(ctx), log)
			return
		}
		backoff *= 2
		again, err := w.cfg.Commands.StartTask.Handle(ctx, commands.StartTask{TaskID: id, Worker: w.cfg.ID, Timeout: w.lease(), Retry: true})
		if err != nil {
			if !isLostRace(err) {
				log.Warn("cannot start another attempt", "err", err)
			}
			return
		}
		t.Attempt = again.Task.Attempts
	}
}

// lease is how long an attempt keeps its claim: its timeout and a margin,
// so that the deadline never passes while the attempt still runs.
func (w *Worker) lease() time.Duration { return w.cfg.Timeout + w.cfg.Timeout/10 + time.Second }

// claim appends task.started and starts watching the task for a
// cancellation.
func (w *Worker) claim(ctx context.Context, id string, r *run) (commands.TaskResult, error) {
	res, err := w.cfg.Commands.StartTask.Handle(ctx, commands.StartTask{TaskID: id, Worker: w.cfg.ID, Timeout: w.lease()})
	if err != nil {
		return res, err
	}
	w.mu.Lock()
	r.seen = res.Version
	w.mu.Unlock()
	return res, nil
}

// origin returns the event that submitted the task, and what it says.
func (w *Worker) origin(ctx context.Context, id string) (eventstore.Event, task.Submitted, error) {
	first, ok, err := w.cfg.Streams.FirstEvent(ctx, task.StreamID(id))
	if err != nil {
		return eventstore.Event{}, task.Submitted{}, err
	}
	if !ok || first.Type != task.EventSubmitted {
		return eventstore.Event{}, task.Submitted{}, fmt.Errorf("task %s was not submitted", id)
	}
	ev, err := task.Decode(first.Type, first.SchemaVersion, first.Data)
	if err != nil {
		return eventstore.Event{}, task.Submitted{}, err
	}
	return first, ev.(task.Submitted), nil
}

// attempt runs the expert once, with the attempt's timeout, sending typing
// signals while it works.
func (w *Worker) attempt(ctx context.Context, expert cognition.Expert, t cognition.Task) (res cognition.Result, err error) {
	actx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	typing := func(on bool) {
		state := "stop"
		if on {
			state = "start"
		}
		w.sig.publish(context.WithoutCancel(ctx), livebus.TypeTyping, t.WorkspaceID, t.ConversationID, commands.ExpertAuthor(t.Expert),
			typingData{State: state, TaskID: t.ID, Expert: t.Expert})
	}
	// Typing shows once the attempt has run for TypingDelay, is repeated
	// every TypingInterval, and stops with the attempt; an attempt that
	// ends sooner shows none.
	stopTyping := make(chan struct{})
	typingDone := make(chan struct{})
	typed := false // written before typingDone closes
	go func() {
		defer close(typingDone)
		delay := time.NewTimer(w.cfg.TypingDelay)
		defer delay.Stop()
		select {
		case <-stopTyping:
			return
		case <-delay.C:
		}
		typing(true)
		typed = true
		tick := time.NewTicker(w.cfg.TypingInterval)
		defer tick.Stop()
		for {
			select {
			case <-stopTyping:
				return
			case <-tick.C:
				typing(true)
			}
		}
	}()
	defer func() {
		close(stopTyping)
		<-typingDone
		if typed {
			typing(false)
		}
	}()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("expert %s panicked: %v", t.Expert, p)
		}
	}()
	res, err = expert.Handle(actx, t, &progress{w: w, task: t})
	if err != nil && errors.Is(actx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
		err = fmt.Errorf("attempt %d timed out after %s", t.Attempt, w.cfg.Timeout)
	}
	return res, err
}

// complete records the answer and posts it as the reply.
func (w *Worker) complete(ctx context.Context, t cognition.Task, output string, log *slog.Logger) {
	if utf8.RuneCountInString(output) > task.MaxOutputRunes {
		output = string([]rune(output)[:task.MaxOutputRunes-1]) + "…"
	}
	reply := ""
	if strings.TrimSpace(output) != "" {
		reply = ReplyID(t.ID)
	}
	_, err := w.cfg.Commands.CompleteTask.Handle(ctx, commands.CompleteTask{TaskID: t.ID, Worker: w.cfg.ID, Output: output, ReplyMessageID: reply})
	switch {
	case err == nil:
		log.Debug("task completed", "attempt", t.Attempt)
		if reply != "" {
			// Posting the reply at once saves the reactor's round trip; the
			// reactor posts it too (the same id: only one is written) when
			// this instance stops in between.
			completed := task.Completed{Output: output, ReplyMessageID: reply}
			if _, err := w.cfg.Commands.PostReply.Handle(ctx, commands.PostReply{TaskID: t.ID, Completed: &completed}); err != nil {
				log.Debug("reply left to the reactor", "err", err)
			}
		}
	case isLostRace(err):
		log.Info("answer dropped: the task changed meanwhile", "err", err)
	default:
		log.Error("cannot complete a task; it will be claimed again after its deadline", "err", err)
	}
}

// fail gives the task up and tells the conversation.
func (w *Worker) fail(ctx context.Context, t cognition.Task, reason string, log *slog.Logger) {
	reason = cognition.Excerpt(reason, task.MaxReasonRunes)
	_, err := w.cfg.Commands.FailTask.Handle(ctx, commands.FailTask{TaskID: t.ID, Worker: w.cfg.ID, Reason: reason})
	if err != nil {
		if !isLostRace(err) {
			log.Error("cannot fail a task", "err", err)
		}
		return
	}
	log.Info("task failed", "attempts", t.Attempt)
	w.sig.publish(ctx, livebus.TypeStatus, t.WorkspaceID, t.ConversationID, commands.ExpertAuthor(t.Expert),
		statusData{TaskID: t.ID, Expert: t.Expert, State: "failed", Text: fmt.Sprintf("The %s expert could not answer: %s", t.Expert, reason)})
}

// interrupted handles a run that ended for another reason than its expert:
// cancelled, taken over or shut down.
func (w *Worker) interrupted(ctx context.Context, t cognition.Task, cause error, log *slog.Logger) {
	switch {
	case errors.Is(cause, errCancelled):
		log.Info("task cancelled while running")
		w.sig.publish(context.WithoutCancel(ctx), livebus.TypeStatus, t.WorkspaceID, t.ConversationID, commands.ExpertAuthor(t.Expert),
			statusData{TaskID: t.ID, Expert: t.Expert, State: "cancelled", Text: "Cancelled."})
	case errors.Is(cause, errTakenOver):
		log.Info("task taken over by another worker")
	default:
		log.Info("task interrupted; it will be claimed again after its deadline", "cause", cause)
	}
}

// watchCancellations cancels the runs whose task was cancelled (or taken
// over) meanwhile. It reads the new events of each running task's stream
// whenever something is appended, and at least every CheckInterval.
func (w *Worker) watchCancellations(ctx context.Context) {
	var wake <-chan struct{}
	if w.cfg.Wake != nil {
		ch, stop := w.cfg.Wake()
		defer stop()
		wake = ch
	}
	tick := time.NewTicker(w.cfg.CheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.runCtx.Done():
			return
		case <-wake:
		case <-tick.C:
		}
		w.checkCancellations(ctx)
		// Appends come by the hundred a second under load: the wake-ups
		// that arrive meanwhile are taken together by the next check.
		select {
		case <-ctx.Done():
			return
		case <-time.After(minCheckGap):
		}
	}
}

// minCheckGap is the least time between two checks for cancellations: a
// cancellation is noticed within it.
const minCheckGap = 50 * time.Millisecond

func (w *Worker) checkCancellations(ctx context.Context) {
	w.mu.Lock()
	runs := make(map[string]*run, len(w.running))
	seen := make(map[string]int, len(w.running))
	for id, r := range w.running {
		if r.seen > 0 {
			runs[id], seen[id] = r, r.seen
		}
	}
	w.mu.Unlock()
	if len(runs) == 0 {
		return
	}
	// The new events of every running task, in one query.
	tails := make([]eventstore.StreamTail, 0, len(runs))
	for id := range runs {
		tails = append(tails, eventstore.StreamTail{StreamID: task.StreamID(id), AfterVersion: seen[id]})
	}
	byStream, err := w.cfg.Streams.ReadStreams(ctx, tails)
	if err != nil {
		if ctx.Err() == nil {
			w.cfg.Logger.Debug("cannot check the running tasks for a cancellation", "err", err)
		}
		return
	}
	for id, r := range runs {
		events := byStream[task.StreamID(id)]
		for _, e := range events {
			switch e.Type {
			case task.EventCancelled:
				r.cancel(errCancelled)
			case task.EventStarted:
				if ev, err := task.Decode(e.Type, e.SchemaVersion, e.Data); err == nil && ev.(task.Started).Worker != w.cfg.ID {
					r.cancel(errTakenOver)
				}
			}
		}
		if n := len(events); n > 0 {
			w.mu.Lock()
			r.seen = max(r.seen, events[n-1].StreamVersion)
			w.mu.Unlock()
		}
	}
}

// progress is the Progress of one attempt.
type progress struct {
	w    *Worker
	task cognition.Task

	mu     sync.Mutex
	deltas int
}

// Report implements cognition.Progress.
func (p *progress) Report(ctx context.Context, percent int, note string) error {
	_, err := p.w.cfg.Commands.ReportTaskProgress.Handle(ctx, commands.ReportTaskProgress{TaskID: p.task.ID, Worker: p.w.cfg.ID,
		Progress: percent, Note: note})
	if err != nil {
		return fmt.Errorf("report progress of task %s: %w", p.task.ID, err)
	}
	return nil
}

// Status implements cognition.Progress.
func (p *progress) Status(ctx context.Context, text string) {
	p.w.sig.publish(ctx, livebus.TypeStatus, p.task.WorkspaceID, p.task.ConversationID, commands.ExpertAuthor(p.task.Expert),
		statusData{TaskID: p.task.ID, Expert: p.task.Expert, State: "running", Text: text})
}

// Delta implements cognition.Progress.
func (p *progress) Delta(ctx context.Context, text string) {
	p.mu.Lock()
	i := p.deltas
	p.deltas++
	p.mu.Unlock()
	p.w.sig.publish(ctx, livebus.TypeDelta, p.task.WorkspaceID, p.task.ConversationID, commands.ExpertAuthor(p.task.Expert),
		deltaData{TaskID: p.task.ID, Expert: p.task.Expert, ReplyMessageID: ReplyID(p.task.ID), Index: i, Text: text})
}
