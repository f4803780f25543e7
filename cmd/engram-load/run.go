package main

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ack is an acknowledged POST: the position of its event and the index of
// its conversation.
type ack struct {
	pos  int64
	conv int
}

// workerResult is what one worker measured; merged after the window.
type workerResult struct {
	cmd, get       histogram
	acked          []ack
	commands, gets int64
	unsent         int64 // scheduled operations left when the window ended

	// Open loop only.
	offered, refused, failed int64
	refusal                  histogram
	refusalServed            histogram // refusals from the moment they were sent
	sendLag                  histogram // sent after the scheduled time by
}

func (r *runner) execute(ctx context.Context) (*Report, error) {
	o, rep := r.o, r.report
	metricsClient := &http.Client{Timeout: 5 * time.Second}
	sample := func() serverSample {
		s, err := scrape(ctx, metricsClient, r.api.base)
		if err != nil && rep.MetricsError == "" {
			rep.MetricsError = err.Error()
		}
		return s
	}
	hook := func(event string) {
		if o.Window != nil {
			o.Window(event)
		}
	}
	hook("setup")
	before := sample()

	subsCtx, stopSubs := context.WithCancel(ctx)
	defer stopSubs()
	subs, subsDone := r.subscribe(subsCtx)

	if o.OpenLoop {
		r.warm(ctx, openLoopSenders)
	}
	hook("start")
	start := sample()
	r.api.errors = &errorCounts{} // count the window's errors only
	windowStart := time.Now()
	deadline := windowStart.Add(o.Duration)

	peakCtx, stopPeak := context.WithCancel(ctx)
	peak := make(chan float64, 1)
	go func() { peak <- r.watchRSS(peakCtx, metricsClient) }()

	results := r.work(ctx, deadline)
	rep.Window = time.Since(windowStart)
	hook("end")

	rep.ProjectionLag, rep.LagSkipped, rep.LagFailed = r.lag.wait()
	var acked []ack
	var cmd, get, refusals, refusalsServed, sendLag histogram
	for _, w := range results {
		cmd.merge(&w.cmd)
		get.merge(&w.get)
		acked = append(acked, w.acked...)
		rep.Commands += w.commands
		rep.Gets += w.gets
		rep.Unsent += w.unsent
		rep.Offered += w.offered
		rep.Refused += w.refused
		rep.Failed += w.failed
		refusals.merge(&w.refusal)
		refusalsServed.merge(&w.refusalServed)
		sendLag.merge(&w.sendLag)
	}
	rep.RefusalLatency, rep.RefusalServed, rep.SendLag = refusals.summary(), refusalsServed.summary(), sendLag.summary()
	rep.Drained = r.drain(ctx, subs, acked)
	hook("drained")
	after := sample()
	stopPeak()
	stopSubs()
	subsDone.Wait()

	secs := rep.Window.Seconds()
	rep.CommandsPerSec = float64(rep.Commands) / secs
	rep.GetsPerSec = float64(rep.Gets) / secs
	rep.CommandLatency, rep.GetLatency = cmd.summary(), get.summary()
	r.deliveries(subs, acked)
	rep.DeliveriesPerSec = float64(rep.Delivered) / secs
	rep.Errors = r.api.errors.snapshot()

	diff := func(name string) float64 {
		a, okA := after.get(name)
		b, okB := start.get(name)
		if !okA || !okB {
			return -1
		}
		return a - b
	}
	rep.ServerCPU = diff(famCPU)
	rep.ServerFramesSent = diff(famFramesSent)
	rep.ServerSlowDrops = diff(famSlowDisc)
	rep.ServerEvents = diff(famAppendsTotal)
	rep.ServerSSEConns, _ = after.get(famSSEConns)
	rep.ServerRSS, _ = after.get(famRSS)
	rep.ServerRSSBefore, _ = before.get(famRSS)
	rep.ServerInuse = inuse(after)
	rep.ServerInuseBefore = inuse(before)
	rep.ServerPeakRSS = max(<-peak, rep.ServerRSS)
	return rep, ctx.Err()
}

