package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/engramhq/engram/platform/defaults"
)

// Scenarios the load generator runs.
const (
	scenarioAppend = "append" // POST messages
	scenarioRead   = "read"   // GET a conversation or its messages
	scenarioSSE    = "sse"    // POST messages while subscribers receive them
	scenarioMixed  = "mixed"  // one POST for three GETs, with subscribers
	scenarioIdle   = "idle"   // hold idle live streams
	scenarioGet    = "get"    // GET one path without auth (a baseline server)
)

// Live stream scopes the subscribers use.
const (
	scopeConversation = "conversation"
	scopeWorkspace    = "workspace"
)

// errInvalidOptions wraps every problem found in Options.
var errInvalidOptions = errors.New("invalid options")

// Options configure one load run.
type Options struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:8080.
	URL      string
	Scenario string
	// Rate is operations per second for the whole run (POSTs for append and
	// sse, GETs for read and get, both for mixed); 0 means as fast as the
	// workers go.
	Rate        float64
	Concurrency int
	Duration    time.Duration
	// Subscribers is the number of live streams held during the run.
	Subscribers int
	// PerUser is how many live streams one user holds (the server caps it).
	PerUser int
	// Users is the least number of users to create.
	Users int
	// Conversations is how many conversations the run posts to and reads.
	// An append run has one writer per conversation at a time, so its POST
	// concurrency is at most this; an SSE run spreads its Concurrency
	// posters over them (several may post into one conversation at once).
	Conversations int
	// Scope is the live stream subscribers open: conversation or workspace.
	Scope string
	// Read is what the read scenario GETs: conversation or messages.
	Read string
	// Path is what the get scenario GETs.
	Path string
	// LagSample is the fraction of acknowledged POSTs followed by a read
	// with Engram-Min-Position, to measure projection lag.
	LagSample float64
	// Seed is how many messages each conversation gets before the window.
	Seed int
	// Drain bounds the wait for deliveries after the last POST.
	Drain time.Duration
	// OpenLoop sends every scheduled operation (at Rate) from its own
	// goroutine, whether the previous ones were answered or not, as
	// independent clients do: the offered load does not adapt to the
	// server. Several requests may then be in flight on one conversation.
	OpenLoop bool
	// Log receives progress lines; nil discards them.
	Log io.Writer
	// Window, when set, is called with "setup" when the setup is done (before
	// the subscribers connect), "start" when the measured window starts,
	// "end" when it ends and "drained" when deliveries are drained (before
	// the subscribers disconnect).
	Window func(event string)
}

// Report is the outcome of a load run.
type Report struct {
	Scenario    string        `json:"scenario"`
	Rate        float64       `json:"rate"`
	Concurrency int           `json:"concurrency"`
	Window      time.Duration `json:"window"`

	Commands       int64   `json:"commands"`
	CommandsPerSec float64 `json:"commands_per_sec"`
	CommandLatency Summary `json:"command_latency"`
	// Unsent is the operations a paced run scheduled but could not send
	// before the window ended: the server fell behind the rate.
	Unsent int64 `json:"unsent"`
	// Offered is the commands an open-loop run sent; Refused those the
	// server refused for overload (503 or 429), answered after
	// RefusalLatency; Failed every other command not answered 2xx.
	Offered        int64   `json:"offered,omitempty"`
	Refused        int64   `json:"refused,omitempty"`
	RefusalLatency Summary `json:"refusal_latency"`
	Failed         int64   `json:"failed,omitempty"`
	// SendLag is how late an open-loop run sent its requests after their
	// scheduled time: the client's own delay, included in every latency.
	// RefusalServed is the refusals' latency without it, from the moment
	// each was sent.
	SendLag       Summary `json:"send_lag"`
	RefusalServed Summary `json:"refusal_served"`
	Gets          int64   `json:"gets"`
	GetsPerSec    float64 `json:"gets_per_sec"`
	GetLatency    Summary `json:"get_latency"`
	// ProjectionLag is the time from a POST's answer to the answer of a
	// read that asked for its position (Engram-Min-Position).
	ProjectionLag Summary `json:"projection_lag"`
	// LagSkipped is the probes not sent because 64 were in flight;
	// LagFailed those that failed (the server's wait timed out). Either
	// makes ProjectionLag a lower bound.
	LagSkipped int64 `json:"lag_skipped"`
	LagFailed  int64 `json:"lag_failed"`

	// SSE is empty when the streams worked, else why they did not.
	SSE               string  `json:"sse,omitempty"`
	Scope             string  `json:"scope,omitempty"`
	Subscribers       int     `json:"subscribers"`
	SubscriberFailed  []Count `json:"subscriber_failed,omitempty"`
	Delivery          Summary `json:"delivery"`
	Expected          int64   `json:"expected"`
	Delivered         int64   `json:"delivered"`
	Lost              int64   `json:"lost"`
	Duplicates        int64   `json:"duplicates"`
	Unmarked          int64   `json:"unmarked"`
	Reconnects        int64   `json:"reconnects"`
	Drained           bool    `json:"drained"`
	DeliveriesPerSec  float64 `json:"deliveries_per_sec"`
	ServerFramesSent  float64 `json:"server_frames_sent"`
	ServerSlowDrops   float64 `json:"server_slow_disconnects"`
	ServerSSEConns    float64 `json:"server_sse_connections"`
	ServerRSS         float64 `json:"server_rss_bytes"`
	ServerPeakRSS     float64 `json:"server_peak_rss_bytes"`
	ServerRSSBefore   float64 `json:"server_rss_before_bytes"`
	ServerInuse       float64 `json:"server_inuse_bytes"`
	ServerInuseBefore float64 `json:"server_inuse_before_bytes"`
	ServerCPU         float64 `json:"server_cpu_seconds"`
	// ServerEvents is the events the server appended in the window, its
	// own (the assistant's replies, routing decisions) included.
	ServerEvents float64 `json:"server_events"`
	MetricsError string  `json:"metrics_error,omitempty"`

	Errors []Count `json:"errors,omitempty"`
}

