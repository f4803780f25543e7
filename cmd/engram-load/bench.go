package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // PostgreSQL driver
	"github.com/redis/go-redis/v9"

	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/test/eventgen"
)

// benchConfig says where the benchmark finds what it needs.
type benchConfig struct {
	engram   string // the engram binary
	out      string // the report to write
	adminURL string // a PostgreSQL database to create the bench database from
	redisURL string
	quick    bool // shorter windows, to try the benchmark out
	writes   bool // only the write-path runs (see runWrites)
	log      io.Writer
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("engram-load bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	adminDefault := os.Getenv("ENGRAM_TEST_DATABASE_URL")
	if adminDefault == "" {
		adminDefault = "postgres://127.0.0.1:5432/postgres?sslmode=disable"
	}
	cfg := benchConfig{log: stderr}
	fs.StringVar(&cfg.engram, "engram", "bin/engram", "the engram binary to benchmark")
	fs.StringVar(&cfg.out, "out", "docs/benchmarks.md", "where to write the report (empty: do not write)")
	fs.StringVar(&cfg.adminURL, "admin-url", adminDefault, "PostgreSQL database used to create and drop the bench database")
	fs.StringVar(&cfg.redisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis for the server (empty: in-memory cache)")
	fs.BoolVar(&cfg.quick, "quick", false, "short windows (about a quarter): to try the benchmark, not to quote it")
	fs.BoolVar(&cfg.writes, "writes", false, "only the write path: pgbench, appends, one busy conversation, overload (prints, writes no report)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	for _, raw := range []string{cfg.adminURL, cfg.redisURL} {
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil {
			fmt.Fprintf(stderr, "engram-load bench: %v\n", err)
			return 2
		}
		if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
			fmt.Fprintf(stderr, "engram-load bench: %s is not on a loopback address: the benchmark runs on one machine\n", u.Redacted())
			return 2
		}
	}
	if cfg.writes {
		cfg.out = ""
	}
	res, err := (&bench{cfg: cfg}).run(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "engram-load bench:", err)
	}
	if res == nil {
		return 1
	}
	printSummary(stdout, res)
	if cfg.out != "" {
		if werr := writeBenchmarks(cfg.out, res); werr != nil {
			fmt.Fprintln(stderr, "engram-load bench:", werr)
			return 1
		}
		fmt.Fprintf(stdout, "\nwrote %s\n", cfg.out)
	}
	if err != nil {
		return 1
	}
	return 0
}

// readRun is one GET run: what was read, by how many clients.
type readRun struct {
	Read    string
	Clients int
	Report  *Report
	// Echo is the bare echo handler measured just before, with the same
	// client, concurrency and window: the machine's speed drifts within a
	// run, and a GET is judged against the limit of the same minute.
	Echo *Report
}

// readKinds are the reads measured, in the order reported.
var readKinds = []string{readConversation, readMessages, readWorkspaces, readRevalidate}

// readClients are the client counts the reads (and echo) run at.
var readClients = []int{appendConcurrency, 2 * appendConcurrency}

// benchResults is everything one benchmark run measured.
type benchResults struct {
	Quick      bool
	Machine    machine
	LoadBefore string
	LoadAfter  string
	Started    time.Time
	Took       time.Duration
	Notes      []string

	Pgbench      pgbenchResult
	PgbenchBatch pgbenchResult
	// Echo is the bare echo handler at 32 clients, Echo64 at 64: the
	// baselines of the GETs with as many clients.
	Echo   *Report
	Echo64 *Report

	IdleRSS   float64
	Append    *Report
	AppendCPU float64 // server CPU seconds in the append window
	// Answered is the run in the default configuration, where the
	// assistant answers every message; the other runs mute it.
	Answered answeredResult
	// Reads are the GET runs: each read kind at 32 and at 64 clients.
	Reads         []readRun
	Lag           *Report
	SSE200        *Report
	SSE1000       *Report
	SSE1000CPU    float64 // server CPU seconds, window start to drained
	SSE1000Frames float64 // frames the server sent in that time
	Idle          *Report
	Rebuild       rebuildResult
	// OneConversation is 200 posts/s into one conversation, open loop;
	// Overload an open-loop run at twice the closed-loop append rate, and
	// EchoOverload the bare echo handler driven the same way: the fastest
	// a refusal can be answered on this machine at that rate.
	OneConversation *Report
	Overload        *Report
	EchoOverload    *Report
}

