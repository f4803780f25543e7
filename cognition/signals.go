package cognition

import (
	"context"

	"github.com/engramhq/engram/platform/signals"
)

// Signals publishes ephemeral signals (typing, status, delta) to a
// conversation's live subscribers. Signals are not events: nothing is
// stored, and a lost signal is not an error worth retrying.
type Signals interface {
	Publish(ctx context.Context, s signals.Signal) error
}
