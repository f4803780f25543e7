package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lib/pq"

	"github.com/engramhq/engram/eventstore"
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

// AsOf is a point in the history. The zero AsOf is the head of the log.
type AsOf struct {
	// Position, when positive, keeps the events at or below this global
	// position.
	Position int64
	// Time, when set, keeps the events recorded at or before it.
	Time time.Time
}

// IsZero reports whether a is the head of the log.
func (a AsOf) IsZero() bool { return a.Position <= 0 && a.Time.IsZero() }

// includes reports whether e belongs to the history up to a.
func (a AsOf) includes(e eventstore.Event) bool {
	if a.Position > 0 && e.GlobalPosition > a.Position {
		return false
	}
	if !a.Time.IsZero() && e.RecordedAt.After(a.Time) {
		return false
	}
	return true
}

// String renders a for messages.
func (a AsOf) String() string {
	switch {
	case a.Position > 0 && !a.Time.IsZero():
		return fmt.Sprintf("position %d and %s", a.Position, a.Time.UTC().Format(time.RFC3339Nano))
	case a.Position > 0:
		return fmt.Sprintf("position %d", a.Position)
	case !a.Time.IsZero():
		return a.Time.UTC().Format(time.RFC3339Nano)
	}
	return "the head of the log"
}

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
	if o.PageSize <= 0 {
		o.PageSize = 10_000
	}
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

// lock takes the session advisory lock that keeps two rebuilds of one
// projector apart, on a connection of its own held until unlock.
func (r *Rebuilder) lock(ctx context.Context, name string) (func(), error) {
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("rebuild %s: %w", name, err)
	}
	key := rebuildLockKey(name)
	var ok bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("rebuild %s: lock: %w", name, err)
	}
	if !ok {
		_ = conn.Close()
		return nil, fmt.Errorf("rebuild %s: %w", name, ErrRebuildRunning)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, _ = conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, key)
		_ = conn.Close()
	}, nil
}

// rebuildLockKey is the advisory lock key of a projector's rebuilds.
func rebuildLockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("engram.rebuild." + name))
	return int64(h.Sum64())
}

