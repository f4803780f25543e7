package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sampleResults() *benchResults {
	return &benchResults{
		Started: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), Took: 5 * time.Minute,
		Machine:    machine{CPUs: 2, CPUModel: "Test CPU", Memory: "4.0 GiB", Go: "go1.26", Postgres: "PostgreSQL 15", Redis: "Redis 7"},
		LoadBefore: "0.10 0.20 0.30", LoadAfter: "1.00 0.80 0.50",
		Pgbench:   pgbenchResult{TPS: 10000, Clients: 32, Rows: 1, Latency: 3.2},
		Echo:      &Report{Concurrency: 32, GetsPerSec: 40000},
		Echo64:    &Report{Concurrency: 64, GetsPerSec: 40000},
		IdleRSS:   30 << 20,
		Append:    &Report{Commands: 140000, CommandsPerSec: 7000},
		AppendCPU: 20,
		Reads: []readRun{
			{Read: readConversation, Clients: 32, Report: &Report{GetsPerSec: 12000}},
			{Read: readMessages, Clients: 32, Report: &Report{GetsPerSec: 25000}},
			// Judged against the echo handler measured just before it
			// (60 %), not the one of the run's start (38 %).
			{Read: readWorkspaces, Clients: 32, Report: &Report{GetsPerSec: 15000}, Echo: &Report{Concurrency: 32, GetsPerSec: 25000}},
			{Read: readWorkspaces, Clients: 64, Report: &Report{GetsPerSec: 25000, Errors: []Count{{What: "GET workspaces 503", N: 2}}}},
		},
		Lag:      &Report{Rate: 1000, CommandsPerSec: 998, ProjectionLag: Summary{Count: 3000, P99: 120 * time.Millisecond}},
		SSE200:   &Report{Rate: 200, CommandsPerSec: 200, Commands: 4000, Scope: "workspace", Expected: 800000, Delivered: 799990, Lost: 10, Delivery: Summary{Count: 1, P99: 30 * time.Millisecond}},
		Answered: answeredResult{Report: &Report{Commands: 3000, CommandsPerSec: 299}, Done: true, Settled: 1500 * time.Millisecond},
		Idle:     &Report{Subscribers: 1000, ServerInuse: 60 << 20, ServerInuseBefore: 20 << 20, ServerRSS: 70 << 20, ServerRSSBefore: 40 << 20},
		Rebuild:  rebuildResult{Note: "`engram projections rebuild` is not in this build: not measured"},
	}
}

func TestVerdictsJudgeTargets(t *testing.T) {
	got := map[string]verdict{}
	for _, v := range verdicts(sampleResults()) {
		got[v.Measure] = v
	}
	for measure, met := range map[string]string{
		"Command append via HTTP (POST message, 32 clients, assistant muted)":                         "yes", // 70 %
		"GET conversation, 32 clients":                                                                "no",  // 30 %
		"GET messages, 20 a page, 32 clients":                                                         "yes", // 62 %
		"GET workspaces (the caller's list), 32 clients":                                              "yes", // 60 % of the echo just before
		"GET workspaces (the caller's list), 64 clients":                                              "no",  // 62 %, but 2 failed
		"Command → SSE delivery p99, 200 subscribers on one conversation × 200 posts/s, assistant on": "no",  // 10 lost
		"SSE at 1,000 subscribers × 500 events/s: CPU per delivery":                                   "n/a",
		"Projection lag p99 at 1,000 events/s":                                                        "yes",
		"Projection rebuild (conversations)":                                                          "n/a",
		"Idle RSS":                                                                                    "yes",
		"Answered messages (echo expert), 300 posts/s for the window over 32 conversations":           "yes",
		"Memory per idle SSE connection (1,000 idle)":                                                 "yes", // 41 KiB live, 31 KiB RSS
	} {
		v, ok := got[measure]
		if !ok {
			t.Errorf("no verdict for %q", measure)
			continue
		}
		if v.Met != met {
			t.Errorf("%s: met %q (%s), want %q", measure, v.Met, v.Why, met)
		}
		if v.Met == "no" && v.Why == "" {
			t.Errorf("%s: missed without a reason", measure)
		}
	}
	if v := got["GET workspaces (the caller's list), 32 clients"]; !strings.Contains(v.Limit, "25000 req/s") || !strings.Contains(v.Limit, "just before") {
		t.Errorf("GET workspaces limit %q is not the echo handler measured just before", v.Limit)
	}
	if v := got["Command → SSE delivery p99, 200 subscribers on one conversation × 200 posts/s, assistant on"]; !strings.Contains(v.Why, "10 deliveries lost") {
		t.Errorf("SSE verdict reason %q does not count the lost deliveries", v.Why)
	}
}

func TestWriteBenchmarksKeepsTheHandWrittenPart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "benchmarks.md")
	if err := writeBenchmarks(path, sampleResults()); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(path)
	for _, want := range []string{"# Benchmarks", "| Command append via HTTP", "70 %", "10000 tx/s", "Test CPU", "make bench", handWritten, "## Analysis"} {
		if !strings.Contains(string(first), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	analysis := "\n## Analysis\n\nThe GETs wait on two queries.\n"
	edited := strings.Replace(string(first), string(first[strings.Index(string(first), handWritten)+len(handWritten):]), analysis, 1)
	if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	res := sampleResults()
	res.Append.CommandsPerSec = 5000
	if err := writeBenchmarks(path, res); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(path)
	if !strings.HasSuffix(string(second), handWritten+analysis) {
		t.Errorf("the hand-written part was not kept:\n%s", second[max(0, len(second)-300):])
	}
	if !strings.Contains(string(second), "| 50 % |") {
		t.Error("the figures were not rewritten")
	}
}
