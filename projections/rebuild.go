package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/platform/defaults"
)

// TableProjector is a projector whose read model is a set of SQL tables that
// it alone writes, so that the read model can be rebuilt from the log.
type TableProjector interface {
	Projector
	// Tables names the tables the projector writes, unqualified. Apply
	// must write nothing else: a rebuild runs it with only these tables in
	// its search path.
	Tables() []string
}

// StreamLocal is a projector whose writes for an event depend only on the
// earlier events of the same stream, so that a rebuild may apply different
// streams in parallel.
type StreamLocal interface {
	StreamLocal() bool
}

// Describer is a projector that says in a few words what it builds.
type Describer interface {
	Description() string
}

// ErrRebuildRunning means another process is rebuilding the same projector.
var ErrRebuildRunning = errors.New("a rebuild of this projector is already running")

// RebuildOptions tune a rebuild.
type RebuildOptions struct {
	// Into, when set, builds the read model into this new schema and leaves
	// the live one untouched (for investigation). When empty the read model
	// is built in the shadow schema rebuild_<name> and swapped in.
	Into string
	// AsOf builds the read model as it stood at a point in the history; it
	// requires Into.
	AsOf AsOf
	// PageSize is the number of events read per query and applied per
	// transaction (default 10,000).
	PageSize int
	// Workers is the number of connections applying events in parallel,
	// each taking the events of its share of the streams, in order. It
	// applies to StreamLocal projectors only (default 2); the others get
	// one.
	Workers int
	// Progress, when set, is called after every page.
	Progress func(RebuildProgress)
}

// RebuildProgress tells how far a rebuild has come.
type RebuildProgress struct {
	// Read is the number of events read from the log so far.
	Read int64
	// Total is the number of events the rebuild expects to read; it grows
	// while the log does.
	Total int64
}

// ParkedEvent is an event a rebuild could not apply.
type ParkedEvent struct {
	Position int64
	EventID  string
	Type     string
	Err      string
}

// RebuildResult describes a finished rebuild.
type RebuildResult struct {
	// Projector is the projector's name.
	Projector string
	// Schema holds the rebuilt tables: the live schema after a swap, or
	// the schema given as Into.
	Schema string
	// Events is the number of events read from the log.
	Events int64
	// Cursor is the last event read, in commit order: after a swap, the
	// projector's checkpoint.
	Cursor eventstore.Cursor
	// Parked are the events the projector failed on; after a swap they
	// replace the projector's parked events.
	Parked []ParkedEvent
	// Swapped reports whether the rebuilt tables replaced the live ones.
	Swapped bool
	// Elapsed is the wall time of the rebuild.
	Elapsed time.Duration
}

// Rate returns the events read per second.
func (r RebuildResult) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Events) / r.Elapsed.Seconds()
}

// Rebuilder rebuilds SQL read models from the event log while the API keeps
// serving the live ones.
//
// A rebuild creates the projector's tables in a shadow schema
// (rebuild_<name>, empty, unlogged while it is filled), replays the log into
// them in commit order, thousands of events per transaction, with the
// projector's own Apply running under `SET LOCAL search_path` to the shadow
// schema; then, in one transaction, it locks the projector's checkpoint row
// (which pauses the live consumer group), applies the last events, moves the
// live tables out and the rebuilt ones in, and sets the checkpoint to the last
// event applied. Until that commit the live read model is untouched: an
// interrupted rebuild only leaves a shadow schema, dropped by the next one.
//
// Each step has its file: rebuild_lock.go (one rebuild of a projector at a
// time), rebuild_schema.go (the shadow tables), rebuild_replay.go (the log
// read and applied page by page), rebuild_swap.go (the swap) and
// rebuild_asof.go (a read model as it stood at a point in the history).
type Rebuilder struct {
	store  *eventstore.Store
	db     *sql.DB
	logger *slog.Logger
}

// NewRebuilder returns a Rebuilder reading the log of store and writing
// through the same database.
func NewRebuilder(store *eventstore.Store, logger *slog.Logger) (*Rebuilder, error) {
	if store == nil || logger == nil {
		return nil, errors.New("projections: rebuilder needs a store and a logger")
	}
	return &Rebuilder{store: store, db: store.DB().DB, logger: logger}, nil
}