// withDefaults fills what o leaves unset, by scenario.
func (o Options) withDefaults() Options {
	defaults.Positive(&o.Concurrency, 32)
	defaults.Positive(&o.Duration, 20*time.Second)
	defaults.Positive(&o.PerUser, 16)
	defaults.Positive(&o.Users, 1)
	defaults.Positive(&o.Drain, 10*time.Second)
	if o.Read == "" {
		o.Read = "conversation"
	}
	if o.Scope == "" {
		o.Scope = scopeWorkspace
	}
	if o.Subscribers < 0 {
		switch o.Scenario {
		case scenarioSSE, scenarioIdle:
			o.Subscribers = 100
		case scenarioMixed:
			o.Subscribers = 20
		default:
			o.Subscribers = 0
		}
	}
	if o.Conversations <= 0 {
		switch o.Scenario {
		case scenarioAppend, scenarioMixed:
			o.Conversations = o.Concurrency
		default:
			o.Conversations = 8
		}
	}
	if o.Seed < 0 {
		o.Seed = 0
		if o.Scenario == scenarioRead || o.Scenario == scenarioMixed {
			o.Seed = 20
		}
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return o
}

func (o Options) validate() error {
	var problems []string
	switch o.Scenario {
	case scenarioAppend, scenarioRead, scenarioSSE, scenarioMixed, scenarioIdle, scenarioGet:
	default:
		problems = append(problems, fmt.Sprintf("-scenario %q: want append, read, sse, mixed, idle or get", o.Scenario))
	}
	if o.Rate < 0 {
		problems = append(problems, "-rate must be 0 (as fast as possible) or positive")
	}
	if o.Scope != scopeConversation && o.Scope != scopeWorkspace {
		problems = append(problems, fmt.Sprintf("-scope %q: want conversation or workspace", o.Scope))
	}
	switch o.Read {
	case readConversation, readMessages, readWorkspaces, readRevalidate:
	default:
		problems = append(problems, fmt.Sprintf("-read %q: want conversation, messages, workspaces or revalidate", o.Read))
	}
	if o.Scenario == scenarioGet && !strings.HasPrefix(o.Path, "/") {
		problems = append(problems, "-path must start with / for the get scenario")
	}
	if (o.Scenario == scenarioSSE || o.Scenario == scenarioIdle) && o.Subscribers == 0 {
		problems = append(problems, "-subscribers must be positive for the sse and idle scenarios")
	}
	if o.LagSample < 0 || o.LagSample > 1 {
		problems = append(problems, "-lag-sample must be between 0 and 1")
	}
	if o.Duration > time.Hour {
		problems = append(problems, "-duration must be at most 1h")
	}
	if o.Drain > 10*time.Minute {
		problems = append(problems, "-drain must be at most 10m")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w:\n%s", errInvalidOptions, strings.Join(problems, "\n"))
	}
	return nil
}

// Run drives the server as o says and returns what it measured. It always
// stops by itself: after the window, the drain and the bounded setup.
func Run(ctx context.Context, o Options) (*Report, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	conns := o.Concurrency
	if o.OpenLoop {
		// Every sender keeps its connection: an open loop that dials for
		// most requests measures the dialling.
		conns = max(conns, openLoopSenders)
	}
	r := &runner{o: o, api: newAPI(strings.TrimRight(o.URL, "/"), conns), run: randomHex(6), lag: newLagProbes(64)}
	r.report = &Report{Scenario: o.Scenario, Rate: o.Rate, Concurrency: o.Concurrency, Scope: o.Scope}
	setupCtx, cancelSetup := context.WithTimeout(ctx, 5*time.Minute)
	defer cancelSetup()
	if o.Scenario != scenarioGet {
		if err := r.setup(setupCtx); err != nil {
			return nil, fmt.Errorf("setup: %w", err)
		}
	}
	return r.execute(ctx)
}

// runner is one load run.
type runner struct {
	o      Options
	api    *api
	run    string
	report *Report
	lag    *lagProbes

	users []user
	ws    string
	convs []string

	mu   sync.Mutex
	base int64 // position after the setup

	etags sync.Map // conversation index → its last ETag (read revalidate)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.o.Log, format+"\n", args...)
}

// setup creates the users, the workspace (everyone an editor), the
// conversations and their seed messages.
func (r *runner) setup(ctx context.Context) error {
	// One stream more than the subscribers: the probe that checks the
	// streams first opens one as the last user, which holds fewer than
	// PerUser, so that its closing (which the server notices a moment later)
	// does not count against a subscriber.
	n := max(r.o.Users, (r.o.Subscribers+r.o.PerUser)/r.o.PerUser)
	r.logf("setup: %d users, 1 workspace, %d conversations", n, r.o.Conversations)
	r.users = make([]user, n)
	password := "load-" + randomHex(12)
	err := parallel(ctx, n, 2, func(ctx context.Context, i int) error {
		u, err := r.api.signup(ctx, fmt.Sprintf("load-%s-%d@example.com", r.run, i), password, fmt.Sprintf("Load %d", i))
		r.users[i] = u
		return err
	})
	if err != nil {
		return err
	}
	owner := r.users[0]
	var pos int64
	r.ws, pos, err = r.api.create(ctx, "POST workspaces", "/v1/workspaces", owner.token,
		map[string]string{"name": "load " + r.run})
	if err != nil {
		return err
	}
	r.base = max(r.base, pos)
	for _, u := range r.users[1:] {
		ans, err := r.api.expect(ctx, http.StatusCreated, "POST members", http.MethodPost, "/v1/workspaces/"+r.ws+"/members",
			owner.token, map[string]string{"user_id": u.id, "role": "editor"})
		if err != nil {
			return err
		}
		r.base = max(r.base, ans.position())
	}
	r.convs = make([]string, r.o.Conversations)
	for i := range r.convs {
		r.convs[i], pos, err = r.api.create(ctx, "POST conversations", "/v1/workspaces/"+r.ws+"/conversations", owner.token,
			map[string]string{"title": fmt.Sprintf("load %s %d", r.run, i)})
		if err != nil {
			return err
		}
		r.base = max(r.base, pos)
	}
	if err := r.seed(ctx); err != nil {
		return err
	}
	if r.o.Scenario == scenarioRead || r.o.Scenario == scenarioMixed {
		return r.awaitReadModels(ctx) // the window's GETs need them
	}
	return nil
}

// seed posts o.Seed messages to each conversation.
func (r *runner) seed(ctx context.Context) error {
	if r.o.Seed > 0 {
		r.logf("setup: %d messages in each conversation", r.o.Seed)
		err := parallel(ctx, len(r.convs), 4, func(ctx context.Context, i int) error {
			for j := range r.o.Seed {
				ans, err := r.api.expect(ctx, http.StatusCreated, "POST messages", http.MethodPost,
					"/v1/conversations/"+r.convs[i]+"/messages", r.writer(i).token, r.message(j))
				if err != nil {
					return err
				}
				r.raiseBase(ans.position())
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// awaitReadModels waits until the read models have applied the setup, so
// that the window does not start with GETs of conversations they do not
// hold yet: it reads with Engram-Min-Position until the answer is 200.
func (r *runner) awaitReadModels(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	last := len(r.convs) - 1
	paths := []string{"/v1/workspaces/" + r.ws, "/v1/conversations/" + r.convs[last] + "/messages?limit=1"}
	for _, path := range paths {
		for {
			ans, err := r.api.call(ctx, "GET setup", http.MethodGet, path, r.users[0].token, nil,
				"Engram-Min-Position", strconv.FormatInt(r.base, 10))
			if err == nil && ans.status == http.StatusOK {
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("the read models did not apply the setup (position %d) in time", r.base)
			}
			t := time.NewTimer(100 * time.Millisecond)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
	return nil
}

func (r *runner) raiseBase(p int64) {
	r.mu.Lock()
	r.base = max(r.base, p)
	r.mu.Unlock()
}

// writer is the user who posts to conversation i.
func (r *runner) writer(i int) user { return r.users[i%len(r.users)] }

// messageBody is a chat message of typical size, carrying its send time.
type messageBody struct {
	Content  string          `json:"content"`
	Metadata messageMetadata `json:"metadata"`
}

type messageMetadata struct {
	Run    string `json:"load_run"`
	SentNS int64  `json:"load_sent_ns"`
}

const filler = "Could you summarise what we decided about the rollout and list the open questions for tomorrow?"

func (r *runner) message(n int) messageBody {
	return messageBody{
		Content:  fmt.Sprintf("%s (%d)", filler, n),
		Metadata: messageMetadata{Run: r.run, SentNS: time.Now().UnixNano()},
	}
}

// parallel runs fn(0..n-1) with at most width at once; the first error
// cancels the rest and is returned.
func parallel(ctx context.Context, n, width int, fn func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		sem   = make(chan struct{}, width)
	)
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}
