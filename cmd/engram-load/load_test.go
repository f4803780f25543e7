package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/engramhq/engram/test/enginetest"
)

// The load generator against the real binary: a short mixed run posts,
// reads and delivers every acknowledged message to every subscriber.
func TestMixedRunAgainstEngram(t *testing.T) {
	inst := enginetest.Start(t, enginetest.Options{}) // skips t in -short mode
	rep, err := Run(t.Context(), Options{
		URL: inst.URL, Scenario: scenarioMixed, Concurrency: 3, Duration: time.Second,
		Subscribers: 4, PerUser: 3, LagSample: 0.5, Seed: 2, Drain: 15 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Commands == 0 || rep.Gets == 0 || rep.CommandLatency.Count != rep.Commands || rep.ProjectionLag.Count == 0 {
		t.Errorf("commands %d (%d timed), GETs %d, lag probes %d", rep.Commands, rep.CommandLatency.Count, rep.Gets, rep.ProjectionLag.Count)
	}
	for _, e := range rep.Errors {
		// A lag probe may time out (Engram-Min-Position waits 5s at most)
		// on a machine busy with other tests; nothing else may fail.
		if !strings.HasPrefix(e.What, "GET lag-probe ") {
			t.Errorf("errors: %v", rep.Errors)
			break
		}
	}
	if rep.SSE != "" || rep.Subscribers != 4 || len(rep.SubscriberFailed) > 0 {
		t.Fatalf("SSE %q, %d subscribers, failed %v", rep.SSE, rep.Subscribers, rep.SubscriberFailed)
	}
	if want := 4 * rep.Commands; rep.Expected != want || rep.Delivered != want || rep.Lost != 0 || rep.Duplicates != 0 || !rep.Drained {
		t.Errorf("deliveries %d of %d (want %d), lost %d, duplicates %d, drained %v",
			rep.Delivered, rep.Expected, want, rep.Lost, rep.Duplicates, rep.Drained)
	}
	// Messages the load did not post (the assistant's replies) carry no send
	// time; every acknowledged one is timed.
	if rep.Delivery.Count != rep.Delivered {
		t.Errorf("%d deliveries timed of %d", rep.Delivery.Count, rep.Delivered)
	}
	if rep.MetricsError != "" || rep.ServerRSS <= 0 || rep.ServerFramesSent < float64(rep.Delivered) {
		t.Errorf("server metrics: %q, RSS %v, frames sent %v", rep.MetricsError, rep.ServerRSS, rep.ServerFramesSent)
	}
}

// The get scenario is the baseline: it needs no account and no setup.
func TestGetRunAgainstTheEchoServer(t *testing.T) {
	srv := newEchoServer()
	ts := httptestServer(t, srv)
	rep, err := Run(t.Context(), Options{URL: ts, Scenario: scenarioGet, Path: "/echo", Concurrency: 2, Duration: 300 * time.Millisecond, Rate: 200})
	if err != nil {
		t.Fatal(err)
	}
	// The rate is a ceiling: a busy machine may run fewer requests, never
	// more than 200/s allows (60 in 300 ms, plus the first tick).
	if rep.Gets < 1 || rep.Gets > 70 || len(rep.Errors) > 0 || rep.GetLatency.P99 <= 0 {
		t.Errorf("GETs %d at 200/s for 300ms (want at most about 60), errors %v, p99 %v", rep.Gets, rep.Errors, rep.GetLatency.P99)
	}
}

// An open-loop run sends on schedule from connections opened before the
// window, whatever the server answers, and sorts the answers: every other
// POST is refused here, and none may be counted twice or lost.
func TestOpenLoopSortsAnswersFromWarmConnections(t *testing.T) {
	var posts, conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			return // the warm-up's GET
		}
		if posts.Add(1)%2 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Engram-Position", "7")
		w.WriteHeader(http.StatusCreated)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	r := &runner{o: Options{Rate: 400, OpenLoop: true}.withDefaults(), api: newAPI(srv.URL, openLoopSenders),
		users: []user{{token: "t"}}, convs: []string{"a", "b"}}
	r.warm(t.Context(), openLoopSenders)
	warmed := conns.Load()
	if warmed < openLoopSenders/4 {
		t.Fatalf("the warm-up opened %d connections, want most of %d", warmed, openLoopSenders)
	}

	var res workerResult
	for _, w := range r.openLoop(t.Context(), time.Now().Add(500*time.Millisecond)) {
		res.offered += w.offered
		res.commands += w.commands
		res.refused += w.refused
		res.failed += w.failed
		res.unsent += w.unsent
		res.sendLag.merge(&w.sendLag)
	}
	// 400/s for 500 ms schedules about 200 requests.
	if total := res.offered + res.unsent; total < 150 || total > 250 {
		t.Errorf("%d scheduled (%d sent, %d late), want about 200", total, res.offered, res.unsent)
	}
	if res.offered != posts.Load() || res.commands+res.refused != res.offered || res.failed != 0 {
		t.Errorf("offered %d, server saw %d; accepted %d + refused %d, failed %d", res.offered, posts.Load(), res.commands, res.refused, res.failed)
	}
	if res.refused == 0 || res.commands == 0 || res.sendLag.n != uint64(res.offered) {
		t.Errorf("accepted %d, refused %d, send lags recorded %d of %d", res.commands, res.refused, res.sendLag.n, res.offered)
	}
	if opened := conns.Load() - warmed; opened > warmed {
		t.Errorf("the window opened %d connections after %d warm ones", opened, warmed)
	}
}