// ShadowSchema returns the schema in which the projector named name is
// rebuilt before the swap.
func ShadowSchema(name string) string { return "rebuild_" + name }

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// validInto checks a schema name given as RebuildOptions.Into.
func validInto(name string) error {
	switch {
	case !schemaName.MatchString(name):
		return fmt.Errorf("schema %q: use 1 to 63 lower-case letters, digits and underscores, not starting with a digit", name)
	case name == "public", strings.HasPrefix(name, "pg_"), name == "information_schema":
		return fmt.Errorf("schema %q is reserved", name)
	case strings.HasPrefix(name, "rebuild_"):
		return fmt.Errorf("schema %q: the prefix rebuild_ is reserved for the shadow schemas of swaps", name)
	}
	return nil
}

// Rebuild rebuilds p's read model from position 0 (see Rebuilder). With
// o.Into it builds into that schema, which must not exist, and leaves the
// live read model alone. It returns ErrRebuildRunning when another rebuild of
// p is running. Cancelling ctx abandons the rebuild; the live read model is
// then untouched.
func (r *Rebuilder) Rebuild(ctx context.Context, p TableProjector, o RebuildOptions) (RebuildResult, error) {
	start := time.Now()
	name := p.Name()
	if len(p.Tables()) == 0 {
		return RebuildResult{}, fmt.Errorf("rebuild %s: the projector declares no tables", name)
	}
	if o.Into != "" {
		if err := validInto(o.Into); err != nil {
			return RebuildResult{}, fmt.Errorf("rebuild %s: %w", name, err)
		}
	} else if !o.AsOf.IsZero() {
		return RebuildResult{}, fmt.Errorf("rebuild %s as of %s: a point-in-time rebuild needs a schema to build into", name, o.AsOf)
	}
	defaults.Positive(&o.PageSize, 10_000)
	if sl, ok := p.(StreamLocal); !ok || !sl.StreamLocal() {
		o.Workers = 1
	} else if o.Workers <= 0 {
		o.Workers = 2
	}

	unlock, err := r.lock(ctx, name)
	if err != nil {
		return RebuildResult{}, err
	}
	defer unlock()

	b := &build{r: r, p: p, o: o, schema: o.Into, result: RebuildResult{Projector: name}}
	if b.schema == "" {
		b.schema = ShadowSchema(name)
	}
	phase := func(what string, fn func(context.Context) error) error {
		t := time.Now()
		if err := fn(ctx); err != nil {
			return err
		}
		r.logger.Debug("rebuild phase done", "projector", name, "phase", what, "elapsed", time.Since(t).String())
		return nil
	}
	if err := phase("prepare", b.prepare); err != nil {
		return RebuildResult{}, fmt.Errorf("rebuild %s: %w", name, err)
	}
	if err := phase("replay", b.replay); err != nil {
		return RebuildResult{}, fmt.Errorf("rebuild %s: %w", name, err)
	}
	if err := phase("finish tables", b.finishTables); err != nil {
		return RebuildResult{}, fmt.Errorf("rebuild %s: %w", name, err)
	}
	if o.Into == "" {
		if err := phase("swap", b.swap); err != nil {
			return RebuildResult{}, fmt.Errorf("rebuild %s: swap: %w", name, err)
		}
	}
	b.result.Elapsed = time.Since(start)
	return b.result, nil
}

// build is one rebuild in progress.
type build struct {
	r      *Rebuilder
	p      TableProjector
	o      RebuildOptions
	schema string
	tables []liveTable
	// deferred are the non-unique indexes, created once the tables are full.
	deferred []string
	maxTx    uint64 // as-of rebuilds: the last transaction to read
	total    int64
	result   RebuildResult
}

func (b *build) report() {
	if b.o.Progress == nil {
		return
	}
	if b.result.Events > b.total {
		b.total = b.result.Events
	}
	b.o.Progress(RebuildProgress{Read: b.result.Events, Total: b.total})
}
