package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"
)

// verdict is one line of the benchmark's summary: a figure of Engram beside
// its raw limit and its target.
type verdict struct {
	Measure string
	Engram  string
	Limit   string
	Ratio   string
	Target  string
	Met     string // yes, no, or n/a when it could not be measured
	Why     string
}

// Engram's performance targets.
const (
	targetAppendRatio     = 0.60
	targetGetRatio        = 0.50
	targetDeliveryP99     = 50 * time.Millisecond
	targetLagP99          = 250 * time.Millisecond
	targetRebuildPerSec   = 50_000
	targetAnsweredWithin  = 2 * time.Second
	targetIdleRSS         = 60e6 // bytes (60 MB)
	targetPerConnection   = 64 << 10
	boundedRSS            = 256 << 20 // what "memory stays bounded" is taken to mean
	mercureCPUPerDelivery = 5.7       // µs, Mercure's published figure for this load
)

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

func ratio(a, b float64) string {
	if b <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f %%", 100*a/b)
}

// unavailable is the verdict of a figure that could not be measured.
func unavailable(measure, target, why string) verdict {
	return verdict{Measure: measure, Engram: "—", Limit: "—", Ratio: "—", Target: target, Met: "n/a", Why: why}
}

// sseUnmeasured says why an SSE run r measured nothing: it did not run, or
// its subscribers failed. It returns "" when r has measurements.
func sseUnmeasured(r *Report) string {
	switch {
	case r == nil:
		return "not measured"
	case r.SSE != "":
		return r.SSE
	}
	return ""
}

// sseVerdict is the verdict on the SSE run r against target: unavailable
// when r measured nothing (see sseUnmeasured), else what measured makes of
// r, given the verdict with its measure and target and no figures yet.
func sseVerdict(measure, target string, r *Report, measured func(r *Report, v verdict) verdict) verdict {
	if why := sseUnmeasured(r); why != "" {
		return unavailable(measure, target, why)
	}
	return measured(r, verdict{Measure: measure, Limit: "—", Ratio: "—", Target: target})
}

// errorCount is the number of requests of a run not answered 2xx (or 304).
func errorCount(r *Report) int64 {
	var n int64
	for _, e := range r.Errors {
		n += e.N
	}
	return n
}

func reportErrors(r *Report) string {
	n := errorCount(r)
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("; %d failed requests", n)
}