type pgbenchResult struct {
	TPS     float64
	Latency float64 // average, ms
	Clients int
	Rows    int // rows per transaction
	Err     string
}

// answeredResult is what messages cost when the assistant answers them.
type answeredResult struct {
	Report *Report
	// CPU is the server's CPU time from the start of the window until every
	// answer was in (or the wait ended).
	CPU float64
	// Events is the events appended in that time.
	Events float64
	// Settled is how long after the window the last answer came; Done is
	// false when the wait ended first.
	Settled time.Duration
	Done    bool
}

type rebuildResult struct {
	Ran     bool
	Note    string
	Events  int64
	Seconds float64
}

// bench is one benchmark run.
type bench struct {
	cfg      benchConfig
	res      *benchResults
	dbURL    string
	name     string // of the database and Redis prefix
	srv      *server
	pprofURL string
}

// windows are the lengths of the measured windows.
type windows struct {
	pgbench, batch, echo, answered, append, get, lag, sse, idle time.Duration
}

func (b *bench) windows() windows {
	w := windows{pgbench: 20 * time.Second, batch: 10 * time.Second, echo: 15 * time.Second, answered: 10 * time.Second, append: 20 * time.Second,
		get: 8 * time.Second, lag: 15 * time.Second, sse: 20 * time.Second, idle: 5 * time.Second}
	if b.cfg.quick {
		w = windows{pgbench: 5 * time.Second, batch: 3 * time.Second, echo: 4 * time.Second, answered: 3 * time.Second, append: 5 * time.Second,
			get: 3 * time.Second, lag: 4 * time.Second, sse: 5 * time.Second, idle: 3 * time.Second}
	}
	return w
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.cfg.log, "bench: "+format+"\n", args...)
}

// appendConcurrency is the number of clients of both the pgbench insert
// test and the HTTP append test.
const appendConcurrency = 32

// lagClients is the number of clients of the run at 1,000 posts/s. A paced
// client sends its next post only once its last one is answered, so 32 of
// them offer 1,000 posts/s only while a post takes less than 32 ms on
// average; on a busy machine the client, not the server, then set the rate
// (1,515 posts left unsent in one run). 64 offer it up to 64 ms a post.
// They post into appendConcurrency conversations, as before.
const lagClients = 64

// budget is when the benchmark starts no more runs, so that it ends within
// ten minutes even on a machine busy with other work.
const budget = 8 * time.Minute

func (b *bench) overBudget() bool { return time.Since(b.res.Started) > budget }

