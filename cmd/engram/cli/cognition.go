package cli

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/jmoiron/sqlx"

	"github.com/engramhq/engram/app"
	"github.com/engramhq/engram/cognition"
	"github.com/engramhq/engram/cognition/engine"
	"github.com/engramhq/engram/cognition/experts"
	"github.com/engramhq/engram/cognition/llm"
	"github.com/engramhq/engram/cognition/postgres"
	"github.com/engramhq/engram/cognition/routing"
	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/platform/config"
)

// cognitionParts are what an instance runs of cognition: the reactor (a
// consumer group), the worker (goroutines) and the experts it offers.
type cognitionParts struct {
	reactor *engine.Reactor
	worker  *engine.Worker
	experts []app.Expert
}

// newCognition builds the experts, the router and the engine from the
// configuration: echo and memory always; llm, which then answers by
// default, when ENGRAM_LLM_BASE_URL is set.
func newCognition(cfg config.Config, db *sqlx.DB, store *eventstore.Store, cmds commands.Commands, sig cognition.SignalPublisher,
	notifier *eventstore.Notifier, logger *slog.Logger) (*cognitionParts, error) {
	memory := postgres.NewMemory(db)
	list := []cognition.Expert{experts.Echo{}, experts.NewRecall(memory, nil)}
	responder := "echo"
	if cfg.LLMEnabled() {
		e, err := llm.New(llm.Config{BaseURL: cfg.LLMBaseURL, Model: cfg.LLMModel, APIKey: string(cfg.LLMAPIKey)},
			postgres.NewConversations(db), memory)
		if err != nil {
			return nil, err
		}
		list = append(list, e)
		responder = e.Name()
	}
	set, err := cognition.NewExperts(list...)
	if err != nil {
		return nil, err
	}
	rules, err := routerRules(cfg)
	if err != nil {
		return nil, err
	}
	router, err := routing.New(cfg.Router, rules, responder, set.Names())
	if err != nil {
		return nil, fmt.Errorf("ENGRAM_ROUTER_RULES: %w", err)
	}
	worker, err := engine.NewWorker(engine.WorkerConfig{
		Commands: cmds, Experts: set, Tasks: postgres.NewTasks(db), Streams: store, Signals: sig, Wake: notifier.Subscribe,
		Concurrency: cfg.TaskWorkers, Timeout: cfg.TaskTimeout, Attempts: cfg.TaskAttempts, MaxAge: cfg.TaskMaxAge, Logger: logger,
	})
	if err != nil {
		return nil, err
	}
	reactor, err := engine.NewReactor(engine.ReactorConfig{
		Commands: cmds, Router: router, Signals: sig, Submitted: worker.Submitted, MaxAge: cfg.TaskMaxAge, Logger: logger,
	})
	if err != nil {
		return nil, err
	}
	parts := &cognitionParts{reactor: reactor, worker: worker}
	for _, e := range set.All() {
		parts.experts = append(parts.experts, app.Expert{Name: e.Name(), Capabilities: e.Capabilities()})
	}
	logger.Info("cognition ready", "router", cfg.Router, "experts", set.Names(), "responder", responder, "worker", worker.ID())
	return parts, nil
}

// routerRules reads ENGRAM_ROUTER_RULES: inline JSON, or a file named
// "@path".
func routerRules(cfg config.Config) (routing.Config, error) {
	raw := []byte(cfg.RouterRules)
	if path, isFile := cfg.RouterRulesFile(); isFile {
		b, err := os.ReadFile(path)
		if err != nil {
			return routing.Config{}, fmt.Errorf("ENGRAM_ROUTER_RULES: %w", err)
		}
		raw = b
	}
	rules, err := routing.Parse(raw)
	if err != nil {
		return routing.Config{}, fmt.Errorf("ENGRAM_ROUTER_RULES: %w", err)
	}
	return rules, nil
}
