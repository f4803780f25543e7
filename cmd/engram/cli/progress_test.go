package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/engramhq/engram/projections"
)

func TestRebuildBarIsNotDrawnOffATerminal(t *testing.T) {
	var out bytes.Buffer
	bar := newRebuildBar(&out, "conversations", false)
	bar.update(projections.RebuildProgress{Read: 10, Total: 100})
	bar.update(projections.RebuildProgress{Read: 100, Total: 100})
	bar.finish()
	bar.finish()
	if out.Len() != 0 {
		t.Errorf("the bar wrote %q to a writer that is not a terminal", out.String())
	}
}

// The bar's rate is the one of the summary line: events read over the time
// since the start, not a burst of the last page.
func TestRebuildBarRateIsTheAverageSinceTheStart(t *testing.T) {
	b := &rebuildBar{name: "conversations"}
	tests := []struct {
		p       projections.RebuildProgress
		elapsed time.Duration
		want    string
	}{
		{projections.RebuildProgress{Read: 1000, Total: 3000}, 2 * time.Second, "rebuild conversations 500 events/s, 4s left"},
		{projections.RebuildProgress{Read: 3000, Total: 3000}, 2 * time.Second, "rebuild conversations 1500 events/s"},
		{projections.RebuildProgress{Read: 0, Total: 3000}, time.Second, "rebuild conversations"},
		{projections.RebuildProgress{Read: 10, Total: 30}, 0, "rebuild conversations"},
	}
	for _, tt := range tests {
		got := b.describe(tt.p, tt.elapsed)
		if got != tt.want {
			t.Errorf("describe(%+v, %s) = %q, want %q", tt.p, tt.elapsed, got, tt.want)
		}
		summary := projections.RebuildResult{Events: tt.p.Read, Elapsed: tt.elapsed}
		if tt.p.Read > 0 && tt.elapsed > 0 && !strings.Contains(got, formatRate(summary.Rate())) {
			t.Errorf("describe shows %q, the summary line %s events/s", got, formatRate(summary.Rate()))
		}
	}
}

func TestRebuildBarDrawsTheAverageRate(t *testing.T) {
	var out bytes.Buffer
	bar := drawnRebuildBar(&out, "conversations", 0)
	start := bar.start
	bar.now = func() time.Time { return start.Add(2 * time.Second) }
	bar.update(projections.RebuildProgress{Read: 0, Total: 0})
	bar.update(projections.RebuildProgress{Read: 1000, Total: 3000})
	bar.update(projections.RebuildProgress{Read: 3500, Total: 3000}) // the log grew
	bar.finish()
	if !strings.Contains(out.String(), "rebuild conversations 500 events/s, 4s left") {
		t.Errorf("the bar did not show the average rate:\n%q", out.String())
	}
	if strings.Contains(out.String(), "it/s") {
		t.Errorf("the bar shows the library's own rate:\n%q", out.String())
	}
}
