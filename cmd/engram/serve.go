package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/spf13/cobra"

	"github.com/engramhq/engram"
	"github.com/engramhq/engram/audit"
	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/domain/apikey"
	"github.com/engramhq/engram/domain/auditlog"
	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/domain/memory"
	"github.com/engramhq/engram/domain/session"
	"github.com/engramhq/engram/domain/task"
	"github.com/engramhq/engram/domain/user"
	"github.com/engramhq/engram/domain/workspace"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/platform/cache"
	"github.com/engramhq/engram/platform/config"
	"github.com/engramhq/engram/platform/logging"
	"github.com/engramhq/engram/platform/metrics"
	"github.com/engramhq/engram/platform/security"
	"github.com/engramhq/engram/platform/signals"
	"github.com/engramhq/engram/projections"
	"github.com/engramhq/engram/queries"
	httpapi "github.com/engramhq/engram/transport/http"
	"github.com/engramhq/engram/transport/sse"
)

func newServeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the Engram API server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			logger, closeLogs, err := newLogger(cfg)
			if err != nil {
				return err
			}
			defer closeLogs.Close()
			if err := serve(cmd.Context(), cfg, logger); err != nil {
				logger.Error("engram stopped with an error", "err", err)
				return &exitError{code: 1}
			}
			return nil
		},
	}
}

func newLogger(cfg config.Config) (*slog.Logger, io.Closer, error) {
	logger, closer, err := logging.New(logging.Options{Level: cfg.LogLevel, Format: cfg.LogFormat, Dir: cfg.LogDir})
	if err != nil {
		return nil, nil, &exitError{code: 2, err: fmt.Errorf("logging: %w", err)}
	}
	return logger, closer, nil
}