func (b *bench) run(ctx context.Context) (*benchResults, error) {
	b.res = &benchResults{Quick: b.cfg.quick, Started: time.Now(), Machine: describeMachine(ctx), LoadBefore: loadAverage()}
	res, w := b.res, b.windows()
	defer func() {
		res.Took = time.Since(res.Started)
		res.LoadAfter = loadAverage()
	}()
	if _, err := os.Stat(b.cfg.engram); err != nil {
		return nil, fmt.Errorf("engram binary: %w (run make build)", err)
	}
	b.name = "engram_bench_" + randomHex(6)
	drop, err := b.createDatabase(ctx)
	if err != nil {
		return nil, err
	}
	defer drop()
	res.Machine.Redis = redisVersion(ctx, b.cfg.redisURL)
	if err := b.engramCommand(ctx, "migrate"); err != nil {
		return nil, err
	}

	// (a) The raw limits.
	b.logf("pgbench: one-row inserts into a table shaped like events, %d clients, %s", appendConcurrency, w.pgbench)
	res.Pgbench = b.pgbench(ctx, singleInsert, appendConcurrency, w.pgbench, 1)
	b.logf("pgbench: %.0f tx/s %s", res.Pgbench.TPS, res.Pgbench.Err)
	if b.cfg.writes {
		return res, b.runWrites(ctx, w)
	}
	b.logf("pgbench: 100-row inserts, 4 clients, %s", w.batch)
	res.PgbenchBatch = b.pgbench(ctx, batchInsert, 4, w.batch, 100)
	b.logf("pgbench: %.0f rows/s %s", res.PgbenchBatch.TPS*100, res.PgbenchBatch.Err)
	if res.Echo, err = b.echoBaseline(ctx, w.echo, readClients[0]); err != nil {
		return res, err
	}
	if res.Echo64, err = b.echoBaseline(ctx, w.echo, readClients[1]); err != nil {
		return res, err
	}

	// (b) Engram, first in the default configuration: its idle memory, and
	// what a message costs when the assistant answers it, at a moderate
	// rate, until every answer is in.
	if err := b.startServer(ctx); err != nil {
		return res, err
	}
	defer func() { b.srv.stop() }()
	b.sleep(ctx, 3*time.Second) // let it settle: the idle RSS is that of a server left alone
	res.IdleRSS, _ = procRSS(b.srv.pid())
	b.logf("idle RSS %s", mib(res.IdleRSS))
	b.answered(ctx, w.answered)
	// Live delivery with the assistant on: one busy conversation, 200
	// people watching it.
	b.logf("— SSE 200 subscribers on one conversation × 200 posts/s, assistant on (load average %s)", loadAverage())
	// Enough posters that 200 posts/s are offered even when a post takes
	// 100 ms: the run measures delivery, at the rate asked for.
	if res.SSE200, err = b.load(ctx, Options{Scenario: scenarioSSE, Subscribers: 200, Rate: 200, Scope: scopeConversation,
		Concurrency: 24, Conversations: 1, Duration: w.sse}); err != nil {
		res.Notes = append(res.Notes, fmt.Sprintf("SSE 200 subscribers on one conversation: %v", err))
	}
	// The assistant answers the run's last posts after it: left to the
	// next server, they would be routed and projected during its reads.
	began := time.Now()
	settled := b.settle(ctx, &http.Client{Timeout: 5 * time.Second}, time.Minute)
	b.logf("the assistant settled %s after the SSE run (done %v)", time.Since(began).Round(100*time.Millisecond), settled)
	b.srv.stop()

	// Then with the assistant muted: every run measures the command, read
	// and live paths, not the answers to the previous run's messages (which
	// come minutes later when a run posts thousands).
	if err := b.startServer(ctx, muted...); err != nil {
		return res, err
	}

	// The runs that write most come last: each leaves the read models
	// behind for a while, and the next run waits (bounded) for them.
	phases := []benchPhase{
		{"idle SSE connections", func(ctx context.Context) error {
			var err error
			res.Idle, err = b.load(ctx, Options{Scenario: scenarioIdle, Subscribers: 1000, Duration: w.idle,
				Window: b.collectGarbage(ctx)})
			return err
		}},
	}
	for _, clients := range readClients {
		for _, read := range readKinds {
			phases = append(phases, benchPhase{fmt.Sprintf("GET %s, %d clients", read, clients), func(ctx context.Context) error {
				echo, err := b.echoBaseline(ctx, w.get, clients)
				if err != nil {
					b.logf("echo baseline before GET %s: %v; the one of the run's start is used", read, err)
				}
				rep, err := b.load(ctx, Options{Scenario: scenarioRead, Read: read, Concurrency: clients, Duration: w.get})
				res.Reads = append(res.Reads, readRun{Read: read, Clients: clients, Report: rep, Echo: echo})
				return err
			}})
		}
	}
	phases = append(phases, []benchPhase{
		{"SSE 1,000 subscribers × 500 events/s", func(ctx context.Context) error {
			var err error
			var cpu cpuWindow
			res.SSE1000, err = b.load(ctx, Options{Scenario: scenarioSSE, Subscribers: 1000, Rate: 500,
				Concurrency: 8, Conversations: 8, Duration: w.sse, Drain: 20 * time.Second, Window: cpu.hook(b.srv.pid())})
			res.SSE1000CPU = cpu.seconds(true)
			if res.SSE1000 != nil {
				res.SSE1000Frames = res.SSE1000.ServerFramesSent
				if res.SSE1000Frames <= 0 {
					res.SSE1000Frames = float64(res.SSE1000.Delivered)
				}
			}
			return err
		}},
		{"projection lag at 1,000 events/s", func(ctx context.Context) error {
			var err error
			res.Lag, err = b.load(ctx, Options{Scenario: scenarioAppend, Rate: 1000, Concurrency: lagClients,
				Conversations: appendConcurrency, Duration: w.lag, LagSample: 0.2})
			return err
		}},
	}...)
	phases = append(phases, b.writePhases(w)...)
	for _, p := range phases {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if b.overBudget() {
			res.Notes = append(res.Notes, fmt.Sprintf("%s: skipped, the run had used its time budget (%s)", p.name, budget))
			continue
		}
		b.logf("— %s (load average %s)", p.name, loadAverage())
		began := time.Now()
		if err := p.fn(ctx); err != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("%s: %v", p.name, err))
			b.logf("%s failed: %v", p.name, err)
		}
		b.logf("%s took %s", p.name, time.Since(began).Round(time.Second))
		if note := b.awaitProjections(ctx, 30*time.Second); note != "" {
			res.Notes = append(res.Notes, fmt.Sprintf("after %s: %s", p.name, note))
		}
		if !b.srv.alive() {
			b.logf("the server exited; the end of its log:\n%s", b.srv.tail())
			return res, fmt.Errorf("the server exited during %q (its log is above)", p.name)
		}
	}
	b.srv.stop()
	res.Rebuild = b.rebuild(ctx)
	return res, nil
}