// inuse is the memory the server's Go runtime uses for heap and stacks.
func inuse(s serverSample) float64 {
	h, _ := s.get(famHeapInuse)
	st, _ := s.get(famStackInuse)
	return h + st
}

// watchRSS samples the server's RSS every second and returns the peak.
func (r *runner) watchRSS(ctx context.Context, client *http.Client) float64 {
	var peak float64
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return peak
		case <-t.C:
			if s, err := scrape(ctx, client, r.api.base); err == nil {
				v, _ := s.get(famRSS)
				peak = max(peak, v)
			}
		}
	}
}

// work runs the scenario's workers until deadline and returns what each
// measured.
func (r *runner) work(ctx context.Context, deadline time.Time) []*workerResult {
	o := r.o
	if o.Scenario == scenarioIdle {
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		return nil
	}
	if o.OpenLoop {
		return r.openLoop(ctx, deadline)
	}
	workers := o.Concurrency
	if o.Scenario == scenarioAppend {
		workers = min(o.Concurrency, len(r.convs)) // one writer per conversation
	}
	var tokens <-chan time.Time
	if o.Rate > 0 {
		tokens = pace(ctx, o.Rate, deadline, workers)
	}
	results := make([]*workerResult, workers)
	var wg sync.WaitGroup
	for w := range workers {
		results[w] = &workerResult{}
		wg.Go(func() { r.worker(ctx, w, deadline, tokens, results[w]) })
	}
	wg.Wait()
	return results
}

// pace sends the scheduled start of each operation, rate per second, until
// deadline. Latencies are measured from the schedule, so a server that
// falls behind is not flattered by the client waiting for it (coordinated
// omission).
func pace(ctx context.Context, rate float64, deadline time.Time, buffer int) <-chan time.Time {
	ch := make(chan time.Time, buffer)
	go func() {
		defer close(ch)
		interval := time.Duration(float64(time.Second) / rate)
		next := time.Now()
		for next.Before(deadline) {
			if d := time.Until(next); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
			}
			select {
			case ch <- next:
			case <-ctx.Done():
				return
			}
			next = next.Add(interval)
		}
	}()
	return ch
}

func (r *runner) worker(ctx context.Context, w int, deadline time.Time, tokens <-chan time.Time, res *workerResult) {
	conv := w % max(len(r.convs), 1)
	for i := 0; ; i++ {
		var scheduled time.Time
		if tokens != nil {
			t, ok := <-tokens
			if !ok || ctx.Err() != nil {
				return
			}
			if time.Now().After(deadline) {
				// Too late to send: the run stops at its deadline even when
				// the server fell behind the rate.
				res.unsent++
				continue
			}
			scheduled = t
		} else {
			scheduled = time.Now()
			if !scheduled.Before(deadline) || ctx.Err() != nil {
				return
			}
		}
		switch r.o.Scenario {
		case scenarioAppend, scenarioSSE:
			r.post(ctx, conv, scheduled, res)
		case scenarioRead:
			r.read(ctx, conv, r.o.Read, scheduled, res)
			conv = (conv + 1) % len(r.convs)
		case scenarioMixed:
			if i%4 == 0 {
				r.post(ctx, conv, scheduled, res)
			} else {
				r.read(ctx, conv, []string{"conversation", "messages"}[i%2], scheduled, res)
			}
		case scenarioGet:
			r.getPath(ctx, r.o.Path, scheduled, res)
		}
	}
}

// openLoopSenders is how many connections an open-loop run sends from: more
// than the server lets in at once (its command slots and queue, 320 by
// default), so that a scheduled request finds a connection free unless the
// server holds every one of them.
const openLoopSenders = 512

