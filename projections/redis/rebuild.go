package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/platform/cache"
	"github.com/engramhq/engram/projections"
)

// Run rebuilds, until ctx ends, every read model that is not live: when a
// projector finds it so, and every resync interval. It runs on every
// instance; the model's lock in Redis lets one rebuild at a time.
func (rm *ReadModels) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, m := range rm.models() {
		wg.Go(func() { rm.resync(ctx, m) })
	}
	wg.Wait()
}

func (rm *ReadModels) resync(ctx context.Context, m *model) {
	ticker := time.NewTicker(rm.every)
	defer ticker.Stop()
	warned := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-m.wake:
		}
		if !rm.up() {
			continue
		}
		st, err := rm.status(ctx, m)
		if err != nil || st.State == Live || st.Building {
			continue
		}
		res, err := rm.rebuild(ctx, m, nil)
		switch {
		case err == nil:
			warned = false
			rm.logger.Info("redis read model rebuilt from the log", "model", m.group, "events", res.Events,
				"elapsed", res.Elapsed.Round(time.Millisecond).String())
		case errors.Is(err, projections.ErrRebuildRunning), ctx.Err() != nil:
		case !warned:
			warned = true
			rm.logger.Warn("redis read model rebuild failed; queries use SQL until it succeeds", "model", m.group, "err", err)
		}
	}
}

// errRebuildAborted means another rebuild (or a cache recovery emptying
// Redis) took the model over.
var errRebuildAborted = errors.New("the rebuild was taken over or its keys deleted")

// Rebuild rebuilds the Redis read model fed by the consumer group named
// group from position 0 into a new generation of keys, and makes it live
// when it has caught up; the live generation, if any, keeps serving until
// then. It returns projections.ErrRebuildRunning when another rebuild holds the model.
func (rm *ReadModels) Rebuild(ctx context.Context, group string, progress func(projections.RebuildProgress)) (projections.RebuildResult, error) {
	m, ok := rm.byGroup(group)
	if !ok {
		return projections.RebuildResult{}, fmt.Errorf("no Redis read model is fed by %q", group)
	}
	return rm.rebuild(ctx, m, progress)
}