// answeredRate is the rate of the run whose messages the assistant answers,
// over answeredConversations conversations.
const (
	answeredRate          = 300
	answeredConversations = 32
)

// answered posts messages at answeredRate for window in the default
// configuration, then waits (at most a minute) until the assistant has
// answered them all: no projector behind and no new event for a second.
func (b *bench) answered(ctx context.Context, window time.Duration) {
	res := b.res
	b.logf("— messages answered by the assistant, %d/s (load average %s)", answeredRate, loadAverage())
	client := &http.Client{Timeout: 5 * time.Second}
	pid := b.srv.pid()
	var (
		cpuStart float64
		before   serverSample
		ended    time.Time
	)
	hook := func(event string) {
		switch event {
		case "start":
			cpuStart, _ = procCPU(pid)
			before, _ = scrape(ctx, client, b.srv.url)
		case "end":
			ended = time.Now()
		}
	}
	rep, err := b.load(ctx, Options{Scenario: scenarioAppend, Rate: answeredRate, Concurrency: 2 * answeredConversations,
		Conversations: answeredConversations, Duration: window, Window: hook})
	if err != nil {
		res.Notes = append(res.Notes, fmt.Sprintf("messages answered by the assistant: %v", err))
	}
	if rep == nil {
		return
	}
	a := answeredResult{Report: rep, Done: b.settle(ctx, client, time.Minute)}
	cpuEnd, _ := procCPU(pid)
	after, _ := scrape(ctx, client, b.srv.url)
	a.CPU = cpuEnd - cpuStart
	e1, _ := after.get(famAppendsTotal)
	e0, _ := before.get(famAppendsTotal)
	a.Events = e1 - e0
	a.Settled = time.Since(ended)
	if a.Done {
		a.Settled -= time.Second // the quiet second that showed it
	}
	res.Answered = a
	b.logf("answered: %.0f events for %d messages, server CPU %.0f µs per message, settled %s after the window (done %v)",
		a.Events, rep.Commands, 1e6*a.CPU/float64(max(rep.Commands, 1)), a.Settled.Round(100*time.Millisecond), a.Done)
}

// settle waits, at most within, until the server is done with what it was
// given — no projector behind the log, and a second without an append (the
// assistant's answers) — and reports whether it was.
func (b *bench) settle(ctx context.Context, client *http.Client, within time.Duration) bool {
	deadline := time.Now().Add(within)
	last := -1.0
	for time.Now().Before(deadline) && ctx.Err() == nil {
		s, err := scrape(ctx, client, b.srv.url)
		if err != nil {
			return false
		}
		lag, _ := s.get(famLagEvents)
		events, _ := s.get(famAppendsTotal)
		if lag == 0 && events == last {
			return true
		}
		last = events
		b.sleep(ctx, time.Second)
	}
	return false
}

