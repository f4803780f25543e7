package cognition

import (
	"context"

	"github.com/engramhq/engram/platform/livebus"
)

// SignalPublisher publishes ephemeral signals (typing, status, delta) to a
// conversation's live subscribers (livebus.Bus). Signals are not events:
// nothing is stored, and a lost signal is not an error worth retrying.
type SignalPublisher interface {
	Publish(ctx context.Context, s livebus.Signal) error
}
