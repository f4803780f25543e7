package cli

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/spf13/cobra"

	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/platform/cache"
	"github.com/engramhq/engram/platform/config"
	"github.com/engramhq/engram/platform/metrics"
	"github.com/engramhq/engram/projections"
	"github.com/engramhq/engram/projections/redis"
	"github.com/engramhq/engram/queries"
)

// The projections commands work on the database named by ENGRAM_DATABASE_URL
// (and the Redis of ENGRAM_REDIS_URL) while the servers keep running.

func (p *program) newProjectionsCommand() *cobra.Command {
	return newGroup("projections", "List, inspect and rebuild the read models", "",
		p.newProjectionsListCommand(), p.newProjectionsStatusCommand(), p.newProjectionsRebuildCommand(), p.newProjectionsVerifyCommand())
}

func (p *program) newProjectionsListCommand() *cobra.Command {
	return newListingCommand("list", "List the projectors and what they build",
		func(context.Context) ([]projections.Info, error) { return catalogue(), nil },
		[]string{"NAME", "KIND", "REBUILD", "DESCRIPTION"},
		func(p projections.Info) []string {
			rebuild := "-"
			if p.Rebuildable {
				rebuild = "yes"
			}
			desc := p.Description
			if len(p.Tables) > 0 {
				desc += " (tables " + strings.Join(p.Tables, ", ") + ")"
			}
			return []string{p.Name, p.Kind, rebuild, desc}
		})
}