// awaitProjections waits, at most within, until no projector lags behind
// the log, and says how long that took or how far behind they still are.
func (b *bench) awaitProjections(ctx context.Context, within time.Duration) string {
	client := &http.Client{Timeout: 5 * time.Second}
	start := time.Now()
	for {
		s, err := scrape(ctx, client, b.srv.url)
		if err != nil {
			return ""
		}
		lag, _ := s.get(famLagEvents)
		if lag == 0 {
			if d := time.Since(start); d > time.Second {
				b.logf("read models caught up in %s", d.Round(100*time.Millisecond))
			}
			return ""
		}
		if time.Since(start) > within || ctx.Err() != nil {
			note := fmt.Sprintf("the projectors were still %.0f events behind the log %s later (the next run started anyway)", lag, within)
			b.logf("%s", note)
			return note
		}
		b.sleep(ctx, 250*time.Millisecond)
	}
}

// load runs one scenario against the server, logging its report.
func (b *bench) load(ctx context.Context, o Options) (*Report, error) {
	o.URL = b.srv.url
	o.Log = prefixed{w: b.cfg.log, prefix: "bench:   "}
	if o.Subscribers == 0 {
		o.Subscribers = -1
	}
	o.Seed = -1
	rep, err := Run(ctx, o)
	if rep != nil {
		b.printReport(rep)
	}
	return rep, err
}

// printReport logs a scenario's report, indented.
func (b *bench) printReport(rep *Report) {
	var buf bytes.Buffer
	printReport(&buf, rep)
	_, _ = prefixed{w: b.cfg.log, prefix: "bench:   "}.Write(buf.Bytes())
}

// prefixed writes every line with a prefix.
type prefixed struct {
	w      io.Writer
	prefix string
}

func (p prefixed) Write(b []byte) (int, error) {
	for line := range strings.SplitSeq(strings.TrimSuffix(string(b), "\n"), "\n") {
		if _, err := fmt.Fprintf(p.w, "%s%s\n", p.prefix, line); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

// cpuWindow reads the server's CPU time at the window's start and end and
// when deliveries are drained.
type cpuWindow struct {
	mu                  sync.Mutex
	start, end, drained float64
}

func (c *cpuWindow) hook(pid int) func(string) {
	return func(event string) {
		v, err := procCPU(pid)
		if err != nil {
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		switch event {
		case "start":
			c.start = v
		case "end":
			c.end = v
		case "drained":
			c.drained = v
		}
	}
}

// seconds is the CPU time of the window, up to the drain when drained.
func (c *cpuWindow) seconds(drained bool) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if drained {
		return c.drained - c.start
	}
	return c.end - c.start
}

// collectGarbage returns the hook that makes the server collect its garbage
// before the memory samples taken after the setup and after the window, so
// that the memory per connection is live memory, not garbage of the setup
// (argon2id hashes). It goes through the profiling listener (pprof's heap
// profile with gc=1).
func (b *bench) collectGarbage(ctx context.Context) func(string) {
	return func(event string) {
		if event != "setup" && event != "drained" {
			return
		}
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.pprofURL+"/debug/pprof/heap?gc=1", nil)
		if err != nil {
			return
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		b.sleep(ctx, 500*time.Millisecond) // let the scavenger return the freed pages
	}
}

func (b *bench) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// createDatabase creates the bench database and returns the function that
// drops it and deletes the run's Redis keys, whatever mode the run was and
// however it ended.
func (b *bench) createDatabase(ctx context.Context) (func(), error) {
	admin, err := sql.Open("postgres", b.cfg.adminURL)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", redact(b.cfg.adminURL), err)
	}
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+b.name); err != nil {
		admin.Close()
		return nil, fmt.Errorf("create database %s (is PostgreSQL running? make services): %w", b.name, err)
	}
	if err := admin.QueryRowContext(ctx, `SHOW server_version`).Scan(&b.res.Machine.Postgres); err != nil {
		b.res.Machine.Postgres = "unknown"
	}
	b.res.Machine.Postgres = "PostgreSQL " + b.res.Machine.Postgres
	u, _ := url.Parse(b.cfg.adminURL)
	u.Path = "/" + b.name
	b.dbURL = u.String()
	b.logf("database %s", b.name)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, `DROP DATABASE IF EXISTS `+b.name+` WITH (FORCE)`); err != nil {
			b.logf("drop database %s: %v", b.name, err)
		} else {
			b.logf("dropped database %s", b.name)
		}
		admin.Close()
		b.cleanRedis(ctx)
	}, nil
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	return u.Redacted()
}