// openLoop posts at o.Rate until deadline (or GETs, in the get scenario),
// round robin over the conversations, from openLoopSenders connections
// opened before the window, and sorts the answers into accepted (201, or
// 200 for a GET), refused for overload (503, 429) and failed. Every latency is taken from the scheduled send time, and
// how late each request left after it is recorded too: a client that falls
// behind its own schedule shows there, not as the server's.
func (r *runner) openLoop(ctx context.Context, deadline time.Time) []*workerResult {
	// The schedule never waits for the senders: it is buffered whole.
	planned := int(min(r.o.Rate*time.Until(deadline).Seconds(), 1<<20)) + 1
	schedule := pace(ctx, r.o.Rate, deadline, planned)
	var next atomic.Int64
	results := make([]*workerResult, openLoopSenders)
	var wg sync.WaitGroup
	for i := range results {
		res := &workerResult{}
		results[i] = res
		wg.Go(func() {
			for scheduled := range schedule {
				if ctx.Err() != nil {
					return
				}
				if time.Now().After(deadline) {
					res.unsent++
					continue
				}
				res.sendLag.record(time.Since(scheduled))
				r.offer(ctx, int(next.Add(1)-1)%max(len(r.convs), 1), scheduled, res)
			}
		})
	}
	wg.Wait()
	return results
}

// offer sends one request of an open-loop run — a POST, or the get
// scenario's GET — and sorts its answer.
func (r *runner) offer(ctx context.Context, conv int, scheduled time.Time, res *workerResult) {
	res.offered++
	sent := time.Now()
	var ans answer
	var err error
	if r.o.Scenario == scenarioGet {
		ans, err = r.api.get(ctx, "GET "+r.o.Path, r.o.Path, "")
	} else {
		path := "/v1/conversations/" + r.convs[conv] + "/messages"
		ans, err = r.api.call(ctx, "POST messages", http.MethodPost, path, r.writer(conv).token, r.message(conv))
	}
	took := time.Since(scheduled)
	switch {
	case err == nil && ans.status == http.StatusOK:
		res.get.record(took)
		res.gets++
	case err == nil && ans.status == http.StatusCreated:
		res.cmd.record(took)
		res.commands++
		res.acked = append(res.acked, ack{pos: ans.position(), conv: conv})
	case err == nil && (ans.status == http.StatusServiceUnavailable || ans.status == http.StatusTooManyRequests):
		res.refusal.record(took)
		res.refusalServed.record(time.Since(sent))
		res.refused++
	default:
		res.failed++
	}
}

// warm opens n connections to the server before the window, so that the
// window measures requests rather than dialling: n requests at once, each
// on a connection of its own unless another one came free first.
func (r *runner) warm(ctx context.Context, n int) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			<-start
			_, _ = r.api.call(ctx, "GET warm-up", http.MethodGet, "/healthz", "", nil)
		})
	}
	close(start)
	wg.Wait()
}

func (r *runner) post(ctx context.Context, conv int, scheduled time.Time, res *workerResult) {
	path := "/v1/conversations/" + r.convs[conv] + "/messages"
	ans, err := r.api.call(ctx, "POST messages", http.MethodPost, path, r.writer(conv).token, r.message(int(res.commands)))
	if err != nil || ans.status != http.StatusCreated {
		return
	}
	answered := time.Now()
	res.cmd.record(answered.Sub(scheduled))
	res.commands++
	pos := ans.position()
	res.acked = append(res.acked, ack{pos: pos, conv: conv})
	if r.o.LagSample > 0 && mrand.Float64() < r.o.LagSample {
		r.lag.probe(ctx, r.api, path+"?limit=1", r.writer(conv).token, pos, answered)
	}
}

// lagProbes measure projection lag beside the workers, so that a read
// model falling behind does not slow the rate of the POSTs: each reads a
// conversation's messages with Engram-Min-Position set to a POST's position
// and times the answer from the POST's answer.
type lagProbes struct {
	slots   chan struct{} // probes in flight, at most its capacity
	wg      sync.WaitGroup
	mu      sync.Mutex
	lag     histogram
	skipped int64 // probes not sent: too many in flight
	failed  int64 // probes answered with an error (the wait timed out)
}