// serve runs the API until ctx ends, then shuts down gracefully: stop
// accepting, finish in-flight requests, stop the consumers, close the pool.
func serve(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	logger.Debug("configuration", "config", cfg)
	for _, w := range cfg.Warnings {
		logger.Warn(w)
	}
	if cfg.JWTSecretGenerated {
		logger.Warn("ENGRAM_JWT_SECRET is not set: using a random secret for this run; access tokens will not survive a restart")
	}
	// The port is taken first: a clash fails at once, before migrations,
	// the seed or any consumer has run.
	listener, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s (is another server using it? set ENGRAM_HTTP_ADDR): %w", cfg.HTTPAddr, err)
	}
	defer listener.Close()

	db, err := openDatabase(ctx, cfg, cfg.AutoMigrate, logger)
	if err != nil {
		return err
	}
	defer db.Close()

	caches, err := cache.NewFallback(ctx, cfg.RedisURL, cfg.RedisPrefix, logger)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	defer caches.Close()

	m := metrics.New()
	// Every consumer of the cache gets it counted: hits, misses, backend.
	counted := m.InstrumentCache(caches)
	if cfg.PprofAddr != "" {
		stopPprof, err := servePprof(cfg.PprofAddr, logger)
		if err != nil {
			return err
		}
		defer stopPprof()
	}
	notifier := eventstore.NewNotifier(db.DB, cfg.DatabaseURL, logger)
	store, err := eventstore.New(db,
		eventstore.WithAppendHook(notifier.Appended),
		eventstore.WithAppendHook(func(r eventstore.AppendResult) { m.ObserveAppend(len(r.Events)) }))
	if err != nil {
		return err
	}

	hasher := security.NewPasswordHasher()
	tokens, err := security.NewTokens(cfg.JWTSecret.Bytes(), cfg.JWTIssuer, cfg.JWTAudience, cfg.AccessTokenTTL, time.Now)
	if err != nil {
		return err
	}
	// Revocations: every instance keeps the revoked sessions and API keys in
	// memory, fed by its tail of the log; entries live as long as an access
	// token issued before the revocation could still be presented.
	revocations, err := projections.NewRevocationSet(projections.RevocationSetConfig{
		Window: cfg.AccessTokenTTL + security.Leeway + time.Minute,
	}, logger)
	if err != nil {
		return err
	}
	cmds, err := commands.New(commands.Dependencies{
		Store: timedStore{Store: store, metrics: m}, Hasher: hasher, Tokens: tokens, Secrets: secrets{}, RefreshTTL: cfg.RefreshTokenTTL,
		Revocations: revocations, RefreshGrace: counted,
	})
	if err != nil {
		return err
	}
	checkpoints := projections.NewCheckpoints(db.DB, cfg.ReadYourWritesTimeout)
	// With Redis configured, the hottest reads are served from the Redis read
	// models whenever they can answer exactly as SQL would.
	readModels, queryOptions, err := newRedisReadModels(ctx, caches, store, cfg, m, logger)
	if err != nil {
		return err
	}
	qs, err := queries.New(db, checkpoints, queryOptions...)
	if err != nil {
		return err
	}
	auditor, err := audit.New(db, store)
	if err != nil {
		return err
	}

	// The event pipeline: one gap-safe tail of the log per instance feeds
	// the SSE hub and queues every event for two agents: the projectors
	// (every read model in one transaction per batch) and the cognition
	// reactions. Each agent works on one instance at a time (a lease).
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 15 * time.Second},
		watermill.NewSlogLoggerWithLevelMapping(logger, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug}))
	if err != nil {
		return err
	}
	projectors := projections.SQL()
	projectors = append(projectors, projections.Cognition()...)
	if readModels != nil {
		projectors = append(projectors, readModels.Projectors()...)
	}

	// Live events: the hub relays the tail to this instance's SSE clients;
	// ephemeral signals travel over Redis pub/sub.
	bus, closeBus := newSignalBus(ctx, caches, cfg.RedisPrefix, logger)
	defer closeBus()
	hub, err := sse.NewHub(ctx, sse.Config{
		Heartbeat: cfg.SSEHeartbeat, MaxConnectionsPerUser: cfg.SSEMaxConnectionsPerUser,
		Buffer: cfg.SSEBuffer, MaxLifetime: cfg.SSEMaxLifetime,
		// A ticket lives no longer than an access token, so that the
		// revocation of the credential that minted it is still remembered.
		TicketLifetime: cfg.AccessTokenTTL,
	}, sse.Dependencies{
		Log: store, Decoders: liveEventDecoders(), Tickets: counted, Revocations: revocations,
		Signals: bus, Metrics: m, Logger: logger,
	})
	if err != nil {
		return err
	}
	defer hub.Close()

	// Cognition: the reactor routes messages (short commands only); the
	// worker runs the experts outside any transaction.
	cog, err := newCognition(cfg, db, store, cmds, bus, notifier, logger)
	if err != nil {
		return err
	}
	agents, err := newAgents(db.DB, store, cfg, logger, m, checkpoints, projectors, cog.reactor)
	if err != nil {
		return err
	}
	tailer, err := eventstore.NewTailer(store, eventstore.TailerConfig{Wake: notifier.Subscribe},
		watermill.NewSlogLoggerWithLevelMapping(logger, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug}))
	if err != nil {
		return err
	}
	// The revocation set and the SSE hub are this instance's live sinks:
	// they see every event, on every instance.
	pipeline := projections.NewPipeline(logger, agents, revocations.Handle, hub.Handle)
	router.AddConsumerHandler("pipeline", eventstore.Topic, tailer, pipeline.Handle)

	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackground()
	m.WatchProjections(time.Second, projectionStatus(bgCtx, checkpoints, projections.Names(projectors)))
	notifierDone := make(chan struct{})
	go func() {
		defer close(notifierDone)
		_ = notifier.Run(bgCtx)
	}()
	agentsCtx, stopAgents := context.WithCancel(bgCtx)
	defer stopAgents()
	var agentsDone sync.WaitGroup
	for _, a := range agents {
		agentsDone.Go(func() { a.Run(agentsCtx) })
	}
	defer func() { stopAgents(); agentsDone.Wait() }()
	routerDone := make(chan error, 1)
	go func() { routerDone <- router.Run(bgCtx) }()
	select {
	case <-router.Running():
	case err := <-routerDone:
		return fmt.Errorf("event router: %w", err)
	}
	readModelsDone := make(chan struct{})
	go func() {
		defer close(readModelsDone)
		if readModels != nil {
			readModels.Run(bgCtx)
		}
	}()
	defer func() { stopBackground(); <-readModelsDone }()
	workerDone := make(chan struct{})
	go func() {
		defer close(workerDone)
		_ = cog.worker.Run(bgCtx)
	}()
	defer func() { stopBackground(); <-workerDone }()
	if err := revocations.Load(ctx, db.DB, store.Head); err != nil {
		return err
	}
	revocationsDone := make(chan struct{})
	go func() {
		defer close(revocationsDone)
		revocations.Run(bgCtx, store.Head)
	}()
	defer func() { stopBackground(); <-revocationsDone }()

	if cfg.DevSeed {
		seed, err := commands.NewSeedDevelopmentHandler(store, hasher)
		if err != nil {
			return err
		}
		created, err := seed.Handle(ctx)
		if err != nil {
			return fmt.Errorf("development seed: %w", err)
		}
		if created {
			logger.Info("development seed: created user test@example.com (password \"password\") with workspace \"My Workspace\"")
		} else {
			logger.Info("development seed: user test@example.com already exists; its password is left as it was")
		}
	}

	ready := func(ctx context.Context) (httpapi.ReadyReport, bool) {
		report := httpapi.ReadyReport{"cache": caches.Backend()}
		if readModels != nil {
			report["read_models"] = readModels.Status(ctx) // informative: queries fall back to SQL
		}
		revoked := revocations.Status()
		report["revocations"] = revoked // not current: authenticated requests are refused
		ok := revoked.Current
		if err := db.PingContext(ctx); err != nil {
			report["postgres"] = "unreachable"
			ok = false
		} else {
			report["postgres"] = "ok"
		}
		if router.IsRunning() {
			report["router"] = "running"
		} else {
			report["router"] = "stopped"
			ok = false
		}
		if ok {
			statuses, err := checkpoints.Status(ctx, projections.Names(projectors))
			if err != nil {
				report["projections"] = "unknown"
				ok = false
			} else {
				report["projections"] = statuses
				for _, s := range statuses {
					if s.LagEvents > cfg.ProjectionMaxLag {
						ok = false
					}
				}
			}
		}
		return report, ok
	}

	server, err := httpapi.NewServer(httpapi.Config{
		Addr: cfg.HTTPAddr, ReadTimeout: cfg.HTTPReadTimeout, WriteTimeout: cfg.HTTPWriteTimeout,
		IdleTimeout: cfg.HTTPIdleTimeout, BodyLimit: cfg.BodyLimit, TrustedProxies: ipNets(cfg.TrustedProxies),
		Observe: m.ObserveHTTP, LoginMaxAttempts: cfg.LoginMaxAttempts, LoginWindow: cfg.LoginWindow,
		ConnContext: sse.ConnContext, CORSAllowedOrigins: cfg.CORSAllowedOrigins,
		Admission: httpapi.Admission{Concurrency: cfg.CommandConcurrency, Queue: cfg.CommandQueue,
			QueueTimeout: cfg.CommandQueueTimeout, QueueTarget: cfg.CommandQueueTarget},
	}, httpapi.Application{
		Commands: cmds, Queries: qs, Tokens: tokens, Idempotency: store, Projections: checkpoints,
		Revocations: revocations, Counters: counted, Memberships: membershipModels{checkpoints: checkpoints, redis: readModels, timeout: cfg.ReadYourWritesTimeout},
		Ready: ready, Metrics: m.Handler(), OpenAPI: engram.OpenAPI, Audit: auditor,
		Experts: cog.experts,
	}, logger)
	if err != nil {
		return err
	}

	hub.Register(server.Echo().Group("/v1"))
	server.RegisterOnShutdown(hub.Shutdown)

	logger.Debug("http routes", "routes", server.Routes())
	logger.Info(fmt.Sprintf("engram is listening on http://%s", listener.Addr()), "env", cfg.Env, "cache", caches.Backend())

	serveErr := make(chan error, 1)
	go func() { serveErr <- server.Serve(listener) }()

	select {
	case <-ctx.Done():
		logger.Info("shutting down: finishing in-flight requests")
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	case err := <-routerDone:
		return fmt.Errorf("event router stopped: %w", err)
	}

	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := server.Shutdown(shutdownCtx); err != nil {
		logger.Warn("http shutdown did not finish cleanly", "err", err)
	}
	// Running tasks may finish (and their answers be posted) while the
	// consumers still run; those that do not are claimed again later.
	if err := cog.worker.Shutdown(shutdownCtx); err != nil {
		logger.Warn("tasks interrupted by the shutdown; they will be claimed again after their deadline", "err", err)
	}
	if err := router.Close(); err != nil {
		logger.Warn("event router did not close cleanly", "err", err)
	}
	// The agents finish the batch under way and stop.
	stopAgents()
	agentsDone.Wait()
	if readModels != nil {
		// What the projectors handed to Redis goes out before the exit;
		// anything lost would be a gap, repaired by a rebuild.
		if err := readModels.Flush(shutdownCtx); err != nil {
			logger.Warn("redis read models not flushed; they will be rebuilt", "err", err)
		}
	}
	stopBackground()
	<-notifierDone
	logger.Info("engram stopped")
	return nil
}