func redisVersion(ctx context.Context, raw string) string {
	if raw == "" {
		return "not used (in-memory cache)"
	}
	opts, err := redis.ParseURL(raw)
	if err != nil {
		return "unknown"
	}
	c := redis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return "not reachable (the server used its in-memory cache)"
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return "Redis " + v
		}
	}
	return "unknown"
}

// cleanRedis deletes the keys the server wrote under its prefix.
func (b *bench) cleanRedis(ctx context.Context) {
	if b.cfg.redisURL == "" {
		return
	}
	opts, err := redis.ParseURL(b.cfg.redisURL)
	if err != nil {
		return
	}
	c := redis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	iter := c.Scan(ctx, 0, b.name+":*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 1000 {
			c.Del(ctx, keys...)
			keys = keys[:0]
		}
	}
	if len(keys) > 0 {
		c.Del(ctx, keys...)
	}
}

// serverEnv is the environment of every engram command of the run: a
// production configuration on loopback.
func (b *bench) serverEnv(extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"ENGRAM_ENV=production",
		"ENGRAM_DATABASE_URL=" + b.dbURL,
		"ENGRAM_REDIS_URL=" + b.cfg.redisURL,
		"ENGRAM_REDIS_PREFIX=" + b.name + ":",
		"ENGRAM_JWT_SECRET=" + randomHexOnce(),
		"ENGRAM_LOG_FORMAT=json",
		// Readiness must not wait for read models a previous run left
		// behind: the lag is measured, not a condition of the start.
		"ENGRAM_PROJECTION_MAX_LAG=1000000000",
	}
	return append(env, extra...)
}

var (
	secretOnce sync.Once
	secret     string
)

// randomHexOnce is the JWT secret of the run, the same for every command.
func randomHexOnce() string {
	secretOnce.Do(func() {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		secret = hex.EncodeToString(b)
	})
	return secret
}