// Rebuilding reports whether a rebuild of the projector named name is running
// (in any process).
func Rebuilding(ctx context.Context, db *sql.DB, name string) (bool, error) {
	key := uint64(rebuildLockKey(name))
	var held bool
	err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 1)`, int64(key>>32), int64(uint32(key))).Scan(&held)
	if err != nil {
		return false, fmt.Errorf("rebuild lock of %s: %w", name, err)
	}
	return held, nil
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

// liveTable is a read-model table and the schema it lives in.
type liveTable struct {
	schema, name string
}

func (t liveTable) qualified() string {
	return pq.QuoteIdentifier(t.schema) + "." + pq.QuoteIdentifier(t.name)
}

// prepare creates the schema and its empty tables, shaped like the live ones.
func (b *build) prepare(ctx context.Context) error {
	db := b.r.db
	for _, t := range b.p.Tables() {
		var schema sql.NullString
		err := db.QueryRowContext(ctx, `SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE c.oid = to_regclass($1)`, t).Scan(&schema)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && !schema.Valid) {
			return fmt.Errorf("table %s does not exist (are the migrations applied?)", t)
		}
		if err != nil {
			return fmt.Errorf("find table %s: %w", t, err)
		}
		if schema.String == b.schema {
			return fmt.Errorf("schema %s holds the live table %s", b.schema, t)
		}
		b.tables = append(b.tables, liveTable{schema: schema.String, name: t})
	}

	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, b.schema).Scan(&exists); err != nil {
		return fmt.Errorf("look for schema %s: %w", b.schema, err)
	}
	shadow := pq.QuoteIdentifier(b.schema)
	if exists {
		if b.o.Into != "" {
			return fmt.Errorf("schema %s already exists: choose another name or drop it (DROP SCHEMA %s CASCADE)", b.schema, shadow)
		}
		// Left by an interrupted rebuild; the advisory lock says none runs.
		if _, err := db.ExecContext(ctx, `DROP SCHEMA `+shadow+` CASCADE`); err != nil {
			return fmt.Errorf("drop the leftover shadow schema %s: %w", b.schema, err)
		}
		b.r.logger.Info("dropped the shadow schema of an interrupted rebuild", "schema", b.schema)
	}

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `CREATE SCHEMA `+shadow); err != nil {
		return fmt.Errorf("create schema %s: %w", b.schema, err)
	}
	for _, t := range b.tables {
		if err := b.createTable(ctx, tx, t); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create the tables in %s: %w", b.schema, err)
	}
	return b.count(ctx)
}

// createTable creates t in the build's schema: unlogged while it is filled,
// with the live table's columns, defaults and checks, and its primary key,
// unique constraints and unique indexes under the same names (a projector's
// ON CONFLICT needs them, and so will later migrations). Other indexes are
// created once the table is full.
func (b *build) createTable(ctx context.Context, tx *sql.Tx, t liveTable) error {
	shadow := liveTable{schema: b.schema, name: t.name}
	if _, err := tx.ExecContext(ctx, `CREATE UNLOGGED TABLE `+shadow.qualified()+` (LIKE `+t.qualified()+
		` INCLUDING ALL EXCLUDING INDEXES)`); err != nil {
		return fmt.Errorf("create %s: %w", shadow.qualified(), err)
	}
	type def struct{ name, sql string }
	query := func(q string) ([]def, error) {
		rows, err := tx.QueryContext(ctx, q, t.qualified())
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []def
		for rows.Next() {
			var d def
			if err := rows.Scan(&d.name, &d.sql); err != nil {
				return nil, err
			}
			out = append(out, d)
		}
		return out, rows.Err()
	}
	constraints, err := query(`SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
		WHERE conrelid = $1::regclass AND contype IN ('p', 'u', 'x') ORDER BY conname`)
	if err != nil {
		return fmt.Errorf("constraints of %s: %w", t.qualified(), err)
	}
	for _, c := range constraints {
		if _, err := tx.ExecContext(ctx, `ALTER TABLE `+shadow.qualified()+` ADD CONSTRAINT `+pq.QuoteIdentifier(c.name)+` `+c.sql); err != nil {
			return fmt.Errorf("copy constraint %s: %w", c.name, err)
		}
	}
	indexes, err := query(`SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE i.indrelid = $1::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
		ORDER BY i.indisunique DESC, c.relname`)
	if err != nil {
		return fmt.Errorf("indexes of %s: %w", t.qualified(), err)
	}
	// pg_get_indexdef quotes names only where needed, as quote_ident does.
	var asShown string
	if err := tx.QueryRowContext(ctx, `SELECT quote_ident($1) || '.' || quote_ident($2)`, t.schema, t.name).Scan(&asShown); err != nil {
		return err
	}
	for _, ix := range indexes {
		on := " ON " + asShown + " "
		if !strings.Contains(ix.sql, on) {
			return fmt.Errorf("index %s: unexpected definition %q", ix.name, ix.sql)
		}
		stmt := strings.Replace(ix.sql, on, " ON "+shadow.qualified()+" ", 1)
		if strings.HasPrefix(ix.sql, "CREATE UNIQUE ") {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("copy index %s: %w", ix.name, err)
			}
			continue
		}
		b.deferred = append(b.deferred, stmt)
	}
	return nil
}

// count finds how many events the rebuild will read and, as of a point in
// the history, the last transaction it must read.
func (b *build) count(ctx context.Context) error {
	db := b.r.db
	if b.o.AsOf.IsZero() {
		return db.QueryRowContext(ctx, `SELECT count(*) FROM events`).Scan(&b.total)
	}
	var pos sql.NullInt64
	var at sql.NullTime
	if b.o.AsOf.Position > 0 {
		pos = sql.NullInt64{Int64: b.o.AsOf.Position, Valid: true}
	}
	if !b.o.AsOf.Time.IsZero() {
		at = sql.NullTime{Time: b.o.AsOf.Time, Valid: true}
	}
	var maxTx sql.NullString
	err := db.QueryRowContext(ctx, `SELECT count(*), max(tx_id)::text FROM events
		WHERE ($1::bigint IS NULL OR global_position <= $1) AND ($2::timestamptz IS NULL OR recorded_at <= $2)`,
		pos, at).Scan(&b.total, &maxTx)
	if err != nil {
		return fmt.Errorf("count the events as of %s: %w", b.o.AsOf, err)
	}
	if maxTx.Valid {
		if b.maxTx, err = strconv.ParseUint(maxTx.String, 10, 64); err != nil {
			return fmt.Errorf("transaction id %q: %w", maxTx.String, err)
		}
	}
	return nil
}

// replay applies the log to the build's tables up to the head (or the as-of
// point), reading the next page while the workers apply the current one.
func (b *build) replay(ctx context.Context) error {
	if !b.o.AsOf.IsZero() && b.maxTx == 0 {
		return nil // Nothing happened before that point.
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := make(chan []eventstore.Event, 1)
	readErr := make(chan error, 1)
	go func() {
		defer close(pages)
		readErr <- b.read(ctx, pages)
	}()

	ws := newWorkers(b.r.db, b.p, b.schema, b.o.Workers)
	defer ws.close()
	for page := range pages {
		if err := ws.apply(ctx, page, b.o.AsOf); err != nil {
			cancel()
			for range pages { // let the reader stop
			}
			return err
		}
		b.result.Events += int64(len(page))
		b.result.Cursor = page[len(page)-1].Cursor()
		b.report()
	}
	if err := <-readErr; err != nil {
		return err
	}
	b.result.Parked = append(b.result.Parked, ws.parked()...)
	return nil
}

// read sends pages of events in commit order until the head of the log (or,
// as of a point, until every transaction up to the point's has been read).
// The last page may be shorter; every page it sends is non-empty.
func (b *build) read(ctx context.Context, pages chan<- []eventstore.Event) error {
	cursor := eventstore.Cursor{}
	asOf := !b.o.AsOf.IsZero()
	for {
		page, err := b.r.store.ReadCommitted(ctx, cursor, b.o.PageSize)
		if err != nil {
			return fmt.Errorf("read the log after position %d: %w", cursor.Position, err)
		}
		if asOf {
			for i, e := range page {
				if e.TxID > b.maxTx {
					page = page[:i]
					break
				}
			}
		}
		if len(page) > 0 {
			cursor = page[len(page)-1].Cursor()
			select {
			case pages <- page:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if len(page) == b.o.PageSize {
			continue
		}
		if !asOf || cursor.TxID >= b.maxTx {
			return nil
		}
		// As of a point, a transaction older than the point's may still
		// be in flight: wait for it rather than leave its events out.
		done, err := b.settled(ctx)
		if err != nil || done {
			return err
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// settled reports whether every transaction up to maxTx has ended.
func (b *build) settled(ctx context.Context) (bool, error) {
	var ok bool
	err := b.r.db.QueryRowContext(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot()) > $1::text::xid8`,
		strconv.FormatUint(b.maxTx, 10)).Scan(&ok)
	return ok, err
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

