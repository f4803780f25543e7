// Package experts holds Engram's built-in domain experts that need nothing
// but Engram itself: Echo, which repeats what it is told, and Recall (named
// "memory"), which answers from the workspace memory.
package experts

import (
	"context"

	"github.com/engramhq/engram/cognition"
)

// Echo answers "ECHO: <input>". It is the default responder when no
// language model is configured, and shows the whole pipeline at work.
type Echo struct{}

var _ cognition.Expert = Echo{}

// Name returns "echo".
func (Echo) Name() string { return "echo" }

// Capabilities returns ["respond"].
func (Echo) Capabilities() []string { return []string{"respond"} }

// Handle sends the status "Processing your request..." and answers.
func (Echo) Handle(ctx context.Context, t cognition.Task, p cognition.Progress) (cognition.Result, error) {
	p.Status(ctx, "Processing your request...")
	return cognition.Result{Output: "ECHO: " + t.Input}, nil
}