// engramCommand runs engram with args to completion.
func (b *bench) engramCommand(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, b.cfg.engram, args...)
	cmd.Env = b.serverEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("engram %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// server is the engram process under test.
type server struct {
	cmd  *exec.Cmd
	url  string
	logs *os.File
	done chan struct{}
}

func (s *server) pid() int { return s.cmd.Process.Pid }

func (s *server) alive() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits (at most 30s, then kills). It may be called
// more than once.
func (s *server) stop() {
	if !s.alive() {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// tail is the end of the server's log.
func (s *server) tail() string {
	b, err := os.ReadFile(s.logs.Name())
	if err != nil {
		return ""
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// muted is the environment that makes the router ignore every message: no
// task, no reply, only the routing decision.
var muted = []string{"ENGRAM_ROUTER=patterns",
	`ENGRAM_ROUTER_RULES={"patterns":[{"pattern":"(?s).*","action":"ignore","reason":"benchmark: assistant muted"}]}`}

// startServer runs engram serve (with extra environment) and waits until it
// is ready.
func (b *bench) startServer(ctx context.Context, extra ...string) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	pprofAddr, err := freeAddr()
	if err != nil {
		return err
	}
	logs, err := os.CreateTemp("", "engram-bench-*.log")
	if err != nil {
		return err
	}
	cmd := exec.Command(b.cfg.engram, "serve")
	cmd.Env = b.serverEnv(append([]string{"ENGRAM_HTTP_ADDR=" + addr, "ENGRAM_PPROF_ADDR=" + pprofAddr}, extra...)...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start engram serve: %w", err)
	}
	b.srv = &server{cmd: cmd, url: "http://" + addr, logs: logs, done: make(chan struct{})}
	b.pprofURL = "http://" + pprofAddr
	go func() {
		_ = cmd.Wait()
		close(b.srv.done)
	}()
	b.logf("engram serve on %s (log %s)", b.srv.url, logs.Name())
	deadline := time.Now().Add(60 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if !b.srv.alive() {
			b.logf("engram serve exited; the end of its log:\n%s", b.srv.tail())
			return errors.New("engram serve exited before it was ready (its log is above)")
		}
		if resp, err := client.Get(b.srv.url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		b.sleep(ctx, 100*time.Millisecond)
	}
	b.logf("engram serve not ready; the end of its log:\n%s", b.srv.tail())
	b.srv.stop()
	return errors.New("engram serve not ready within 60s (its log is above)")
}

// echoBaseline measures the bare echo handler, served by a process of its
// own (as Engram is), with the same client and concurrency as the GETs.
func (b *bench) echoBaseline(ctx context.Context, window time.Duration, clients int) (*Report, error) {
	return b.echo(ctx, Options{Concurrency: clients, Duration: window, Subscribers: -1, Seed: -1})
}

// echo runs o against the bare echo handler (GET /echo), served by a
// process of its own for the run.
func (b *bench) echo(ctx context.Context, o Options) (*Report, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "echo", "-addr", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the echo server: %w", err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("echo server: %w", err)
	}
	o.URL = strings.TrimSpace(strings.TrimPrefix(line, "listening on "))
	o.Scenario, o.Path = scenarioGet, "/echo"
	how := fmt.Sprintf("%d clients", o.Concurrency)
	if o.OpenLoop {
		how = fmt.Sprintf("open loop at %.0f/s", o.Rate)
	}
	b.logf("echo: GET %s/echo, %s, %s", o.URL, how, o.Duration)
	rep, err := Run(ctx, o)
	if rep != nil {
		b.printReport(rep)
	}
	return rep, err
}

// The pgbench scripts: one event-sized row per transaction, as an HTTP
// append writes, and 100 rows per statement, as a batch writer would.
const (
	singleInsert = `\set n random(1, 2000000000)
INSERT INTO bench_events (event_id, stream_id, stream_type, stream_version, type, schema_version, data, metadata, recorded_at, prev_hash, hash)
VALUES (gen_random_uuid(), 'conversation-' || gen_random_uuid(), 'conversation', 1, 'conversation.message_posted', 1,
  '{"message_id":"0197a3c2-5d1e-7b44-9a51-2f6f4c1e8d20","author_id":"0197a3c2-5b12-7aa8-b3c4-1e2f3a4b5c6d","role":"user","content":"Could you summarise what we decided about the rollout and list the open questions for tomorrow? (1)","metadata":{"load_run":"bench","load_sent_ns":1750000000000000000}}'::jsonb,
  '{"request_id":"0197a3c2-5e00-7000-8000-000000000001","correlation_id":"0197a3c2-5e00-7000-8000-000000000001","causation_id":"0197a3c2-5e00-7000-8000-000000000001","actor_id":"0197a3c2-5b12-7aa8-b3c4-1e2f3a4b5c6d"}'::jsonb,
  now(), sha256(:n::text::bytea), sha256((:n + 1)::text::bytea))
RETURNING global_position, tx_id::text;
`
	batchInsert = `INSERT INTO bench_events (event_id, stream_id, stream_type, stream_version, type, schema_version, data, metadata, recorded_at, prev_hash, hash)
SELECT gen_random_uuid(), 'conversation-' || gen_random_uuid(), 'conversation', 1, 'conversation.message_posted', 1,
  '{"message_id":"0197a3c2-5d1e-7b44-9a51-2f6f4c1e8d20","author_id":"0197a3c2-5b12-7aa8-b3c4-1e2f3a4b5c6d","role":"user","content":"Could you summarise what we decided about the rollout and list the open questions for tomorrow? (1)","metadata":{}}'::jsonb,
  '{"request_id":"0197a3c2-5e00-7000-8000-000000000001","actor_id":"0197a3c2-5b12-7aa8-b3c4-1e2f3a4b5c6d"}'::jsonb,
  now(), sha256(g::text::bytea), sha256((g + 1)::text::bytea)
FROM generate_series(1, 100) AS g;
`
)

var tpsLine = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)
var latencyLine = regexp.MustCompile(`latency average = ([0-9.]+) ms`)

// pgbench runs script with clients for d against a fresh table shaped like
// events (same columns, defaults, constraints and indexes), then drops it.
func (b *bench) pgbench(ctx context.Context, script string, clients int, d time.Duration, rows int) pgbenchResult {
	res := pgbenchResult{Clients: clients, Rows: rows}
	if _, err := exec.LookPath("pgbench"); err != nil {
		res.Err = "pgbench is not installed (apt-get install postgresql-contrib or postgresql-client)"
		return res
	}
	db, err := sql.Open("postgres", b.dbURL)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE bench_events (LIKE events INCLUDING ALL)`); err != nil {
		res.Err = fmt.Sprintf("create bench_events: %v", err)
		return res
	}
	defer func() {
		_, _ = db.ExecContext(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS bench_events`)
	}()
	dir, err := os.MkdirTemp("", "engram-pgbench-")
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer func() { _ = os.RemoveAll(dir) }()
	file := filepath.Join(dir, "insert.sql")
	if err := os.WriteFile(file, []byte(script), 0o600); err != nil {
		res.Err = err.Error()
		return res
	}
	cmd := exec.CommandContext(ctx, "pgbench", "-n", "-M", "prepared", "-f", file,
		"-c", strconv.Itoa(clients), "-j", "2", "-T", strconv.Itoa(int(d.Seconds())), b.dbURL)
	out, err := cmd.CombinedOutput()
	if err != nil {
		res.Err = fmt.Sprintf("pgbench: %v: %s", err, lastLines(string(out), 5))
		return res
	}
	m := tpsLine.FindStringSubmatch(string(out))
	if m == nil {
		res.Err = "pgbench printed no tps: " + lastLines(string(out), 5)
		return res
	}
	res.TPS, _ = strconv.ParseFloat(m[1], 64)
	if l := latencyLine.FindStringSubmatch(string(out)); l != nil {
		res.Latency, _ = strconv.ParseFloat(l[1], 64)
	}
	return res
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

// rebuild times `engram projections rebuild` of the conversations read
// model over the whole log, when the command exists.
// rebuildEvents is the least number of events the rebuild is measured on.
const rebuildEvents = 100_000

func (b *bench) rebuild(ctx context.Context) rebuildResult {
	help := exec.CommandContext(ctx, b.cfg.engram, "projections", "rebuild", "--help")
	help.Env = b.serverEnv()
	out, err := help.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "rebuild") {
		return rebuildResult{Note: "`engram projections rebuild` is not in this build: not measured"}
	}
	db, err := sql.Open("postgres", b.dbURL)
	if err != nil {
		return rebuildResult{Note: err.Error()}
	}
	defer db.Close()
	var events int64
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM events`).Scan(&events); err != nil {
		return rebuildResult{Note: err.Error()}
	}
	if events < rebuildEvents {
		// The runs wrote fewer: a generated history (users, workspaces,
		// conversations, mostly messages) makes up the difference.
		b.logf("rebuild: appending %d generated events to the %d of the runs", rebuildEvents-events, events)
		store, err := eventstore.New(sqlx.NewDb(db, "postgres"))
		if err != nil {
			return rebuildResult{Note: err.Error()}
		}
		n, err := eventgen.New(store, 1).Append(ctx, int(rebuildEvents-events))
		events += int64(n)
		if err != nil {
			return rebuildResult{Note: fmt.Sprintf("generating the history to rebuild: %v", err)}
		}
	}
	args := []string{"projections", "rebuild", "conversations"}
	for _, flag := range []string{"--yes", "--quiet"} {
		if strings.Contains(string(out), flag) {
			args = append(args, flag)
		}
	}
	b.logf("rebuild: engram %s over %d events", strings.Join(args, " "), events)
	cmd := exec.CommandContext(ctx, b.cfg.engram, args...)
	cmd.Env = b.serverEnv()
	start := time.Now()
	out, err = cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		return rebuildResult{Note: fmt.Sprintf("`engram %s` failed: %v: %s", strings.Join(args, " "), err, lastLines(string(out), 3))}
	}
	return rebuildResult{Ran: true, Events: events, Seconds: took.Seconds()}
}
