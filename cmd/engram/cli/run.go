package cli

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/projections"
)

// background runs goroutines until it is stopped.
type background struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newBackground(parent context.Context) *background {
	ctx, cancel := context.WithCancel(parent)
	return &background{ctx: ctx, cancel: cancel}
}

// run runs fn in a goroutine with the background's context.
func (b *background) run(fn func(ctx context.Context)) { b.wg.Go(func() { fn(b.ctx) }) }

// stop ends the background's context and waits for its goroutines.
func (b *background) stop() {
	b.cancel()
	b.wg.Wait()
}

// running is what an instance runs besides serving HTTP: the event router,
// the agents, and the loops of the notifier, the Redis read models, the
// task worker and the revocations.
type running struct {
	agents *background
	rest   *background
	// routerDone receives the router's error if it stops.
	routerDone chan error
}

// stop stops the background work, the agents first.
func (r *running) stop() {
	r.agents.stop()
	r.rest.stop()
}

// start starts the instance's background work, outliving ctx until
// stopped, and returns once the router runs and the revoked credentials
// are loaded.
func (in *instance) start(ctx context.Context) (r *running, err error) {
	rest := newBackground(context.WithoutCancel(ctx))
	r = &running{agents: newBackground(rest.ctx), rest: rest, routerDone: make(chan error, 1)}
	defer func() {
		if err != nil {
			r.stop()
		}
	}()
	in.metrics.WatchProjections(time.Second, projectionStatus(rest.ctx, in.checkpoints, projections.Names(in.projectors)))
	rest.run(func(ctx context.Context) { _ = in.notifier.Run(ctx) })
	for _, a := range in.agents {
		r.agents.run(a.Run)
	}
	go func() { r.routerDone <- in.router.Run(rest.ctx) }()
	select {
	case <-in.router.Running():
	case err := <-r.routerDone:
		return nil, fmt.Errorf("event router: %w", err)
	}
	if in.readModels != nil {
		rest.run(in.readModels.Run)
	}
	rest.run(func(ctx context.Context) { _ = in.cognition.worker.Run(ctx) })
	if err := in.revocations.Load(ctx, in.db.DB, in.store.Head); err != nil {
		return nil, err
	}
	rest.run(func(ctx context.Context) { in.revocations.Run(ctx, in.store.Head) })
	// The pipeline's subscription began at the head of the log before the
	// router ran: every event after this later head reaches the read cache.
	if in.readCache != nil {
		cacheFrom, err := in.store.Head(ctx)
		if err != nil {
			return nil, err
		}
		in.readCache.Activate(cacheFrom)
		rest.run(in.readLease.Run)
	}
	return r, nil
}

// shutdown stops a started instance gracefully: no new requests, those in
// flight finished, running tasks given the time left, the router closed,
// the agents' batches finished, what the projectors handed to Redis sent,
// then the rest of the background. It is bounded by the shutdown timeout.
func (in *instance) shutdown(ctx context.Context, r *running) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.cfg.ShutdownTimeout)
	defer cancel()
	if err := in.server.Shutdown(ctx); err != nil {
		in.logger.Warn("http shutdown did not finish cleanly", "err", err)
	}
	// Running tasks may finish (and their answers be posted) while the
	// consumers still run; those that do not are claimed again later.
	if err := in.cognition.worker.Shutdown(ctx); err != nil {
		in.logger.Warn("tasks interrupted by the shutdown; they will be claimed again after their deadline", "err", err)
	}
	if err := in.router.Close(); err != nil {
		in.logger.Warn("event router did not close cleanly", "err", err)
	}
	// The agents finish the batch under way and stop.
	r.agents.stop()
	if in.readModels != nil {
		// Anything lost would be a gap, repaired by a rebuild.
		if err := in.readModels.Flush(ctx); err != nil {
			in.logger.Warn("redis read models not flushed; they will be rebuilt", "err", err)
		}
	}
	r.rest.stop()
}

// seedDevelopment creates the development user and workspace, once.
func (in *instance) seedDevelopment(ctx context.Context) error {
	seed, err := commands.NewSeedDevelopmentHandler(in.store, in.hasher)
	if err != nil {
		return err
	}
	created, err := seed.Handle(ctx)
	if err != nil {
		return fmt.Errorf("development seed: %w", err)
	}
	if created {
		in.logger.Info("development seed: created user test@example.com (password \"password\") with workspace \"My Workspace\"")
	} else {
		in.logger.Info("development seed: user test@example.com already exists; its password is left as it was")
	}
	return nil
}
