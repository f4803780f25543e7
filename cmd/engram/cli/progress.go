package cli

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/engramhq/engram/projections"
)

// rebuildBar shows a rebuild's progress on a terminal: events read of the
// total, the rate and the time left. The rate is the events read since the
// rebuild started over the time since then, as in the summary line printed
// at the end, never a burst of the last half second. The bar is shown only
// when w is a terminal, so that logs and pipes never fill with redraws; it
// is cleared when the rebuild ends, leaving the summary line alone.
type rebuildBar struct {
	bar   *progressbar.ProgressBar
	name  string
	start time.Time
	now   func() time.Time
}

func newRebuildBar(w io.Writer, name string, quiet bool) *rebuildBar {
	if quiet || !isTerminal(w) {
		return &rebuildBar{}
	}
	return drawnRebuildBar(w, name, 100*time.Millisecond)
}

// drawnRebuildBar returns a bar drawn on w, terminal or not, at most once
// every throttle.
func drawnRebuildBar(w io.Writer, name string, throttle time.Duration) *rebuildBar {
	return &rebuildBar{name: name, start: time.Now(), now: time.Now, bar: progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("rebuild "+name),
		progressbar.OptionShowCount(),
		progressbar.OptionSetElapsedTime(false),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionThrottle(throttle),
		progressbar.OptionClearOnFinish(),
	)}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (b *rebuildBar) update(p projections.RebuildProgress) {
	if b.bar == nil {
		return
	}
	if p.Total > 0 && b.bar.GetMax64() != p.Total {
		b.bar.ChangeMax64(p.Total)
	}
	read := p.Read
	if limit := b.bar.GetMax64(); limit > 0 && read > limit {
		read = limit // the total is an estimate while the log grows
	}
	b.bar.Describe(b.describe(p, b.now().Sub(b.start)))
	_ = b.bar.Set64(read)
}

// describe labels the bar: the read model, the average rate since the
// start and, from that rate, the time left.
func (b *rebuildBar) describe(p projections.RebuildProgress, elapsed time.Duration) string {
	label := "rebuild " + b.name
	if elapsed <= 0 || p.Read <= 0 {
		return label
	}
	rate := float64(p.Read) / elapsed.Seconds()
	label += " " + formatRate(rate)
	if left := p.Total - p.Read; left > 0 {
		label += ", " + time.Duration(float64(left)/rate*float64(time.Second)).Round(time.Second).String() + " left"
	}
	return label
}

// finish clears the bar; calling it again does nothing.
// formatRate writes a rate as the bar and the summary line both show it.
func formatRate(eventsPerSecond float64) string {
	return fmt.Sprintf("%.0f events/s", eventsPerSecond)
}

func (b *rebuildBar) finish() {
	if b.bar == nil {
		return
	}
	_ = b.bar.Finish()
	b.bar = nil
}
