package cli

import (
	"database/sql"
	"log/slog"

	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/platform/config"
	"github.com/engramhq/engram/platform/metrics"
	"github.com/engramhq/engram/projections"
)

// reactionsConcurrency bounds the cognition reactions running at once.
const reactionsConcurrency = 64

// newAgents returns the two agents of the event pipeline: the projectors,
// applied together in one transaction per batch, and the reactor's
// reactions, run concurrently across conversations. Each works on one
// instance at a time, the holder of its lease. committed runs after each
// batch of the projectors commits.
func newAgents(db *sql.DB, store *eventstore.Store, cfg config.Config, logger *slog.Logger, m *metrics.Metrics,
	committed func(moved []string, to eventstore.Cursor), projectors []projections.Projector, reactor projections.Reactor) ([]*projections.Agent, error) {
	consumer, err := projections.NewProjectors(db, logger, projectors...)
	if err != nil {
		return nil, err
	}
	consumer.OnCommitted(committed)
	consumer.PassedBy(store)
	reactions, err := projections.NewReactions(db, reactor, projections.ReactionsConfig{
		Concurrency: reactionsConcurrency, Logger: logger,
	})
	if err != nil {
		return nil, err
	}
	var agents []*projections.Agent
	for _, c := range []projections.Consumer{consumer, reactions} {
		a, err := projections.NewAgent(c, projections.AgentConfig{
			Log: store, Lease: projections.NewLease(db, c.Name()), PollInterval: cfg.ProjectionPollInterval,
			Logger: logger, OnHandled: m.ObservePipelineBatch,
		})
		if err != nil {
			return nil, err
		}
		agents = append(agents, a)
	}
	return agents, nil
}
