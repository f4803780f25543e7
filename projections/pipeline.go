package projections

import (
	"log/slog"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/engramhq/engram/eventstore"
)

// Pipeline is the one pass of an instance over the log: a Watermill handler
// fed by a single subscription to the events topic (the gap-safe
// eventstore.Tailer), which hands every event, once, to the live sinks of
// the instance (the SSE broadcaster, in-memory views) and queues it for
// each Agent (the projectors, the reactions), which take their queues in
// batches.
//
// Handlers never learn which subscriber fed them: behind the same
// interface the events could come from a broker instead. The agents rely
// only on the events' commit-order cursors, and read the log themselves
// whenever what they are handed does not continue their checkpoints.
type Pipeline struct {
	sinks  []message.NoPublishHandlerFunc
	agents []*Agent
	logger *slog.Logger

	mu     sync.Mutex
	last   eventstore.Cursor
	lastOK bool
}

// NewPipeline returns a Pipeline feeding agents, and sinks in the order
// given. A sink that fails has the event delivered again (after the
// subscriber's retry interval); agents get each event once.
func NewPipeline(logger *slog.Logger, agents []*Agent, sinks ...message.NoPublishHandlerFunc) *Pipeline {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Pipeline{sinks: sinks, agents: agents, logger: logger}
}

// Handle is the Watermill handler: it queues the event for the agents, then
// hands it to the sinks.
func (p *Pipeline) Handle(msg *message.Message) error {
	e, ok := eventstore.EventOf(msg, p.logger, "event pipeline")
	if !ok {
		return nil
	}
	cur := e.Cursor()
	p.mu.Lock()
	if !p.lastOK || cur.After(p.last) { // not a redelivery
		for _, a := range p.agents {
			a.offer(p.last, p.lastOK, e)
		}
		p.last, p.lastOK = cur, true
	}
	p.mu.Unlock()
	for _, sink := range p.sinks {
		if err := sink(msg); err != nil {
			return err
		}
	}
	return nil
}

// Names returns the names of projectors.
func Names(ps []Projector) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name()
	}
	return out
}
