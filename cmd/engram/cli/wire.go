package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jmoiron/sqlx"

	"github.com/engramhq/engram"
	"github.com/engramhq/engram/app"
	"github.com/engramhq/engram/audit"
	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/platform/cache"
	"github.com/engramhq/engram/platform/config"
	"github.com/engramhq/engram/platform/livebus"
	"github.com/engramhq/engram/platform/metrics"
	"github.com/engramhq/engram/platform/security"
	"github.com/engramhq/engram/projections"
	"github.com/engramhq/engram/projections/redis"
	"github.com/engramhq/engram/queries"
	httpapi "github.com/engramhq/engram/transport/http"
	"github.com/engramhq/engram/transport/sse"
)

// instance is one Engram server: its parts, as wire assembled them, and
// what closes them.
type instance struct {
	cfg         config.Config
	logger      *slog.Logger
	db          *sqlx.DB
	caches      *cache.Fallback
	metrics     *metrics.Metrics
	notifier    *eventstore.Notifier
	store       *eventstore.Store
	hasher      *security.PasswordHasher
	revocations *projections.RevocationSet
	checkpoints *projections.Checkpoints
	readModels  *redis.ReadModels // nil without Redis
	readCache   *projections.ReadCache
	readLease   *eventstore.ReadLease // nil without the read cache
	projectors  []projections.Projector
	router      *message.Router
	agents      []*projections.Agent
	cognition   *cognitionParts
	hub         *sse.Hub
	server      *httpapi.Server
	closers     []func()
}

// close releases what wire opened, the last opened first.
func (in *instance) close() {
	for i := len(in.closers) - 1; i >= 0; i-- {
		in.closers[i]()
	}
}

// wire assembles an instance from the configuration: the one place where
// Engram's parts are built and joined. Nothing runs yet (see start). On
// error, whatever was opened is closed again.
func wire(ctx context.Context, cfg config.Config, logger *slog.Logger) (in *instance, err error) {
	in = &instance{cfg: cfg, logger: logger, metrics: metrics.New(), hasher: security.NewPasswordHasher()}
	defer func() {
		if err != nil {
			in.close()
		}
	}()
	if in.db, err = openDatabase(ctx, cfg, cfg.AutoMigrate, logger); err != nil {
		return nil, err
	}
	in.closers = append(in.closers, func() { _ = in.db.Close() })
	if in.caches, err = cache.NewFallback(ctx, cfg.RedisURL, cfg.RedisPrefix, logger); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	in.closers = append(in.closers, func() { _ = in.caches.Close() })
	// Every consumer of the cache gets it counted: hits, misses, backend.
	counted := in.metrics.InstrumentCache(in.caches)
	if cfg.PprofAddr != "" {
		stopPprof, err := servePprof(cfg.PprofAddr, logger)
		if err != nil {
			return nil, err
		}
		in.closers = append(in.closers, stopPprof)
	}
	in.notifier = eventstore.NewNotifier(in.db.DB, cfg.DatabaseURL, logger)
	if in.store, err = newStore(in.db, in.notifier, in.metrics); err != nil {
		return nil, err
	}
	// Revocations: every instance keeps the revoked sessions and API keys
	// in memory, fed by its tail of the log; entries live as long as an
	// access token issued before the revocation could still be presented.
	if in.revocations, err = projections.NewRevocationSet(projections.RevocationSetConfig{
		Window: cfg.AccessTokenTTL + security.Leeway + time.Minute,
	}, logger); err != nil {
		return nil, err
	}
	tokens, err := security.NewTokens(cfg.JWTSecret.Bytes(), cfg.JWTIssuer, cfg.JWTAudience, cfg.AccessTokenTTL, time.Now)
	if err != nil {
		return nil, err
	}
	cmds, err := commands.New(commands.Dependencies{
		Store: timedStore{Store: in.store, metrics: in.metrics}, Hasher: in.hasher, Tokens: tokens, Secrets: secrets{},
		RefreshTTL: cfg.RefreshTokenTTL, Revocations: in.revocations, RefreshGrace: counted,
	})
	if err != nil {
		return nil, err
	}
	qs, err := in.newQueries(ctx)
	if err != nil {
		return nil, err
	}
	// Live events: the hub relays the tail to this instance's SSE clients;
	// ephemeral signals travel over Redis pub/sub.
	bus, closeBus := newLiveBus(ctx, in.caches, cfg.RedisPrefix, logger)
	in.closers = append(in.closers, closeBus)
	if in.hub, err = newHub(ctx, cfg, in.store, counted, in.revocations, bus, in.metrics, logger); err != nil {
		return nil, err
	}
	in.closers = append(in.closers, in.hub.Close)
	// Cognition: the reactor routes messages (short commands only); the
	// worker runs the experts outside any transaction.
	if in.cognition, err = newCognition(cfg, in.db, in.store, cmds, bus, in.notifier, logger); err != nil {
		return nil, err
	}
	if err := in.newPipeline(); err != nil {
		return nil, err
	}
	application := &app.Application{
		Commands: cmds, Queries: qs, Tokens: tokens, Revocations: in.revocations, Counters: counted, Responses: in.store,
		Readiness: readiness{in}, Experts: in.cognition.experts,
	}
	if application.Audit, err = audit.New(in.db, in.store); err != nil {
		return nil, err
	}
	if in.server, err = newServer(cfg, application, in.metrics, logger); err != nil {
		return nil, err
	}
	in.hub.Register(in.server.Echo().Group("/v1"))
	in.server.RegisterOnShutdown(in.hub.Shutdown)
	return in, nil
}

