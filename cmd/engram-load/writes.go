package main

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The write path's runs: closed-loop appends (the capacity), 200 posts/s
// into one conversation, and an open loop at twice the capacity (overload).

// benchPhase is one run of the benchmark.
type benchPhase struct {
	name string
	fn   func(context.Context) error
}

// Targets of the write path.
const (
	oneConversationRate = 200  // posts/s into one conversation
	overloadFactor      = 2    // offered load over the closed-loop capacity
	targetAccepted      = 0.90 // accepted rate at overload over capacity
	targetRefusalP99    = 100 * time.Millisecond
	writeWindow         = 10 * time.Second // of the one-conversation and overload runs
)

// writePhases are the write path's runs, in order: the capacity first, which
// the overload run doubles.
func (b *bench) writePhases(w windows) []benchPhase {
	res := b.res
	window := writeWindow
	if b.cfg.quick {
		window = 4 * time.Second
	}
	return []benchPhase{
		{"appends", func(ctx context.Context) error {
			var err error
			var cpu cpuWindow
			res.Append, err = b.load(ctx, Options{Scenario: scenarioAppend, Concurrency: appendConcurrency,
				Duration: w.append, Window: cpu.hook(b.srv.pid())})
			res.AppendCPU = cpu.seconds(false)
			return err
		}},
		{"one conversation at 200 posts/s", func(ctx context.Context) error {
			var err error
			res.OneConversation, err = b.load(ctx, Options{Scenario: scenarioAppend, OpenLoop: true,
				Rate: oneConversationRate, Concurrency: appendConcurrency, Conversations: 1, Duration: window})
			return err
		}},
		{"open loop at twice the append capacity", func(ctx context.Context) error {
			if res.Append == nil || res.Append.CommandsPerSec <= 0 {
				return errors.New("no closed-loop append rate to double")
			}
			var err error
			res.Overload, err = b.load(ctx, Options{Scenario: scenarioAppend, OpenLoop: true,
				Rate: overloadFactor * res.Append.CommandsPerSec, Concurrency: appendConcurrency, Duration: window})
			return err
		}},
		{"the bare echo handler, open loop at the same rate", func(ctx context.Context) error {
			if res.Overload == nil {
				return errors.New("no overload run to compare with")
			}
			var err error
			res.EchoOverload, err = b.echo(ctx, Options{OpenLoop: true, Rate: res.Overload.Rate,
				Concurrency: appendConcurrency, Duration: window, Subscribers: -1, Seed: -1})
			return err
		}},
	}
}

// runWrites runs only the write path (bench -writes), after pgbench: the
// server with the assistant muted, then writePhases.
func (b *bench) runWrites(ctx context.Context, w windows) error {
	if err := b.startServer(ctx, muted...); err != nil {
		return err
	}
	defer b.srv.stop()
	for _, p := range b.writePhases(w) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b.logf("— %s (load average %s)", p.name, loadAverage())
		if err := p.fn(ctx); err != nil {
			b.res.Notes = append(b.res.Notes, fmt.Sprintf("%s: %v", p.name, err))
		}
		if note := b.awaitProjections(ctx, 30*time.Second); note != "" {
			b.res.Notes = append(b.res.Notes, fmt.Sprintf("after %s: %s", p.name, note))
		}
	}
	return nil
}

// writeVerdicts judge the one-conversation and overload runs.
func writeVerdicts(res *benchResults) []verdict {
	var out []verdict
	const busy = "200 posts/s into one conversation for 10 s (open loop, assistant muted)"
	switch r := res.OneConversation; r {
	case nil:
		out = append(out, unavailable(busy, "0 non-2xx", "not measured"))
	default:
		bad := r.Refused + r.Failed
		v := verdict{Measure: busy, Engram: fmt.Sprintf("%d of %d answered 201, p50 %s, p99 %s",
			r.Commands, r.Offered, ms(r.CommandLatency.P50), ms(r.CommandLatency.P99)),
			Limit: "—", Ratio: "—", Target: "0 non-2xx", Met: yesNo(bad == 0 && r.Commands > 0)}
		if bad > 0 {
			v.Why = fmt.Sprintf("%d refused for overload, %d failed", r.Refused, r.Failed)
		}
		out = append(out, v)
	}

	const overload = "Open loop at twice the closed-loop append rate (assistant muted)"
	switch r := res.Overload; {
	case r == nil || res.Append == nil || res.Append.CommandsPerSec <= 0:
		out = append(out, unavailable(overload, "≥ 90 % of capacity accepted, refusals p99 ≤ 100 ms", "not measured"))
	default:
		accepted := r.CommandsPerSec / res.Append.CommandsPerSec
		ok := accepted >= targetAccepted && r.RefusalLatency.P99 <= targetRefusalP99 && r.Failed == 0
		limit := fmt.Sprintf("%.0f/s (closed loop, same run)", res.Append.CommandsPerSec)
		if e := res.EchoOverload; e != nil && e.GetLatency.Count > 0 {
			limit += fmt.Sprintf("; bare echo handler, same open loop: p99 %s", ms(e.GetLatency.P99))
		}
		v := verdict{Measure: overload,
			Engram: fmt.Sprintf("%.0f/s accepted of %.0f/s offered, %d refused (p99 %s; %s from the moment each was sent), accepted p99 %s",
				r.CommandsPerSec, r.Rate, r.Refused, ms(r.RefusalLatency.P99), ms(r.RefusalServed.P99), ms(r.CommandLatency.P99)),
			Limit: limit,
			Ratio: ratio(r.CommandsPerSec, res.Append.CommandsPerSec), Target: "≥ 90 %, refusals p99 ≤ 100 ms",
			Met: yesNo(ok)}
		if !ok {
			v.Why = fmt.Sprintf("%.0f %% accepted, refusals p99 %s, %d failed", 100*accepted, ms(r.RefusalLatency.P99), r.Failed)
		}
		out = append(out, v)
	}
	return out
}