// newListingCommand returns a command without arguments that prints the
// lines list returns: as a table of header's columns, each line's cells
// made by row, or as JSON with --json.
func newListingCommand[T any](use, short string, list func(ctx context.Context) ([]T, error),
	header []string, row func(T) []string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lines, err := list(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(lines)
			}
			w := newTable(cmd.OutOrStdout(), header...)
			for _, l := range lines {
				w.row(row(l)...)
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// projectionLine is one line of engram projections status.
type projectionLine struct {
	projections.Status
	Kind string `json:"kind"`
	// State is live, rebuilding or not started for a SQL projector; the
	// Redis read model's state for a Redis one.
	State string `json:"state"`
	// ReadModelPosition is, for a Redis read model, the position of the
	// last event the live model applied.
	ReadModelPosition *int64 `json:"read_model_position,omitempty"`
}

func (p *program) newProjectionsStatusCommand() *cobra.Command {
	return newListingCommand("status", "Show each projector's checkpoint, lag, parked events and state",
		func(ctx context.Context) ([]projectionLine, error) {
			env, err := p.openProjectionsEnv(ctx)
			if err != nil {
				return nil, err
			}
			defer env.close()
			return env.status(ctx)
		},
		[]string{"NAME", "KIND", "CHECKPOINT", "LAG (EVENTS)", "LAG (SECONDS)", "PARKED", "STATE"},
		func(s projectionLine) []string {
			return []string{s.Name, s.Kind, strconv.FormatInt(s.Position, 10), strconv.FormatInt(s.LagEvents, 10),
				strconv.FormatFloat(s.LagSeconds, 'f', 1, 64), strconv.FormatInt(s.Parked, 10), s.State}
		})
}

func (p *program) newProjectionsRebuildCommand() *cobra.Command {
	var (
		asOf, into        string
		pageSize, workers int
		quiet             bool
	)
	cmd := &cobra.Command{
		Use:   "rebuild NAME",
		Short: "Rebuild a read model from the log and swap it in while the API keeps serving",
		Long: `Rebuild a read model from position 0.

A SQL read model is built in the shadow schema rebuild_NAME, caught up with
the head of the log, then swapped in atomically: the live consumer pauses for
the swap and goes on from the rebuilt checkpoint. Interrupted (Ctrl-C), the
rebuild leaves the live read model untouched.

With --as-of and --into, the read model is built as it stood at a position or
a time into a new schema, for investigation; the live one is not touched.

A Redis read model is built into a new generation of keys that replaces the
live one once it has caught up.`,
		Args: rebuildArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			sqlProjector, isSQL := projections.SQLProjector(name)
			if !isSQL && !isRedisProjector(name) {
				return usageError(fmt.Errorf("%q is not a rebuildable read model; one of: %s", name, strings.Join(rebuildableNames(), ", ")))
			}
			point, err := parseAsOf(asOf)
			if err != nil {
				return usageError(err)
			}
			if !point.IsZero() && into == "" {
				return usageError(errors.New("--as-of needs --into: a read model of the past is built beside the live one"))
			}
			if !isSQL && (into != "" || !point.IsZero()) {
				return usageError(errors.New("--into and --as-of apply to SQL read models only"))
			}
			env, err := p.openProjectionsEnv(cmd.Context())
			if err != nil {
				return err
			}
			defer env.close()
			// A rebuild allocates page after page of short-lived events: a
			// larger heap between collections spares a good part of its CPU.
			debug.SetGCPercent(400)
			bar := newRebuildBar(cmd.ErrOrStderr(), name, quiet)
			defer bar.finish()
			var res projections.RebuildResult
			if isSQL {
				r, err := projections.NewRebuilder(env.store, env.logger)
				if err != nil {
					return err
				}
				res, err = r.Rebuild(cmd.Context(), sqlProjector, projections.RebuildOptions{
					Into: into, AsOf: point, PageSize: pageSize, Workers: workers, Progress: bar.update,
				})
				if err != nil {
					return rebuildFailed(err)
				}
			} else {
				if env.redis == nil {
					return failure(errors.New("no Redis is configured (ENGRAM_REDIS_URL)"))
				}
				if env.caches.Backend() != cache.BackendRedis {
					return failure(errors.New("cannot reach Redis (ENGRAM_REDIS_URL)"))
				}
				res, err = env.redis.Rebuild(cmd.Context(), name, bar.update)
				if err != nil {
					return rebuildFailed(err)
				}
			}
			bar.finish()
			where := "swapped in"
			if !res.Swapped {
				where = "built into schema " + res.Schema
			}
			note(cmd.OutOrStdout(), "%s: %d events in %s (%s), %s, checkpoint %d, %d parked\n",
				name, res.Events, res.Elapsed.Round(time.Millisecond), formatRate(res.Rate()), where, res.Cursor.Position, len(res.Parked))
			for _, p := range res.Parked {
				note(cmd.OutOrStdout(), "  parked: position %d (%s): %s\n", p.Position, p.Type, p.Err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&asOf, "as-of", "", "build the read model as it stood at this position or RFC 3339 time (needs --into)")
	cmd.Flags().StringVar(&into, "into", "", "build into this new schema and leave the live read model alone")
	cmd.Flags().IntVar(&pageSize, "page-size", 10_000, "events read and applied per transaction")
	cmd.Flags().IntVar(&workers, "workers", 0, "connections applying events in parallel, split by stream, for projectors that allow it (0: 2 for those)")
	cmd.Flags().BoolVar(&quiet, "quiet", false, "no progress bar")
	return cmd
}

// rebuildArgs wants exactly one name and, without one, lists the read
// models that can be rebuilt.
func rebuildArgs(_ *cobra.Command, args []string) error {
	if len(args) == 1 {
		return nil
	}
	if len(args) > 1 {
		return fmt.Errorf("rebuild takes one read model, got %d: %s", len(args), strings.Join(args, " "))
	}
	return fmt.Errorf("name the read model to rebuild, one of:\n  %s", strings.Join(rebuildableNames(), "\n  "))
}

// rebuildableNames are the projectors engram projections rebuild accepts.
func rebuildableNames() []string {
	var names []string
	for _, p := range catalogue() {
		if p.Rebuildable {
			names = append(names, p.Name)
		}
	}
	return names
}

func rebuildFailed(err error) error {
	if errors.Is(err, context.Canceled) {
		return &exitError{code: 130, err: errors.New("rebuild interrupted; the live read model is untouched")}
	}
	return failure(err)
}

// parseAsOf reads a position (a positive integer) or an RFC 3339 time.
func parseAsOf(s string) (projections.AsOf, error) {
	if s == "" {
		return projections.AsOf{}, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 {
			return projections.AsOf{}, fmt.Errorf("--as-of %s: a position is a positive integer", s)
		}
		return projections.AsOf{Position: n}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return projections.AsOf{}, fmt.Errorf("--as-of %q: give a position (e.g. 1200) or an RFC 3339 time (e.g. 2026-01-02T15:04:05Z)", s)
	}
	return projections.AsOf{Time: t}, nil
}

// catalogue describes every projector: the SQL and cognition ones, then the
// Redis read models.
func catalogue() []projections.Info {
	return append(projections.Catalogue(), redis.Catalogue()...)
}

func isRedisProjector(name string) bool {
	return name == redis.MessagesProjector || name == redis.WorkspacesProjector
}

// table writes aligned columns; Flush reports any failure to write.
type table struct{ *tabwriter.Writer }

func newTable(w io.Writer, header ...string) table {
	t := table{tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	t.row(header...)
	return t
}

// row buffers one line; a failure to write shows at Flush.
func (t table) row(cells ...string) { _, _ = io.WriteString(t.Writer, strings.Join(cells, "\t")+"\n") }

// projectionsEnv is what the projections commands work with.
type projectionsEnv struct {
	logger *slog.Logger
	db     *sqlx.DB
	store  *eventstore.Store
	caches *cache.Fallback
	redis  *redis.ReadModels // nil without Redis
	closer io.Closer
}

func (p *program) openProjectionsEnv(ctx context.Context) (*projectionsEnv, error) {
	cfg, logger, logs, err := p.configure()
	if err != nil {
		return nil, err
	}
	env := &projectionsEnv{logger: logger, closer: logs}
	if env.db, err = openDatabase(ctx, cfg, false, logger); err != nil {
		env.close()
		return nil, failure(err)
	}
	if env.store, err = eventstore.New(env.db); err != nil {
		env.close()
		return nil, err
	}
	if env.caches, err = cache.NewFallback(ctx, cfg.RedisURL, cfg.RedisPrefix, slog.New(slog.DiscardHandler)); err != nil {
		env.close()
		return nil, usageError(err)
	}
	if env.caches.Client() != nil {
		if env.redis, err = redis.New(env.caches, env.store, logger, redis.Options{Prefix: cfg.RedisPrefix}); err != nil {
			env.close()
			return nil, err
		}
	}
	return env, nil
}

func (env *projectionsEnv) close() {
	if env.caches != nil {
		_ = env.caches.Close()
	}
	if env.db != nil {
		_ = env.db.Close()
	}
	_ = env.closer.Close()
}

// status reports every projector of the catalogue.
func (env *projectionsEnv) status(ctx context.Context) ([]projectionLine, error) {
	infos := catalogue()
	names := make([]string, len(infos))
	for i, p := range infos {
		names[i] = p.Name
	}
	statuses, err := projections.NewCheckpoints(env.db.DB, time.Second).Status(ctx, names)
	if err != nil {
		return nil, err
	}
	var started []string
	if err := env.db.SelectContext(ctx, &started, `SELECT consumer_group FROM consumer_offsets`); err != nil {
		return nil, fmt.Errorf("consumer groups: %w", err)
	}
	var redisStates []redis.Status
	if env.redis != nil {
		redisStates = env.redis.Status(ctx)
	}
	out := make([]projectionLine, len(infos))
	for i, p := range infos {
		s := projectionLine{Status: statuses[i], Kind: p.Kind, State: "live"}
		if !contains(started, p.Name) {
			s.State = "not started"
		}
		switch p.Kind {
		case projections.KindSQL:
			running, err := projections.Rebuilding(ctx, env.db.DB, p.Name)
			if err != nil {
				return nil, err
			}
			if running {
				s.State = "rebuilding"
			} else if leftover, err := schemaExists(ctx, env.db.DB, projections.ShadowSchema(p.Name)); err != nil {
				return nil, err
			} else if leftover {
				s.State += " (an interrupted rebuild left schema " + projections.ShadowSchema(p.Name) + ")"
			}
		case projections.KindRedis:
			s.State = "disabled (no Redis)"
			for _, r := range redisStates {
				if r.Name != p.Name {
					continue
				}
				s.State = r.State
				if r.State == redis.Live {
					pos := r.Position
					s.ReadModelPosition = &pos
				}
				if r.Building {
					s.State += fmt.Sprintf(", rebuilding (at %d)", r.BuildPosition)
				}
			}
		}
		out[i] = s
	}
	return out, nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func schemaExists(ctx context.Context, db *sql.DB, name string) (bool, error) {
	var ok bool
	err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, name).Scan(&ok)
	return ok, err
}

// newRedisReadModels builds the Redis read models when Redis is configured,
// with their metrics, and the query option that reads them.
func newRedisReadModels(ctx context.Context, caches *cache.Fallback, store *eventstore.Store, cfg config.Config,
	m *metrics.Metrics, logger *slog.Logger) (*redis.ReadModels, []queries.Option, error) {
	if caches.Client() == nil {
		return nil, nil, nil
	}
	rm, err := redis.New(caches, store, logger, redis.Options{
		Prefix: cfg.RedisPrefix, OnRead: m.ReadModelReads().Observe,
	})
	if err != nil {
		return nil, nil, err
	}
	m.WatchRedisReadModels(func() []metrics.RedisReadModelState {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		var out []metrics.RedisReadModelState
		for _, s := range rm.Status(ctx) {
			out = append(out, metrics.RedisReadModelState{Name: s.Name, Live: s.State == redis.Live, Position: s.Position})
		}
		return out
	})
	return rm, []queries.Option{queries.WithHotReads(rm)}, nil
}