// newStore is the event store, waking the notifier and counting appends.
func newStore(db *sqlx.DB, notifier *eventstore.Notifier, m *metrics.Metrics) (*eventstore.Store, error) {
	return eventstore.New(db,
		eventstore.WithAppendHook(notifier.Appended),
		eventstore.WithAppendHook(func(r eventstore.AppendResult) { m.ObserveAppend(len(r.Events)) }))
}

// newQueries builds the query handlers. The hottest reads are answered
// from this instance's memory (the read cache, kept exact by the pipeline)
// and, when it cannot, with Redis configured, from the Redis read models
// whenever they can answer exactly as SQL would.
func (in *instance) newQueries(ctx context.Context) (queries.Queries, error) {
	in.checkpoints = projections.NewCheckpoints(in.db.DB, in.cfg.ReadYourWritesTimeout)
	readModels, options, err := newRedisReadModels(ctx, in.caches, in.store, in.cfg, in.metrics, in.logger)
	if err != nil {
		return queries.Queries{}, err
	}
	in.readModels = readModels
	options = append(options, queries.WithWaitTimeout(in.cfg.ReadYourWritesTimeout))
	if in.cfg.ReadCacheBytes > 0 {
		if in.readLease, err = in.store.NewReadLease(ctx, in.logger); err != nil {
			return queries.Queries{}, err
		}
		if in.readCache, err = projections.NewReadCache(projections.ReadCacheConfig{
			Head: in.store.Tip, Lease: in.readLease.Head, MaxBytes: in.cfg.ReadCacheBytes,
		}); err != nil {
			return queries.Queries{}, err
		}
		in.metrics.WatchReadCache(func() metrics.ReadCacheState {
			st := in.readCache.Stats()
			return metrics.ReadCacheState{Hits: st.Hits, Misses: st.Misses, Behind: st.Behind, Entries: st.Entries, Bytes: st.Bytes,
				Leased: in.readLease.Holds()}
		})
		options = append(options, queries.WithCache(in.readCache, in.checkpoints))
	}
	return queries.New(in.db, in.checkpoints, options...)
}