func verdicts(res *benchResults) []verdict {
	var out []verdict

	// Appends.
	const appendMeasure = "Command append via HTTP (POST message, 32 clients, assistant muted)"
	switch {
	case res.Append == nil:
		out = append(out, unavailable(appendMeasure, "≥ 60 % of pgbench", "not measured"))
	case res.Pgbench.TPS <= 0:
		out = append(out, verdict{Measure: appendMeasure, Engram: fmt.Sprintf("%.0f/s", res.Append.CommandsPerSec),
			Limit: "—", Ratio: "—", Target: "≥ 60 % of pgbench", Met: "n/a", Why: "no pgbench figure: " + res.Pgbench.Err})
	default:
		r := res.Append.CommandsPerSec / res.Pgbench.TPS
		v := verdict{Measure: appendMeasure, Engram: fmt.Sprintf("%.0f/s", res.Append.CommandsPerSec),
			Limit: fmt.Sprintf("%.0f tx/s (pgbench, one-row insert, 32 clients)", res.Pgbench.TPS),
			Ratio: ratio(res.Append.CommandsPerSec, res.Pgbench.TPS), Target: "≥ 60 %", Met: yesNo(r >= targetAppendRatio)}
		if r < targetAppendRatio {
			v.Why = fmt.Sprintf("%.0f %% of the insert rate%s", 100*r, reportErrors(res.Append))
		}
		out = append(out, v)
	}

	out = append(out, writeVerdicts(res)...)

	// GETs, each beside the echo handler at as many clients.
	for _, g := range res.Reads {
		name := readMeasure(g)
		echo, when := res.Echo, "at the run's start"
		if g.Clients != readClients[0] {
			echo = res.Echo64
		}
		if g.Echo != nil && g.Echo.GetsPerSec > 0 {
			echo, when = g.Echo, "just before"
		}
		switch {
		case g.Report == nil:
			out = append(out, unavailable(name, "≥ 50 % of echo", "not measured"))
		case echo == nil || echo.GetsPerSec <= 0:
			out = append(out, verdict{Measure: name, Engram: fmt.Sprintf("%.0f/s", g.Report.GetsPerSec), Limit: "—", Ratio: "—",
				Target: "≥ 50 % of echo", Met: "n/a", Why: "no echo baseline"})
		default:
			r := g.Report.GetsPerSec / echo.GetsPerSec
			failed := errorCount(g.Report)
			v := verdict{Measure: name, Engram: fmt.Sprintf("%.0f/s", g.Report.GetsPerSec),
				Limit: fmt.Sprintf("%.0f req/s (bare echo JSON handler, %d clients, %s)", echo.GetsPerSec, g.Clients, when),
				Ratio: ratio(g.Report.GetsPerSec, echo.GetsPerSec), Target: "≥ 50 %, no non-2xx", Met: yesNo(r >= targetGetRatio && failed == 0)}
			if r < targetGetRatio || failed > 0 {
				v.Why = fmt.Sprintf("%.0f %% of the echo rate%s", 100*r, reportErrors(g.Report))
			}
			out = append(out, v)
		}
	}

	// Answered messages.
	const answeredMeasure = "Answered messages (echo expert), 300 posts/s for the window over 32 conversations"
	switch a := res.Answered; {
	case a.Report == nil || a.Report.Commands == 0:
		out = append(out, unavailable(answeredMeasure, "≥ 300/s, none failed, all answered ≤ 2 s after the last post", "not measured"))
	default:
		r := a.Report
		failed := r.Failed + r.Refused
		ok := r.CommandsPerSec >= 0.95*answeredRate && failed == 0 && a.Done && a.Settled <= targetAnsweredWithin
		settled := fmt.Sprintf("all answered %.1f s after the last post", a.Settled.Seconds())
		if !a.Done {
			settled = "not all answered a minute after the last post"
		}
		v := verdict{Measure: answeredMeasure, Engram: fmt.Sprintf("%.0f posts/s, %d failed; %s", r.CommandsPerSec, failed, settled),
			Limit: "—", Ratio: "—", Target: "≥ 300/s, none failed, all answered ≤ 2 s after the last post", Met: yesNo(ok)}
		if !ok {
			var why []string
			if r.CommandsPerSec < 0.95*answeredRate {
				why = append(why, fmt.Sprintf("%.0f posts/s reached", r.CommandsPerSec))
			}
			if failed > 0 {
				why = append(why, fmt.Sprintf("%d posts failed", failed))
			}
			if !a.Done || a.Settled > targetAnsweredWithin {
				why = append(why, settled)
			}
			v.Why = strings.Join(why, "; ")
		}
		out = append(out, v)
	}

	// SSE at 200 × 200.
	const sse200 = "Command → SSE delivery p99, 200 subscribers on one conversation × 200 posts/s, assistant on"
	out = append(out, sseVerdict(sse200, "p99 ≤ 50 ms, none lost", res.SSE200, func(r *Report, v verdict) verdict {
		ok := r.Delivery.P99 <= targetDeliveryP99 && r.Lost == 0 && r.Expected > 0
		v.Engram = fmt.Sprintf("p99 %s, %d of %d delivered, %d lost", ms(r.Delivery.P99), r.Delivered, r.Expected, r.Lost)
		v.Limit, v.Met = "Mercure p99 ≈ 12 ms (published figure, not measured here)", yesNo(ok)
		v.Why = sseWhy(r, targetDeliveryP99)
		return v
	}))

	// SSE at 1,000 × 500.
	const sse1000 = "SSE at 1,000 subscribers × 500 events/s: CPU per delivery"
	out = append(out, sseVerdict(sse1000, "none lost, memory bounded", res.SSE1000, func(r *Report, v verdict) verdict {
		cpu := "—"
		if res.SSE1000Frames > 0 && res.SSE1000CPU > 0 {
			cpu = fmt.Sprintf("%.1f µs", 1e6*res.SSE1000CPU/res.SSE1000Frames)
		}
		ok := r.Lost == 0 && r.Expected > 0 && r.ServerPeakRSS <= boundedRSS
		v.Engram = fmt.Sprintf("%s per frame; %.0f deliveries/s; %d lost; peak RSS %s", cpu, r.DeliveriesPerSec, r.Lost, mib(r.ServerPeakRSS))
		v.Limit = fmt.Sprintf("Mercure ≈ %.1f µs (published figure, not measured here)", mercureCPUPerDelivery)
		v.Target, v.Met = "none lost, memory bounded (peak RSS ≤ 256 MiB)", yesNo(ok)
		var why []string
		if r.Lost > 0 {
			why = append(why, fmt.Sprintf("%d deliveries lost", r.Lost))
		}
		if r.ServerPeakRSS > boundedRSS {
			why = append(why, "peak RSS "+mib(r.ServerPeakRSS))
		}
		if offered := 500.0 * float64(r.Subscribers); r.DeliveriesPerSec < 0.95*offered {
			why = append(why, fmt.Sprintf("%.0f of the %.0f deliveries/s offered (CPU-bound on %d cores)", r.DeliveriesPerSec, offered, res.Machine.CPUs))
		}
		v.Why = strings.Join(why, "; ")
		return v
	}))

	// Projection lag.
	const lagMeasure = "Projection lag p99 at 1,000 events/s"
	switch r := res.Lag; {
	case r == nil || r.ProjectionLag.Count == 0:
		out = append(out, unavailable(lagMeasure, "p99 ≤ 250 ms", "not measured"))
	default:
		achieved := r.CommandsPerSec >= 0.95*r.Rate
		ok := r.ProjectionLag.P99 <= targetLagP99 && achieved
		v := verdict{Measure: lagMeasure, Engram: fmt.Sprintf("p99 %s at %.0f events/s", ms(r.ProjectionLag.P99), r.CommandsPerSec),
			Limit: "—", Ratio: "—", Target: "p99 ≤ 250 ms", Met: yesNo(ok)}
		var why []string
		if r.ProjectionLag.P99 > targetLagP99 {
			why = append(why, fmt.Sprintf("p99 %s", ms(r.ProjectionLag.P99)))
		}
		if !achieved {
			why = append(why, fmt.Sprintf("the offered %.0f events/s were not reached (%.0f/s)", r.Rate, r.CommandsPerSec))
		}
		if r.LagFailed > 0 || r.LagSkipped > 0 {
			ok = false
			why = append(why, fmt.Sprintf("%d of %d probes timed out or were not sent: the p99 is a lower bound",
				r.LagFailed+r.LagSkipped, r.LagFailed+r.LagSkipped+r.ProjectionLag.Count))
		}
		v.Met = yesNo(ok)
		v.Why = strings.Join(why, "; ")
		out = append(out, v)
	}

	// Rebuild.
	const rebuildMeasure = "Projection rebuild (conversations)"
	if !res.Rebuild.Ran {
		out = append(out, unavailable(rebuildMeasure, "≥ 50,000 events/s", res.Rebuild.Note))
	} else {
		rate := float64(res.Rebuild.Events) / res.Rebuild.Seconds
		limit, rt := "—", "—"
		if res.PgbenchBatch.TPS > 0 {
			rows := res.PgbenchBatch.TPS * float64(res.PgbenchBatch.Rows)
			limit = fmt.Sprintf("%.0f rows/s (pgbench, 100-row inserts)", rows)
			rt = ratio(rate, rows)
		}
		v := verdict{Measure: rebuildMeasure, Engram: fmt.Sprintf("%.0f events/s (%d events in %.1fs)", rate, res.Rebuild.Events, res.Rebuild.Seconds),
			Limit: limit, Ratio: rt, Target: "≥ 50,000 events/s", Met: yesNo(rate >= targetRebuildPerSec)}
		if rate < targetRebuildPerSec {
			v.Why = fmt.Sprintf("%.0f events/s", rate)
		}
		out = append(out, v)
	}

	// Memory.
	if res.IdleRSS > 0 {
		v := verdict{Measure: "Idle RSS", Engram: mib(res.IdleRSS), Limit: "—", Ratio: "—", Target: "≤ 60 MB", Met: yesNo(res.IdleRSS <= targetIdleRSS)}
		if res.IdleRSS > targetIdleRSS {
			v.Why = fmt.Sprintf("%.1f MB", res.IdleRSS/1e6)
		}
		out = append(out, v)
	} else {
		out = append(out, unavailable("Idle RSS", "≤ 60 MB", "not measured"))
	}
	const perConn = "Memory per idle SSE connection (1,000 idle)"
	out = append(out, sseVerdict(perConn, "≤ 64 KiB", res.Idle, func(r *Report, v verdict) verdict {
		if r.Subscribers == 0 || r.MetricsError != "" {
			return unavailable(perConn, "≤ 64 KiB", "no connection held or no /metrics")
		}
		n := float64(r.Subscribers)
		inuse := (r.ServerInuse - r.ServerInuseBefore) / n
		rss := (r.ServerRSS - r.ServerRSSBefore) / n
		worst := max(inuse, rss)
		v.Engram = fmt.Sprintf("%.1f KiB live (Go heap + stacks), %.1f KiB RSS", inuse/1024, rss/1024)
		v.Met = yesNo(worst <= targetPerConnection)
		if worst > targetPerConnection {
			v.Why = fmt.Sprintf("%.1f KiB", worst/1024)
		}
		return v
	}))
	return out
}