func (rm *ReadModels) rebuild(ctx context.Context, m *model, progress func(projections.RebuildProgress)) (projections.RebuildResult, error) {
	start := time.Now()
	c := rm.client()
	token := uuid.NewString()
	ok, err := c.SetNX(ctx, m.lock(), token, lockTTL).Result()
	if err != nil {
		rm.failed(ctx, "lock "+m.name, err)
		return projections.RebuildResult{}, fmt.Errorf("rebuild %s: lock: %w", m.group, err)
	}
	if !ok {
		return projections.RebuildResult{}, fmt.Errorf("rebuild %s: %w", m.group, projections.ErrRebuildRunning)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = releaseScript.Run(ctx, c, []string{m.lock()}, token).Err()
	}()

	log, err := rm.log(ctx)
	if err != nil {
		return projections.RebuildResult{}, err
	}
	begun, err := beginScript.Run(ctx, c, []string{m.meta()}, token, log).Slice()
	if err != nil {
		return projections.RebuildResult{}, fmt.Errorf("rebuild %s: begin: %w", m.group, err)
	}
	gen := fmt.Sprint(begun[0])
	live := fmt.Sprint(begun[1])
	// Keys of abandoned generations (and any of the new one's) go first.
	if err := rm.deleteGenerations(ctx, m, func(g string) bool { return g != live }); err != nil {
		return projections.RebuildResult{}, err
	}

	var total int64
	if err := rm.db.QueryRowContext(ctx, `SELECT count(*) FROM events`).Scan(&total); err != nil {
		return projections.RebuildResult{}, fmt.Errorf("rebuild %s: count events: %w", m.group, err)
	}
	res := projections.RebuildResult{Projector: m.group, Schema: "redis"}
	var atHeadSince time.Time
	for {
		page, err := rm.store.ReadCommitted(ctx, res.Cursor, rebuildPage)
		if err != nil {
			return projections.RebuildResult{}, fmt.Errorf("rebuild %s: read the log: %w", m.group, err)
		}
		if len(page) > 0 {
			atHeadSince = time.Time{}
			if err := rm.applyPage(ctx, m, token, log, page); err != nil {
				return projections.RebuildResult{}, fmt.Errorf("rebuild %s: %w", m.group, err)
			}
			res.Events += int64(len(page))
			res.Cursor = page[len(page)-1].Cursor()
			if err := refreshScript.Run(ctx, c, []string{m.lock()}, token, lockTTL.Milliseconds()).Err(); err != nil {
				return projections.RebuildResult{}, fmt.Errorf("rebuild %s: keep the lock: %w", m.group, err)
			}
			if progress != nil {
				total = max(total, res.Events)
				progress(projections.RebuildProgress{Read: res.Events, Total: total})
			}
			if len(page) == rebuildPage {
				continue
			}
		}
		// At the head of the log. The group's cursor can only be ahead if
		// it came from events we have not read yet, which show up at once;
		// one that stays ahead while the log shows nothing more is not this
		// log's (left by an old run), and is overruled.
		if atHeadSince.IsZero() {
			atHeadSince = time.Now()
		}
		force := "0"
		if time.Since(atHeadSince) > 2*time.Second {
			force = "1"
		}
		fin, err := finishScript.Run(ctx, c, []string{m.meta()}, token, force).Slice()
		if err != nil {
			return projections.RebuildResult{}, fmt.Errorf("rebuild %s: finish: %w", m.group, err)
		}
		switch fin[0] {
		case "aborted":
			return projections.RebuildResult{}, fmt.Errorf("rebuild %s: %w", m.group, errRebuildAborted)
		case "live":
			replaced := fmt.Sprint(fin[1])
			if replaced != "" && replaced != gen {
				if err := rm.deleteGenerations(ctx, m, func(g string) bool { return g == replaced }); err != nil {
					rm.logger.Warn("could not delete the replaced generation of a redis read model", "model", m.group, "err", err)
				}
			}
			res.Swapped = true
			res.Elapsed = time.Since(start)
			return res, nil
		}
		select { // behind: the group moved on; read what it saw
		case <-ctx.Done():
			return projections.RebuildResult{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// applyPage applies a page of events to the generation being built, in one
// pipeline of scripts.
func (rm *ReadModels) applyPage(ctx context.Context, m *model, token, log string, page []eventstore.Event) error {
	var args [][]any
	for _, e := range page {
		o, err := m.opsOf(e)
		if err != nil {
			// The consumer group parks such an event; the rebuild skips it
			// but moves past it.
			rm.logger.Warn("redis read model rebuild skips an event it cannot decode", "model", m.group,
				"position", e.GlobalPosition, "type", e.Type, "err", err)
			continue
		}
		if o.changes() {
			args = append(args, m.applyArgs("build", token, log, e, eventstore.Cursor{}, o))
		}
	}
	results, err := apply(ctx, rm.client(), m.meta(), args)
	if err != nil {
		return err
	}
	for _, res := range results {
		if res == "aborted" {
			return errRebuildAborted
		}
	}
	return nil
}

// deleteGenerations deletes the keys of every generation for which drop
// says so.
func (rm *ReadModels) deleteGenerations(ctx context.Context, m *model, drop func(gen string) bool) error {
	base := m.base()
	_, err := cache.UnlinkUnder(ctx, rm.client(), base, func(key string) bool {
		gen, _, ok := strings.Cut(strings.TrimPrefix(key, base), ":")
		return ok && drop(gen)
	})
	if err != nil {
		return fmt.Errorf("delete generations of %s: %w", m.group, err)
	}
	return nil
}
