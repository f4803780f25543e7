// Command engram-load drives a running Engram like real clients do — it
// registers and logs in users, creates a workspace and conversations, posts
// and reads messages and holds live event streams (SSE) — at a fixed rate or
// as fast as it can, then prints throughput, latency percentiles, POST→SSE
// delivery times, projection lag, lost events, errors and the server's
// memory.
//
//	engram-load [flags]              run a load scenario against -url
//	engram-load echo [-addr A]       serve a bare echo JSON handler (a baseline)
//	engram-load bench [flags]        run the whole benchmark and write docs/benchmarks.md
//
// It only talks to loopback addresses unless -allow-remote is given, and it
// always stops by itself.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "echo":
			return runEcho(ctx, args[1:], stdout, stderr)
		case "bench":
			return runBench(ctx, args[1:], stdout, stderr)
		}
	}
	return runLoad(ctx, args, stdout, stderr)
}

func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("engram-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o Options
	fs.StringVar(&o.URL, "url", "http://127.0.0.1:8080", "base URL of the Engram server")
	fs.StringVar(&o.Scenario, "scenario", scenarioMixed, "append | read | sse | mixed | idle | get")
	fs.Float64Var(&o.Rate, "rate", 0, "operations per second for the whole run; 0 = as fast as possible")
	fs.IntVar(&o.Concurrency, "concurrency", 32, "concurrent clients")
	fs.DurationVar(&o.Duration, "duration", 20*time.Second, "length of the measured window (at most 1h)")
	fs.IntVar(&o.Subscribers, "subscribers", -1, "live streams to hold (-1: 100 for sse and idle, 20 for mixed, else 0)")
	fs.IntVar(&o.PerUser, "per-user", 16, "live streams per user (keep within ENGRAM_SSE_MAX_CONNECTIONS_PER_USER)")
	fs.IntVar(&o.Users, "users", 1, "least number of users to create")
	fs.IntVar(&o.Conversations, "conversations", 0, "conversations (0: -concurrency for append and mixed, else 8)")
	fs.StringVar(&o.Scope, "scope", scopeWorkspace, "stream subscribers open: workspace (every conversation) or conversation")
	fs.StringVar(&o.Read, "read", "conversation", "what the read scenario GETs: conversation, messages (20 a page), workspaces (the caller's list) or revalidate (a conversation with If-None-Match: 304)")
	fs.StringVar(&o.Path, "path", "", "path the get scenario GETs (no auth), e.g. /echo")
	fs.Float64Var(&o.LagSample, "lag-sample", 0.05, "fraction of POSTs followed by a read with Engram-Min-Position (projection lag)")
	fs.IntVar(&o.Seed, "seed", -1, "messages per conversation before the window (-1: 20 for read and mixed, else 0)")
	fs.DurationVar(&o.Drain, "drain", 10*time.Second, "how long to wait for deliveries after the last POST")
	fs.BoolVar(&o.OpenLoop, "open-loop", false, "append at -rate whatever the answers, from 512 connections (an overload test)")
	allowRemote := fs.Bool("allow-remote", false, "allow a -url that is not a loopback address")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	quiet := fs.Bool("q", false, "no progress lines")
	cpuProfile := fs.String("cpuprofile", "", "write this client's CPU profile to the file (to see what the load itself costs)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "engram-load: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if err := checkTarget(o.URL, *allowRemote); err != nil {
		fmt.Fprintln(stderr, "engram-load:", err)
		return 2
	}
	if !*quiet {
		o.Log = stderr
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "engram-load:", err)
			return 2
		}
		defer stop()
	}
	rep, err := Run(ctx, o)
	if rep == nil {
		fmt.Fprintln(stderr, "engram-load:", err)
		if errors.Is(err, errInvalidOptions) {
			return 2
		}
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		printReport(stdout, rep)
	}
	if err != nil {
		fmt.Fprintln(stderr, "engram-load: stopped early:", err)
		return 1
	}
	return 0
}

// startCPUProfile profiles this process into the file until the returned
// function is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// checkTarget refuses a URL that is not http(s) on a loopback address,
// unless remote targets are allowed.
func checkTarget(raw string, allowRemote bool) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("-url %q: want http(s)://host:port", raw)
	}
	if allowRemote {
		return nil
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-url %q is not a loopback address: pass -allow-remote to load another machine", raw)
	}
	return nil
}