func sseWhy(r *Report, p99 time.Duration) string {
	var why []string
	if r.Expected == 0 {
		why = append(why, "nothing was delivered")
	}
	if r.Delivery.P99 > p99 {
		why = append(why, "p99 "+ms(r.Delivery.P99))
	}
	if r.Lost > 0 {
		why = append(why, fmt.Sprintf("%d deliveries lost (%d reconnects)", r.Lost, r.Reconnects))
		if !r.Drained {
			why = append(why, "still missing when the drain ended")
		}
	}
	if r.Commands > 0 && r.CommandsPerSec < 0.95*r.Rate {
		why = append(why, fmt.Sprintf("%.0f of the %.0f events/s offered", r.CommandsPerSec, r.Rate))
	}
	return strings.Join(why, "; ")
}

// printSummary prints the verdicts for the terminal.
func printSummary(w io.Writer, res *benchResults) {
	fmt.Fprintf(w, "\nEngram benchmark — %d CPUs (%s), load average %s → %s, %s\n",
		res.Machine.CPUs, res.Machine.CPUModel, res.LoadBefore, res.LoadAfter, res.Took.Round(time.Second))
	for _, v := range verdicts(res) {
		fmt.Fprintf(w, "\n%s\n  Engram %s\n  limit  %s   ratio %s\n  target %s: %s", v.Measure, v.Engram, v.Limit, v.Ratio, v.Target, strings.ToUpper(v.Met))
		if v.Why != "" {
			fmt.Fprintf(w, " (%s)", v.Why)
		}
		fmt.Fprintln(w)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(w, "\nnote: %s\n", n)
	}
}

