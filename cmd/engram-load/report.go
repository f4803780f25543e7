package main

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// printReport writes the report for a person to read.
func printReport(w io.Writer, r *Report) {
	rate := "as fast as possible"
	if r.Rate > 0 {
		rate = fmt.Sprintf("%.0f/s", r.Rate)
	}
	fmt.Fprintf(w, "scenario %s, %d clients, rate %s, window %s\n", r.Scenario, r.Concurrency, rate, r.Window.Round(time.Millisecond))
	if r.Commands > 0 {
		fmt.Fprintf(w, "commands   %8d  %9.1f/s  latency %s\n", r.Commands, r.CommandsPerSec, latencies(r.CommandLatency))
	}
	if r.Gets > 0 {
		fmt.Fprintf(w, "GETs       %8d  %9.1f/s  latency %s\n", r.Gets, r.GetsPerSec, latencies(r.GetLatency))
	}
	if r.Offered > 0 {
		fmt.Fprintf(w, "open loop  %d offered, %d refused for overload (latency %s), %d failed\n",
			r.Offered, r.Refused, latencies(r.RefusalLatency), r.Failed)
		fmt.Fprintf(w, "           sent after the scheduled time by %s\n", latencies(r.SendLag))
		if r.Refused > 0 {
			fmt.Fprintf(w, "           refusals from the moment they were sent: %s\n", latencies(r.RefusalServed))
		}
	}
	if r.Unsent > 0 {
		fmt.Fprintf(w, "behind     %d operations scheduled at %.0f/s were not sent before the window ended\n", r.Unsent, r.Rate)
	}
	if r.ProjectionLag.Count > 0 {
		fmt.Fprintf(w, "projection lag (POST answer → read at its position, %d probes): %s\n", r.ProjectionLag.Count, latencies(r.ProjectionLag))
		if r.LagSkipped > 0 || r.LagFailed > 0 {
			fmt.Fprintf(w, "           %d probes failed (the wait timed out) and %d were not sent (64 waiting already): the figures are lower bounds\n",
				r.LagFailed, r.LagSkipped)
		}
	}
	switch {
	case r.SSE != "":
		fmt.Fprintf(w, "SSE        %s\n", r.SSE)
	case r.Subscribers > 0 || len(r.SubscriberFailed) > 0:
		fmt.Fprintf(w, "SSE        %d %s subscribers connected", r.Subscribers, r.Scope)
		for _, f := range r.SubscriberFailed {
			fmt.Fprintf(w, ", %d failed (%s)", f.N, f.What)
		}
		fmt.Fprintln(w)
		if r.Expected > 0 || r.Scenario != scenarioIdle {
			fmt.Fprintf(w, "delivery   POST→SSE %s\n", latencies(r.Delivery))
			fmt.Fprintf(w, "           %d of %d deliveries (%.0f/s), lost %d, duplicates %d, reconnects %d, drained %v\n",
				r.Delivered, r.Expected, r.DeliveriesPerSec, r.Lost, r.Duplicates, r.Reconnects, r.Drained)
			if !r.Drained {
				fmt.Fprintf(w, "           the drain ended before every delivery arrived: lost counts those still missing then\n")
			}
			if r.Unmarked > 0 {
				fmt.Fprintf(w, "           %d message frames not posted by this run (e.g. the assistant's replies)\n", r.Unmarked)
			}
		}
		if r.ServerFramesSent >= 0 {
			fmt.Fprintf(w, "server     frames sent %.0f, slow-consumer disconnects %.0f, open streams %.0f\n",
				r.ServerFramesSent, max(r.ServerSlowDrops, 0), r.ServerSSEConns)
		}
	}
	if r.MetricsError != "" {
		fmt.Fprintf(w, "server     /metrics unavailable: %s\n", r.MetricsError)
	} else {
		fmt.Fprintf(w, "server     RSS %s (peak %s, before %s), Go heap+stacks %s (before %s)",
			mib(r.ServerRSS), mib(r.ServerPeakRSS), mib(r.ServerRSSBefore), mib(r.ServerInuse), mib(r.ServerInuseBefore))
		if r.ServerCPU >= 0 {
			fmt.Fprintf(w, ", CPU %.2fs in the window", r.ServerCPU)
		}
		fmt.Fprintln(w)
		if r.ServerEvents > 0 && r.Commands > 0 {
			fmt.Fprintf(w, "server     %.0f events appended in the window (%.2f per command)\n", r.ServerEvents, r.ServerEvents/float64(r.Commands))
		}
	}
	if len(r.Errors) == 0 {
		fmt.Fprintln(w, "errors     none")
		return
	}
	parts := make([]string, len(r.Errors))
	for i, e := range r.Errors {
		parts[i] = fmt.Sprintf("%s ×%d", e.What, e.N)
	}
	fmt.Fprintf(w, "errors     %s\n", strings.Join(parts, ", "))
}

func latencies(s Summary) string {
	if s.Count == 0 {
		return "n/a"
	}
	return fmt.Sprintf("p50 %s  p95 %s  p99 %s  max %s", ms(s.P50), ms(s.P95), ms(s.P99), ms(s.Max))
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

func mib(b float64) string {
	return fmt.Sprintf("%.1f MiB", b/(1<<20))
}