// newPipeline builds the event pipeline: one gap-safe tail of the log per
// instance feeds the live sinks (the revocation set, the read cache, the
// SSE hub) and
// queues every event for two agents, the projectors (every read model in
// one transaction per batch) and the cognition reactions. Each agent works
// on one instance at a time (a lease).
func (in *instance) newPipeline() error {
	debugInfo := watermill.NewSlogLoggerWithLevelMapping(in.logger, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	var err error
	if in.router, err = message.NewRouter(message.RouterConfig{CloseTimeout: 15 * time.Second}, debugInfo); err != nil {
		return err
	}
	in.projectors = append(projections.SQL(), projections.Cognition()...)
	if in.readModels != nil {
		in.projectors = append(in.projectors, in.readModels.Projectors()...)
	}
	// A committed batch wakes read-your-writes waiters, and the tail when
	// the batch's transaction was what kept new events unreadable.
	committed := func(moved []string, to eventstore.Cursor) {
		in.checkpoints.Moved(moved, to)
		in.notifier.Settled()
	}
	if in.agents, err = newAgents(in.db.DB, in.store, in.cfg, in.logger, in.metrics, committed, in.projectors, in.cognition.reactor); err != nil {
		return err
	}
	tailer, err := eventstore.NewTailer(in.store, eventstore.TailerConfig{Wake: in.notifier.Subscribe, Settled: in.notifier.SubscribeSettled}, debugInfo)
	if err != nil {
		return err
	}
	sinks := []message.NoPublishHandlerFunc{in.revocations.Handle}
	if in.readCache != nil {
		sinks = append(sinks, in.readCache.Handle)
	}
	sinks = append(sinks, in.hub.Handle)
	pipeline := projections.NewPipeline(in.logger, in.agents, sinks...)
	in.router.AddConsumerHandler("pipeline", eventstore.Topic, tailer, pipeline.Handle)
	return nil
}

// newHub builds the SSE hub of this instance's live streams.
func newHub(ctx context.Context, cfg config.Config, store *eventstore.Store, tickets cache.Cache, revocations *projections.RevocationSet,
	bus livebus.Bus, m *metrics.Metrics, logger *slog.Logger) (*sse.Hub, error) {
	return sse.NewHub(ctx, sse.Config{
		Heartbeat: cfg.SSEHeartbeat, MaxConnectionsPerUser: cfg.SSEMaxConnectionsPerUser,
		Buffer: cfg.SSEBuffer, MaxLifetime: cfg.SSEMaxLifetime,
		// A ticket lives no longer than an access token, so that the
		// revocation of the credential that minted it is still remembered.
		TicketLifetime: cfg.AccessTokenTTL,
	}, sse.Dependencies{
		Log: store, Tickets: tickets, Revocations: revocations,
		Bus: bus, Metrics: m, Logger: logger,
	})
}

// newServer builds the HTTP API over the application.
func newServer(cfg config.Config, application *app.Application, m *metrics.Metrics, logger *slog.Logger) (*httpapi.Server, error) {
	return httpapi.NewServer(httpapi.Config{
		Addr: cfg.HTTPAddr, ReadTimeout: cfg.HTTPReadTimeout, WriteTimeout: cfg.HTTPWriteTimeout,
		IdleTimeout: cfg.HTTPIdleTimeout, BodyLimit: cfg.BodyLimit, TrustedProxies: ipNets(cfg.TrustedProxies),
		Observe: m.ObserveHTTP, LoginMaxAttempts: cfg.LoginMaxAttempts, LoginWindow: cfg.LoginWindow,
		ConnContext: sse.ConnContext, CORSAllowedOrigins: cfg.CORSAllowedOrigins,
		Admission: httpapi.Admission{Concurrency: cfg.CommandConcurrency, Queue: cfg.CommandQueue,
			QueueTimeout: cfg.CommandQueueTimeout, QueueTarget: cfg.CommandQueueTarget},
		Metrics: m.Handler(), OpenAPI: engram.OpenAPI,
	}, application, logger)
}

// newLiveBus returns the bus of ephemeral signals (typing, status): Redis
// pub/sub when Redis answers, so that every instance relays them, and this
// process alone otherwise.
func newLiveBus(ctx context.Context, caches *cache.Fallback, prefix string, logger *slog.Logger) (livebus.Bus, func()) {
	if client := caches.Client(); client != nil && caches.Backend() == cache.BackendRedis {
		bus, err := livebus.NewRedis(ctx, client, prefix, logger)
		if err == nil {
			return bus, func() { _ = bus.Close() }
		}
		logger.Warn("redis pub/sub unavailable: live signals (typing, status) reach this instance's streams only", "err", err)
	} else {
		logger.Warn("no redis: live signals (typing, status) reach this instance's streams only")
	}
	return livebus.NewLocal(), func() {}
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