// handWritten starts the part of docs/benchmarks.md that the benchmark
// keeps as it is when it rewrites the figures above it.
const handWritten = "<!-- Everything below this line is written by hand; make bench keeps it. -->"

// writeBenchmarks writes the report to path, keeping the hand-written part
// of the file it replaces.
func writeBenchmarks(path string, res *benchResults) error {
	kept := "\n## Analysis\n\nWhere the time goes, and what would close the gaps: to be written after a run.\n"
	old, err := os.ReadFile(path)
	switch {
	case err == nil:
		if _, rest, ok := bytes.Cut(old, []byte(handWritten)); ok {
			kept = string(rest)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("read %s: %w", path, err)
	}
	var b strings.Builder
	renderBenchmarks(&b, res)
	b.WriteString(handWritten)
	b.WriteString(kept)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func renderBenchmarks(w io.Writer, res *benchResults) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("# Benchmarks\n\n")
	p("Written by `make bench` on %s; the run took %s.", res.Started.UTC().Format("2006-01-02 15:04 MST"), res.Took.Round(time.Second))
	if res.Quick {
		p(" **Quick run** (`-quick`, windows of a few seconds): a trial, not figures to quote.")
	}
	p("\nEvery Engram figure stands beside the raw limit measured in the same run, on the same\n")
	p("machine and the same fresh database, and beside its target.\n\n")

	p("## Summary\n\n")
	p("| Measure | Engram | Raw limit (same run) | Ratio | Target | Met |\n|---|---|---|---|---|---|\n")
	for _, v := range verdicts(res) {
		met := v.Met
		if v.Why != "" {
			met += " — " + v.Why
		}
		p("| %s | %s | %s | %s | %s | %s |\n", v.Measure, cell(v.Engram), cell(v.Limit), v.Ratio, v.Target, cell(met))
	}
	for _, n := range res.Notes {
		p("\nNote: %s\n", cell(n))
	}

	p("\n## Machine\n\n")
	m := res.Machine
	p("| | |\n|---|---|\n")
	p("| CPUs (`nproc`) | %d |\n| CPU | %s |\n| Memory | %s |\n| Kernel | %s |\n", m.CPUs, m.CPUModel, m.Memory, m.Kernel)
	p("| Go | %s |\n| PostgreSQL | %s |\n| Redis | %s |\n| pgbench | %s |\n", m.Go, m.Postgres, m.Redis, orDash(m.Pgbench))
	p("| Load average (1, 5, 15 min) | %s at the start, %s at the end |\n", res.LoadBefore, res.LoadAfter)
	p("\nEverything runs on this one machine, on loopback: the server, PostgreSQL, Redis and the\n")
	p("load generator share its cores, as pgbench shares them with PostgreSQL for the raw limit.\n")

	p("\n## Raw limits\n\n")
	p("| Limit | Figure | Latency |\n|---|---|---|\n")
	p("| pgbench, one row per transaction into a copy of `events` (`-M prepared -c %d -j 2`) | %s | %s |\n",
		res.Pgbench.Clients, pgFigure(res.Pgbench, "tx/s"), pgLatency(res.Pgbench))
	p("| pgbench, 100 rows per statement (`-c %d -j 2`) | %s | %s |\n", res.PgbenchBatch.Clients, pgFigure(res.PgbenchBatch, "rows/s"), pgLatency(res.PgbenchBatch))
	if res.Echo != nil {
		p("| bare echo JSON handler, GET, %d clients (same load client) | %.0f req/s | %s |\n", res.Echo.Concurrency, res.Echo.GetsPerSec, latencies(res.Echo.GetLatency))
	}
	if e := res.EchoOverload; e != nil {
		p("| bare echo JSON handler, GET, open loop at %.0f/s (the overload run's rate and client) | %.0f req/s | %s |\n", e.Rate, e.GetsPerSec, latencies(e.GetLatency))
	}

	p("\n## Engram\n\n")
	p("| Run | Throughput | Latency | Errors |\n|---|---|---|---|\n")
	if r := res.Append; r != nil {
		cpu := ""
		if res.AppendCPU > 0 && r.Commands > 0 {
			cpu = fmt.Sprintf(" (server CPU %.0f µs per command", 1e6*res.AppendCPU/float64(r.Commands))
			if r.ServerEvents > 0 {
				cpu += fmt.Sprintf("; %.1f events appended per command", r.ServerEvents/float64(r.Commands))
			}
			cpu += ")"
		}
		p("| POST message, 32 clients, as fast as possible | %.0f commands/s%s | %s | %s |\n", r.CommandsPerSec, cpu, latencies(r.CommandLatency), errorList(r))
	}
	if a := res.Answered; a.Report != nil && a.Report.Commands > 0 {
		r := a.Report
		settled := fmt.Sprintf("all answered %.1f s after the window", a.Settled.Seconds())
		if !a.Done {
			settled = "not all answered a minute after the window"
		}
		p("| POST message at %d/s, default configuration: the assistant answers each | %.0f commands/s; %.1f events per message; server CPU %.0f µs per message with its answer; %s | %s | %s |\n",
			answeredRate, r.CommandsPerSec, a.Events/float64(r.Commands), 1e6*a.CPU/float64(r.Commands), settled, latencies(r.CommandLatency), errorList(r))
	}
	if r := res.Echo64; r != nil {
		p("| bare echo JSON handler, GET, 64 clients (same load client) | %.0f req/s | %s | %s |\n", r.GetsPerSec, latencies(r.GetLatency), errorList(r))
	}
	if r := res.Overload; r != nil {
		p("| POST message, open loop at %.0f/s (twice the closed loop) | %.0f commands/s accepted; %d refused in %s (%s from the moment each was sent); requests sent %s after their scheduled time | %s | %s |\n",
			r.Rate, r.CommandsPerSec, r.Refused, latencies(r.RefusalLatency), latencies(r.RefusalServed), latencies(r.SendLag), latencies(r.CommandLatency), errorList(r))
	}
	for _, g := range res.Reads {
		if e := g.Echo; e != nil {
			p("| bare echo JSON handler, GET, %d clients, just before the next row | %.0f req/s | %s | %s |\n", g.Clients, e.GetsPerSec, latencies(e.GetLatency), errorList(e))
		}
		if r := g.Report; r != nil {
			p("| %s | %.0f GET/s | %s | %s |\n", readMeasure(g), r.GetsPerSec, latencies(r.GetLatency), errorList(r))
		}
	}
	if r := res.Lag; r != nil {
		p("| POST message at 1,000/s, %d clients, %d conversations | %.0f commands/s | %s; projection lag %s | %s |\n", lagClients, appendConcurrency, r.CommandsPerSec, latencies(r.CommandLatency), latencies(r.ProjectionLag), errorList(r))
	}
	for _, s := range []struct {
		name string
		r    *Report
	}{{"200 subscribers × 200 events/s", res.SSE200}, {"1,000 subscribers × 500 events/s", res.SSE1000}} {
		r := s.r
		if r == nil {
			continue
		}
		if r.SSE != "" {
			p("| SSE, %s | %s | — | — |\n", s.name, r.SSE)
			continue
		}
		p("| SSE, %s (%s streams) | %.0f commands/s; %d of %d deliveries (%.0f/s), %d lost, %d duplicates, %d reconnects | POST→SSE %s | %s |\n",
			s.name, r.Scope, r.CommandsPerSec, r.Delivered, r.Expected, r.DeliveriesPerSec, r.Lost, r.Duplicates, r.Reconnects, latencies(r.Delivery), errorList(r))
	}
	if r := res.SSE1000; r != nil && r.SSE == "" {
		p("\nAt 1,000 × 500 the server used %.1f s of CPU from the start of the window until every delivery was drained, for %.0f frames sent: ",
			res.SSE1000CPU, res.SSE1000Frames)
		if res.SSE1000Frames > 0 {
			p("**%.1f µs per frame**", 1e6*res.SSE1000CPU/res.SSE1000Frames)
			if res.AppendCPU > 0 && res.Append != nil && res.Append.Commands > 0 {
				perCmd := res.AppendCPU / float64(res.Append.Commands)
				net := res.SSE1000CPU - perCmd*float64(r.Commands)
				p(" (%.1f µs once the %d commands' own cost, measured in the append run, is taken out)", 1e6*max(net, 0)/res.SSE1000Frames, r.Commands)
			}
			p(". ")
		}
		p("Slow-consumer disconnects: %.0f. Server RSS peaked at %s.\n", max(r.ServerSlowDrops, 0), mib(r.ServerPeakRSS))
	}
	p("\nIdle RSS after start: %s.", mib(res.IdleRSS))
	if r := res.Idle; r != nil && r.SSE == "" && r.Subscribers > 0 {
		p(" With %d idle live streams (garbage collected before each sample): Go heap + stacks %s → %s, RSS %s → %s.",
			r.Subscribers, mib(r.ServerInuseBefore), mib(r.ServerInuse), mib(r.ServerRSSBefore), mib(r.ServerRSS))
	}
	p("\n")
	if res.Rebuild.Ran {
		p("\nRebuild of the conversations read model: %d events in %.2f s.\n", res.Rebuild.Events, res.Rebuild.Seconds)
	} else if res.Rebuild.Note != "" {
		p("\nRebuild: %s.\n", strings.TrimSuffix(res.Rebuild.Note, "."))
	}

	p("\n## How to reproduce\n\n")
	p("```sh\nmake services   # PostgreSQL (with pgbench) and Redis on loopback\nmake bench      # builds bin/engram and bin/engram-load, runs everything, rewrites this file\n```\n\n")
	p("`make bench` runs `bin/engram-load bench`, which creates a fresh database `engram_bench_<random>`,\n")
	p("measures the raw limits (pgbench into a copy of the `events` table; a bare echo handler served by\n")
	p("`engram-load echo`), starts `engram serve` in production mode on a free loopback port (profiles on a\n")
	p("second loopback port, `ENGRAM_PPROF_ADDR`) in the default configuration for its idle memory\n")
	p("and a run of messages the assistant answers, restarts it with the assistant muted\n")
	p("(`ENGRAM_ROUTER=patterns`, one rule ignoring every message) for every other run, drives it over\n")
	p("HTTP and SSE only, times `engram projections rebuild conversations`, then drops the database\n")
	p("and the Redis keys of the run. It takes about six minutes; `-quick` shortens every window.\n\n")
	p("In the default configuration every posted message is routed and answered by the `echo` expert\n")
	p("(a task submitted, started and completed, an assistant message, a memory item). When a run\n")
	p("posts thousands of messages the answers come minutes later, while the next run measures: so\n")
	p("the runs mute the assistant, and one run at a moderate rate shows what an answered message\n")
	p("costs. Between runs the benchmark waits (at most 30 s) for the read models to catch up.\n")
	p("The machine's speed drifts within a run, so each GET run is judged against the echo handler\n")
	p("measured just before it, with the same client, concurrency and window (the server then idles).\n\n")
	p("Latencies of paced runs (`-rate`) are measured from the scheduled start of each request, so a\n")
	p("server that falls behind is not flattered (coordinated omission). Open-loop runs send from 512\n")
	p("connections opened before the window, whatever the answers, and report how late each request\n")
	p("left after its scheduled time (the client's own delay) and the refusals timed from their\n")
	p("sending; the bare echo handler driven by the same open loop shows what the machine alone adds.\n")
	p("POST→SSE delivery is timed from\n")
	p("the send time each message carries in its metadata to the frame's arrival; *lost* counts\n")
	p("acknowledged messages a connected subscriber never received (subscribers resume with\n")
	p("`Last-Event-ID` after a disconnect, as EventSource does). Projection lag is the time from a POST's\n")
	p("answer to the answer of a GET sent with its `Engram-Min-Position`. CPU per frame comes from\n")
	p("`/proc/<pid>/stat` of the server; memory from `/proc/<pid>/status` and `/metrics`.\n\n")
	p("Any scenario can be run by hand against a running server:\n\n")
	p("```sh\nbin/engram-load -scenario mixed -rate 500 -duration 30s -subscribers 100\n")
	p("bin/engram-load -scenario sse -subscribers 200 -rate 200 -conversations 8\n")
	p("bin/engram-load -scenario append -open-loop -rate 1500 -duration 10s   # overload: accepted, refused, send lag\n")
	p("bin/engram-load -h   # every flag\n```\n\n")
}

func cell(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", "\\|"), "\n", " ") }

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func pgFigure(r pgbenchResult, unit string) string {
	if r.Err != "" {
		return "not measured: " + cell(r.Err)
	}
	return fmt.Sprintf("%.0f %s", r.TPS*float64(r.Rows), unit)
}

func pgLatency(r pgbenchResult) string {
	if r.Err != "" || r.Latency == 0 {
		return "—"
	}
	return fmt.Sprintf("average %.2fms per transaction", r.Latency)
}

func errorList(r *Report) string {
	if len(r.Errors) == 0 {
		return "none"
	}
	parts := make([]string, len(r.Errors))
	for i, e := range r.Errors {
		parts[i] = fmt.Sprintf("%s ×%d", e.What, e.N)
	}
	return cell(strings.Join(parts, ", "))
}

// readMeasure names a GET run in the report.
func readMeasure(g readRun) string {
	what := map[string]string{
		readConversation: "GET conversation",
		readMessages:     "GET messages, 20 a page",
		readWorkspaces:   "GET workspaces (the caller's list)",
		readRevalidate:   "GET conversation with If-None-Match (304)",
	}[g.Read]
	return fmt.Sprintf("%s, %d clients", what, g.Clients)
}