// finishTables creates the deferred indexes and makes the tables logged.
func (b *build) finishTables(ctx context.Context) error {
	for _, stmt := range b.deferred {
		if _, err := b.r.db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("create index: %w", err)
		}
	}
	for _, t := range b.tables {
		shadow := liveTable{schema: b.schema, name: t.name}
		if _, err := b.r.db.ExecContext(ctx, `ALTER TABLE `+shadow.qualified()+` SET LOGGED`); err != nil {
			return fmt.Errorf("make %s logged: %w", shadow.qualified(), err)
		}
	}
	if b.o.Into != "" {
		b.result.Schema = b.o.Into
	}
	return nil
}

// swap applies the last events and replaces the live tables, in one
// transaction that first locks the projector's checkpoint row: the live
// consumer group waits for it, then goes on from the new checkpoint. A swap
// that cannot take its locks in time is tried again.
func (b *build) swap(ctx context.Context) error {
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		err = b.trySwap(ctx)
		var pqErr *pq.Error
		if err == nil || !errors.As(err, &pqErr) || pqErr.Code != "55P03" { // lock_not_available
			return err
		}
		b.r.logger.Warn("rebuild: the swap waited too long for its locks; trying again", "projector", b.p.Name(), "attempt", attempt)
	}
	return err
}