// newSignalBus returns the bus of ephemeral signals (typing, status): Redis
// pub/sub when Redis answers, so that every instance relays them, and this
// process alone otherwise.
func newSignalBus(ctx context.Context, caches *cache.Fallback, prefix string, logger *slog.Logger) (signals.Bus, func()) {
	if client := caches.Client(); client != nil && caches.Backend() == cache.BackendRedis {
		bus, err := signals.NewRedis(ctx, client, prefix, logger)
		if err == nil {
			return bus, func() { _ = bus.Close() }
		}
		logger.Warn("redis pub/sub unavailable: live signals (typing, status) reach this instance's streams only", "err", err)
	} else {
		logger.Warn("no redis: live signals (typing, status) reach this instance's streams only")
	}
	return signals.NewLocal(), func() {}
}

// liveEventDecoders decode event data, by stream type, for the live streams,
// which show it with its secrets removed. Events of a stream type missing
// here are not streamed.
func liveEventDecoders() map[string]sse.Decoder {
	return map[string]sse.Decoder{
		user.StreamType:         user.Decode,
		session.StreamType:      session.Decode,
		apikey.StreamType:       apikey.Decode,
		workspace.StreamType:    workspace.Decode,
		conversation.StreamType: conversation.Decode,
		memory.StreamType:       memory.Decode,
		task.StreamType:         task.Decode,
		auditlog.StreamType:     auditlog.Decode,
	}
}

// secrets makes opaque secrets (refresh tokens, API keys) and their hashes.
type secrets struct{}

func (secrets) NewSecret(prefix string) (string, error) { return security.RandomToken(prefix, 32) }
func (secrets) HashSecret(s string) string              { return security.HashToken(s) }

func ipNets(prefixes config.Prefixes) []*net.IPNet {
	out := make([]*net.IPNet, 0, len(prefixes))
	for _, p := range prefixes {
		out = append(out, prefixToIPNet(p))
	}
	return out
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	addr := p.Addr()
	bits := 128
	if addr.Is4() {
		bits = 32
	}
	return &net.IPNet{IP: net.IP(addr.AsSlice()), Mask: net.CIDRMask(p.Bits(), bits)}
}