func newLagProbes(inFlight int) *lagProbes {
	return &lagProbes{slots: make(chan struct{}, inFlight)}
}

func (l *lagProbes) probe(ctx context.Context, a *api, path, token string, pos int64, answered time.Time) {
	select {
	case l.slots <- struct{}{}:
	default:
		l.mu.Lock()
		l.skipped++
		l.mu.Unlock()
		return
	}
	l.wg.Go(func() {
		defer func() { <-l.slots }()
		ans, err := a.get(ctx, "GET lag-probe", path, token, "Engram-Min-Position", strconv.FormatInt(pos, 10))
		if err != nil || ans.status != http.StatusOK {
			l.mu.Lock()
			l.failed++
			l.mu.Unlock()
			return
		}
		d := time.Since(answered)
		l.mu.Lock()
		l.lag.record(d)
		l.mu.Unlock()
	})
}

// wait waits for the probes in flight and returns what they measured, how
// many were not sent and how many failed.
func (l *lagProbes) wait() (Summary, int64, int64) {
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lag.summary(), l.skipped, l.failed
}

// What the read scenario GETs.
const (
	readConversation = "conversation"
	readMessages     = "messages"
	readWorkspaces   = "workspaces"
	readRevalidate   = "revalidate"
)

func (r *runner) read(ctx context.Context, conv int, what string, scheduled time.Time, res *workerResult) {
	path, kind := "/v1/conversations/"+r.convs[conv], "GET conversation"
	var header []string
	switch what {
	case readMessages:
		path, kind = path+"/messages?limit=20", "GET messages"
	case readWorkspaces:
		path, kind = "/v1/workspaces", "GET workspaces"
	case readRevalidate:
		kind = "GET conversation If-None-Match"
		if etag, ok := r.etags.Load(conv); ok {
			header = []string{"If-None-Match", etag.(string)}
		}
	}
	ans, err := r.api.get(ctx, kind, path, r.writer(conv).token, header...)
	if err != nil || ans.status != http.StatusOK && ans.status != http.StatusNotModified {
		return
	}
	if what == readRevalidate && ans.status == http.StatusOK {
		r.etags.Store(conv, ans.header.Get("ETag"))
	}
	res.get.record(time.Since(scheduled))
	res.gets++
}

func (r *runner) getPath(ctx context.Context, path string, scheduled time.Time, res *workerResult) {
	ans, err := r.api.get(ctx, "GET "+path, path, "")
	if err != nil || ans.status != http.StatusOK {
		return
	}
	res.get.record(time.Since(scheduled))
	res.gets++
}

// streamPath is the live stream subscriber i opens.
func (r *runner) streamPath(scope string, i int) string {
	if scope == scopeWorkspace {
		return "/v1/workspaces/" + r.ws + "/events"
	}
	return "/v1/conversations/" + r.convs[i%len(r.convs)] + "/events"
}