func (b *build) trySwap(ctx context.Context) (err error) {
	name := b.p.Name()
	tx, err := b.r.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = '15s'`); err != nil {
		return err
	}
	var acked sql.NullInt64
	var ackedTx sql.NullString
	err = tx.QueryRowContext(ctx, `SELECT offset_acked, last_processed_transaction_id::text FROM consumer_offsets
		WHERE consumer_group = $1 FOR UPDATE`, name).Scan(&acked, &ackedTx)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("lock the checkpoint: %w", err)
	}

	// The live consumer is paused: apply what it may have applied since.
	cursor := b.result.Cursor
	events := b.result.Events
	w := &worker{p: b.p, tx: tx, exec: newPreparedExecer(tx)}
	if _, err := tx.ExecContext(ctx, `SET LOCAL search_path TO `+pq.QuoteIdentifier(b.schema)); err != nil {
		return err
	}
	for {
		page, err := b.r.store.ReadCommitted(ctx, cursor, b.o.PageSize)
		if err != nil {
			return fmt.Errorf("read the log: %w", err)
		}
		if len(page) == 0 {
			break
		}
		if err := w.applyInSwap(ctx, page); err != nil {
			return err
		}
		cursor = page[len(page)-1].Cursor()
		events += int64(len(page))
	}
	if _, err := tx.ExecContext(ctx, `SET LOCAL search_path TO DEFAULT`); err != nil {
		return err
	}

	names := make([]string, len(b.tables))
	for i, t := range b.tables {
		names[i] = t.qualified()
	}
	if _, err := tx.ExecContext(ctx, `LOCK TABLE `+strings.Join(names, ", ")+` IN ACCESS EXCLUSIVE MODE`); err != nil {
		return fmt.Errorf("lock the live tables: %w", err)
	}
	// Indexes and constraints move with their tables, names unchanged.
	shadow := pq.QuoteIdentifier(b.schema)
	replaced := pq.QuoteIdentifier(b.schema + "_replaced")
	if _, err := tx.ExecContext(ctx, `CREATE SCHEMA `+replaced); err != nil {
		return err
	}
	for _, t := range b.tables {
		rebuilt := liveTable{schema: b.schema, name: t.name}
		for _, stmt := range []string{
			`ALTER TABLE ` + t.qualified() + ` SET SCHEMA ` + replaced,
			`ALTER TABLE ` + rebuilt.qualified() + ` SET SCHEMA ` + pq.QuoteIdentifier(t.schema),
		} {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("swap %s: %w", t.qualified(), err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO consumer_offsets (consumer_group, offset_acked, last_processed_transaction_id)
		VALUES ($1, $2, $3::text::xid8) ON CONFLICT (consumer_group) DO UPDATE
		SET offset_acked = excluded.offset_acked, last_processed_transaction_id = excluded.last_processed_transaction_id`,
		name, cursor.Position, strconv.FormatUint(cursor.TxID, 10)); err != nil {
		return fmt.Errorf("set the checkpoint: %w", err)
	}
	parked := append(append([]ParkedEvent(nil), b.result.Parked...), w.parkedEvents...)
	if _, err := tx.ExecContext(ctx, `DELETE FROM parked_events WHERE consumer_group = $1`, name); err != nil {
		return fmt.Errorf("clear the parked events: %w", err)
	}
	for _, p := range parked {
		if _, err := tx.ExecContext(ctx, `INSERT INTO parked_events (consumer_group, global_position, event_id, type, error)
			VALUES ($1, $2, $3, $4, $5)`, name, p.Position, p.EventID, p.Type, p.Err); err != nil {
			return fmt.Errorf("park event %d: %w", p.Position, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DROP SCHEMA `+replaced+` CASCADE; DROP SCHEMA `+shadow); err != nil {
		return fmt.Errorf("drop the replaced tables: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	from := "nothing"
	if acked.Valid {
		from = strconv.FormatInt(acked.Int64, 10)
	}
	b.r.logger.Debug("rebuild swapped in", "projector", name, "checkpoint_before", from, "checkpoint", cursor.Position)
	b.result.Cursor = cursor
	b.result.Events = events
	b.result.Parked = parked
	b.result.Swapped = true
	b.result.Schema = b.tables[0].schema
	b.report()
	return nil
}

// savepointBatch is how many events a rebuild applies per transaction when
// each needs a savepoint of its own: PostgreSQL keeps at most 64
// subtransactions per backend in shared memory.
const savepointBatch = 32

// workers apply pages of events to the build's tables on several
// connections, each event on the worker its stream hashes to.
type workers struct {
	db     *sql.DB
	p      Projector
	schema string
	ws     []*worker
}

func newWorkers(db *sql.DB, p Projector, schema string, n int) *workers {
	ws := &workers{db: db, p: p, schema: schema, ws: make([]*worker, n)}
	for i := range ws.ws {
		ws.ws[i] = &worker{p: p}
	}
	return ws
}

// apply applies page (the events as of asOf), one transaction per worker,
// committed before it returns.
func (ws *workers) apply(ctx context.Context, page []eventstore.Event, asOf AsOf) error {
	parts := make([][]eventstore.Event, len(ws.ws))
	if len(ws.ws) == 1 {
		parts[0] = page
	} else {
		for _, e := range page {
			h := fnv.New32a()
			h.Write([]byte(e.StreamID))
			i := int(h.Sum32() % uint32(len(ws.ws)))
			parts[i] = append(parts[i], e)
		}
	}
	errs := make([]error, len(ws.ws))
	var wg sync.WaitGroup
	for i, w := range ws.ws {
		if len(parts[i]) == 0 {
			continue
		}
		wg.Go(func() { errs[i] = w.page(ctx, ws.db, ws.schema, parts[i], asOf) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (ws *workers) parked() []ParkedEvent {
	var out []ParkedEvent
	for _, w := range ws.ws {
		out = append(out, w.parkedEvents...)
	}
	return out
}

func (ws *workers) close() {
	for _, w := range ws.ws {
		if w.conn != nil {
			_ = w.conn.Close()
		}
	}
}

// worker applies events through one connection.
type worker struct {
	p            Projector
	conn         *sql.Conn
	tx           *sql.Tx
	exec         *preparedExecer
	parkedEvents []ParkedEvent
}

// page applies events in a transaction of its own on the worker's
// connection, with the build's schema as the search path.
func (w *worker) page(ctx context.Context, db *sql.DB, schema string, events []eventstore.Event, asOf AsOf) (err error) {
	if w.conn == nil {
		if w.conn, err = db.Conn(ctx); err != nil {
			return err
		}
	}
	begin := func() error {
		tx, err := w.conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		// Losing the last commits of a rebuild to a crash loses nothing:
		// an interrupted rebuild starts again from scratch.
		if _, err := tx.ExecContext(ctx, `SET LOCAL search_path TO `+pq.QuoteIdentifier(schema)+`; SET LOCAL synchronous_commit TO off`); err != nil {
			_ = tx.Rollback()
			return err
		}
		w.tx, w.exec = tx, newPreparedExecer(tx)
		return nil
	}
	if err := begin(); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = w.tx.Rollback()
		}
		w.tx, w.exec = nil, nil
	}()
	if err := w.applyAll(ctx, events, asOf); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// Some event failed: the transaction is lost. Apply the page again,
		// each event in a savepoint, parking those that fail, in short
		// transactions: past 64 subtransactions a transaction slows every
		// snapshot in the cluster ("suboverflow").
		_ = w.tx.Rollback()
		for len(events) > 0 {
			n := min(len(events), savepointBatch)
			if err := begin(); err != nil {
				return err
			}
			if err := w.applyEach(ctx, events[:n], asOf); err != nil {
				return err
			}
			if err := w.tx.Commit(); err != nil {
				return err
			}
			events = events[n:]
		}
		return nil
	}
	return w.tx.Commit()
}

// applyAll applies events in the worker's transaction, stopping at the first
// failure; a BatchProjector gets them all at once.
func (w *worker) applyAll(ctx context.Context, events []eventstore.Event, asOf AsOf) error {
	if bp, ok := w.p.(BatchProjector); ok {
		if !asOf.IsZero() {
			kept := make([]eventstore.Event, 0, len(events))
			for _, e := range events {
				if asOf.includes(e) {
					kept = append(kept, e)
				}
			}
			events = kept
		}
		return bp.ApplyBatch(ctx, w.exec, events)
	}
	for _, e := range events {
		if !asOf.includes(e) {
			continue
		}
		if err := w.p.Apply(ctx, w.exec, e); err != nil {
			return fmt.Errorf("event %d (%s): %w", e.GlobalPosition, e.Type, err)
		}
	}
	return nil
}

// applyInSwap applies the swap's last events in one savepoint; should one
// fail, it applies them again one savepoint each, parking those that fail.
// The swap transaction stays clear of many subtransactions unless an event
// fails.
func (w *worker) applyInSwap(ctx context.Context, events []eventstore.Event) error {
	err := inSavepoint(ctx, w.tx, func() error { return w.applyAll(ctx, events, AsOf{}) })
	if err == nil || ctx.Err() != nil {
		return err
	}
	return w.applyEach(ctx, events, AsOf{})
}

// applyEach applies events one savepoint each, parking those that fail.
func (w *worker) applyEach(ctx context.Context, events []eventstore.Event, asOf AsOf) error {
	for _, e := range events {
		if !asOf.includes(e) {
			continue
		}
		err := inSavepoint(ctx, w.tx, func() error { return w.p.Apply(ctx, w.exec, e) })
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w.parkedEvents = append(w.parkedEvents, ParkedEvent{Position: e.GlobalPosition, EventID: e.EventID, Type: e.Type, Err: err.Error()})
	}
	return nil
}

// preparedExecer runs a projector's statements as prepared statements of
// one transaction: a rebuild sends the same few statements millions of
// times, and a prepared statement costs one round trip instead of two.
type preparedExecer struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

var _ Execer = (*preparedExecer)(nil)

func newPreparedExecer(tx *sql.Tx) *preparedExecer {
	return &preparedExecer{tx: tx, stmts: map[string]*sql.Stmt{}}
}

func (p *preparedExecer) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := p.stmts[query]; ok {
		return s, nil
	}
	s, err := p.tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	p.stmts[query] = s
	return s, nil
}

// ExecContext implements Execer.
func (p *preparedExecer) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	s, err := p.stmt(ctx, query) //nolint:sqlclosecheck // a transaction's statements close with it
	if err != nil {
		return nil, err
	}
	return s.ExecContext(ctx, args...)
}

// QueryRowContext implements Execer.
func (p *preparedExecer) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	s, err := p.stmt(ctx, query) //nolint:sqlclosecheck // a transaction's statements close with it
	if err != nil {
		return p.tx.QueryRowContext(ctx, query, args...) // reports the same error
	}
	return s.QueryRowContext(ctx, args...)
}