// subscribe opens the subscribers' streams, at most 64 connecting at once,
// and waits until each has connected or failed. A scope the server does not
// offer falls back to conversation streams; no streams at all is reported
// as "SSE not available".
func (r *runner) subscribe(ctx context.Context) ([]*subscriber, *sync.WaitGroup) {
	var wg sync.WaitGroup
	o, rep := r.o, r.report
	if o.Subscribers == 0 {
		return nil, &wg
	}
	// A stream's reads take what a flush wrote at once (net/http's
	// default is 4 KiB, a third of a busy stream's flush): the client
	// shares the cores with the server it measures.
	client := &http.Client{Transport: &http.Transport{
		Proxy: nil, MaxIdleConnsPerHost: 16, DisableCompression: true, ResponseHeaderTimeout: 30 * time.Second,
		ReadBufferSize: 64 << 10,
	}}
	scope := o.Scope
	status, err := r.probe(ctx, client, scope)
	if errors.Is(err, errSSEUnavailable) && scope == scopeWorkspace {
		scope = scopeConversation
		status, err = r.probe(ctx, client, scope)
	}
	if err != nil {
		rep.SSE = fmt.Sprintf("SSE not available (GET %s: %v)", r.streamPath(scope, 0), err)
		if status != 0 && !errors.Is(err, errSSEUnavailable) {
			rep.SSE = fmt.Sprintf("SSE refused (GET %s: status %d)", r.streamPath(scope, 0), status)
		}
		r.logf("%s", rep.SSE)
		return nil, &wg
	}
	rep.Scope = scope
	r.logf("subscribers: opening %d %s streams", o.Subscribers, scope)

	type outcome struct {
		i int
		connectResult
	}
	subs := make([]*subscriber, o.Subscribers)
	outcomes := make(chan outcome, o.Subscribers)
	sem := make(chan struct{}, 64)
	started := 0
	for i := range subs {
		conv := -1
		if scope == scopeConversation {
			conv = i % len(r.convs)
		}
		subs[i] = &subscriber{client: client, url: r.api.base + r.streamPath(scope, i),
			token: r.users[i/o.PerUser%len(r.users)].token, base: r.base, conv: conv}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		s := subs[i]
		started++
		wg.Go(func() {
			s.run(ctx, func(c connectResult) {
				outcomes <- outcome{i: i, connectResult: c}
				<-sem
			})
		})
	}
	failed := map[string]int64{}
	var connected []*subscriber
	for range started {
		c := <-outcomes
		if c.err != nil {
			failed[fmt.Sprintf("status %d: %v", c.status, c.err)]++
			continue
		}
		connected = append(connected, subs[c.i])
	}
	for what, n := range failed {
		rep.SubscriberFailed = append(rep.SubscriberFailed, Count{What: what, N: n})
	}
	rep.Subscribers = len(connected)
	r.logf("subscribers: %d connected", len(connected))
	return connected, &wg
}

// probe opens one stream of scope and closes it, as the last user: the one
// with room for it beside its subscribers (see setup).
func (r *runner) probe(ctx context.Context, client *http.Client, scope string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s := &subscriber{client: client, url: r.api.base + r.streamPath(scope, 0), token: r.users[len(r.users)-1].token, base: r.base}
	body, status, err := s.connect(ctx)
	if err != nil {
		return status, err
	}
	body.Close()
	return status, nil
}

// expected returns how many of acked subscriber s should receive.
func expected(s *subscriber, perConv []int64, total int64) int64 {
	if s.conv < 0 {
		return total
	}
	return perConv[s.conv]
}

// drain waits, at most o.Drain, until every subscriber has received as many
// messages as were acknowledged in its scope.
func (r *runner) drain(ctx context.Context, subs []*subscriber, acked []ack) bool {
	if len(subs) == 0 {
		return true
	}
	perConv := make([]int64, len(r.convs))
	for _, a := range acked {
		perConv[a.conv]++
	}
	total := int64(len(acked))
	deadline := time.Now().Add(r.o.Drain)
	for {
		done := true
		for _, s := range subs {
			if s.messages.Load() < expected(s, perConv, total) {
				done = false
				break
			}
		}
		if done {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deliveries compares what each subscriber received with what was
// acknowledged, after the streams have stopped.
func (r *runner) deliveries(subs []*subscriber, acked []ack) {
	rep := r.report
	var delivery histogram
	for _, s := range subs {
		delivery.merge(&s.delivery)
		rep.Duplicates += s.duplicates
		rep.Unmarked += s.unmarked
		rep.Reconnects += s.reconnects.Load()
		for _, a := range acked {
			if s.conv >= 0 && s.conv != a.conv {
				continue
			}
			rep.Expected++
			if a.pos > s.base && s.seen.has(uint64(a.pos-s.base)) {
				rep.Delivered++
			} else {
				rep.Lost++
			}
		}
	}
	rep.Delivery = delivery.summary()
}
