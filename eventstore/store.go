package eventstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/engramhq/engram/platform/sqlstmt"
)

// Store is the PostgreSQL event store. It is safe for concurrent use.
type Store struct {
	db        *sqlx.DB
	now       func() time.Time
	heads     *heads
	firsts    *firstEvents
	onAppend  []func(AppendResult)
	committer *committer
	stmts     *sqlstmt.Cache
	// bystanders are transactions in flight that write no events.
	bystanders bystanders
	own        ownTip // the last event appended here (for the read lease)
}

// Option configures a Store.
type Option func(*Store)

// WithClock sets the clock used for recorded_at (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(s *Store) { s.now = now }
}

// WithAppendHook registers fn to be called after every successful append,
// after the commit, e.g. to wake local subscribers or count appends.
// fn must be quick and must not block.
func WithAppendHook(fn func(AppendResult)) Option {
	return func(s *Store) { s.onAppend = append(s.onAppend, fn) }
}

// New returns a Store over db, whose schema must already be migrated.
func New(db *sqlx.DB, opts ...Option) (*Store, error) {
	if db == nil {
		return nil, errors.New("eventstore: nil db")
	}
	s := &Store{db: db, now: time.Now, heads: newHeads(100_000), firsts: newFirstEvents(10_000), stmts: sqlstmt.New(db, 0)}
	s.committer = newCommitter(s, defaultCommitters, defaultGroupSize)
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// DB returns the underlying database handle.
func (s *Store) DB() *sqlx.DB { return s.db }

// Appender is what a writer of the log needs from an event store: *Store
// and the in-memory store (eventstore/inmem) both are one.
type Appender interface {
	// Append writes events at the end of a stream at the expected version.
	Append(ctx context.Context, stream Stream, expectedVersion int, events []NewEvent,
		md Metadata, opts ...AppendOption) (AppendResult, error)
}

// StreamReader is what a reader of one stream at a time needs from an event
// store.
type StreamReader interface {
	// ReadStream returns a stream's events after a version.
	ReadStream(ctx context.Context, streamID string, afterVersion int) ([]Event, error)
}

var (
	_ Appender     = (*Store)(nil)
	_ StreamReader = (*Store)(nil)
)

// AppendOption adds work to the append's transaction.
type AppendOption func(*appendOptions)

type appendOptions struct {
	claims []Claim
	idem   *Idempotency
	guard  *Guard
}

// WithClaims reserves unique values for the stream in the append's transaction;
// the append fails with ErrClaimed when one is held by another stream.
func WithClaims(claims ...Claim) AppendOption {
	return func(o *appendOptions) { o.claims = append(o.claims, claims...) }
}

// Guard names another stream and the version it must still be at for an
// append to be written: the append depends on what that stream said, e.g. a
// command authorized on a workspace's members as of that version.
type Guard struct {
	StreamID string
	Version  int
}

// WithGuard makes the append conditional on g, checked in the statement
// that inserts the events: when g's stream has an event above g's version
// by then, nothing is written and the append fails with ErrGuardChanged.
// A guarded append still shares its group's statement and round trip.
func WithGuard(g Guard) AppendOption {
	return func(o *appendOptions) { o.guard = &g }
}

// GuardOf returns the guard that opts set, if any, for other
// implementations of an append (an in-memory store in tests) to honour.
func GuardOf(opts ...AppendOption) (Guard, bool) {
	o := optionsOf(opts)
	if o.guard == nil {
		return Guard{}, false
	}
	return *o.guard, true
}

// Append writes events to the end of stream, which must be at expectedVersion
// (NoStream for a new stream). All events are written atomically, or none,
// and are durable when Append returns.
//
// Appends made at the same time on one Store are committed together (see
// committer): they share one transaction and, when they carry no claims or
// idempotency keys, one statement. Each one still succeeds or fails on its
// own: another append's clash or replay never fails this one.
//
// It returns ErrConcurrency when the stream is not at expectedVersion,
// ErrClaimed when a claim is held by another stream, ErrIdempotencyKeyUsed when
// the idempotency key of WithIdempotency was stored first by another
// request, and ErrNoEvents when events is empty.
func (s *Store) Append(ctx context.Context, stream Stream, expectedVersion int, events []NewEvent, md Metadata, opts ...AppendOption) (AppendResult, error) {
	p, err := s.prepare(ctx, stream, expectedVersion, events, md, opts...)
	if err != nil {
		return AppendResult{}, err
	}
	if err := s.committer.commit(ctx, p); err != nil {
		return AppendResult{}, err
	}
	result := AppendResult{Events: p.stored}
	last := p.stored[len(p.stored)-1]
	s.own.note(last.Cursor())
	s.heads.put(stream.ID, last.StreamVersion, last.Hash)
	if first := p.stored[0]; first.StreamVersion == 1 {
		// Who a new stream belongs to is asked right after it is written
		// (the worker reads the task it is handed): answered from memory.
		s.firsts.add(first)
	}
	for _, fn := range s.onAppend {
		fn(result)
	}
	return result, nil
}

// pendingAppend is an append ready to be written: its rows are built and
// hashed; only the positions are missing.
type pendingAppend struct {
	ctx    context.Context
	stream Stream
	stored []Event
	args   []any // eventCols values per event, in order
	claims []Claim
	idem   *Idempotency
	guard  *Guard

	err  error
	done chan struct{}
}

// special reports whether the append needs more than its insert: claims or
// an idempotency key, which take statements of their own.
func (p *pendingAppend) special() bool { return len(p.claims) > 0 || p.idem != nil }

// eventCols is the number of columns written per event.
const eventCols = 11

// prepare validates an append, and builds and hashes its rows.
func (s *Store) prepare(ctx context.Context, stream Stream, expectedVersion int, events []NewEvent, md Metadata, opts ...AppendOption) (*pendingAppend, error) {
	if err := CheckAppend(stream, expectedVersion, events); err != nil {
		return nil, err
	}
	o := optionsOf(opts)
	prev, err := s.prevHash(ctx, stream.ID, expectedVersion)
	if err != nil {
		return nil, err
	}
	appendMD, err := json.Marshal(md)
	if err != nil {
		return nil, fmt.Errorf("eventstore: metadata: %w", err)
	}
	recordedAt := s.now().UTC().Truncate(time.Microsecond)

	p := &pendingAppend{ctx: ctx, stream: stream, stored: make([]Event, len(events)),
		args: make([]any, 0, eventCols*len(events)), claims: o.claims, idem: o.idem, guard: o.guard}
	for i, ne := range events {
		sv := ne.SchemaVersion
		if sv == 0 {
			sv = 1
		}
		eventMD, mdJSON := md, appendMD
		if ne.Metadata != nil {
			eventMD = *ne.Metadata
			if mdJSON, err = json.Marshal(eventMD); err != nil {
				return nil, fmt.Errorf("eventstore: metadata: %w", err)
			}
		}
		e := Event{
			EventID:       ne.ID,
			StreamID:      stream.ID,
			StreamType:    stream.Type,
			StreamVersion: expectedVersion + i + 1,
			Type:          ne.Type,
			SchemaVersion: sv,
			Data:          ne.Data,
			Metadata:      eventMD,
			RecordedAt:    recordedAt,
			PrevHash:      prev,
		}
		if e.Hash, err = chainHash(prev, &e, ne.Data, mdJSON); err != nil {
			return nil, err
		}
		prev = e.Hash
		p.stored[i] = e
		p.args = append(p.args, e.EventID, e.StreamID, e.StreamType, e.StreamVersion, e.Type,
			e.SchemaVersion, string(e.Data), string(mdJSON), e.RecordedAt, nullBytes(e.PrevHash), e.Hash)
	}
	return p, nil
}

// insertColumns are the columns an append writes, eventCols of them.
const insertColumns = `event_id, stream_id, stream_type, stream_version, type,
		schema_version, data, metadata, recorded_at, prev_hash, hash`

// guardCols is the number of values a guarded insert adds to every row:
// the guard's stream and version (null for an append without a guard).
const guardCols = 2

// insertStatement returns the multi-row insert of rows events. A guarded
// one inserts only the rows whose guard holds: each row carries its
// append's guard, checked against the events table in the same statement,
// and the rows it inserted are known by their event ids.
func insertStatement(rows int, guarded bool) string {
	cols := eventCols
	if guarded {
		cols += guardCols
	}
	var values strings.Builder
	values.Grow(rows * cols * 5)
	for i := range rows {
		if i > 0 {
			values.WriteByte(',')
		}
		values.WriteByte('(')
		for c := 1; c <= cols; c++ {
			if c > 1 {
				values.WriteByte(',')
			}
			values.WriteByte('$')
			values.WriteString(strconv.Itoa(i*cols + c))
			if guarded && i == 0 {
				// A VALUES list takes its column types from its first row.
				values.WriteString(guardedTypes[c-1])
			}
		}
		values.WriteByte(')')
	}
	if !guarded {
		return `INSERT INTO events (` + insertColumns + `)
		VALUES ` + values.String() + ` RETURNING global_position, tx_id::text`
	}
	return `INSERT INTO events (` + insertColumns + `)
		SELECT ` + insertColumns + ` FROM (VALUES ` + values.String() + `)
		AS v (` + insertColumns + `, guard_stream, guard_version)
		WHERE v.guard_stream IS NULL OR NOT EXISTS (SELECT FROM events g
			WHERE g.stream_id = v.guard_stream AND g.stream_version > v.guard_version)
		RETURNING global_position, tx_id::text, event_id`
}

// preparedInsertRows bounds the inserts that run prepared. Most appends
// insert a row or a few (a post, a routing decision, a task's step), and
// parsing and planning their insert cost PostgreSQL more than running it;
// a group insert of more rows comes under load, where its planning is
// shared by its rows, and its texts (one per number of rows) would crowd
// every connection with statements used once in a while.
const preparedInsertRows = 8

// insertTexts are the inserts of up to preparedInsertRows rows, plain and
// guarded, written once.
var insertTexts = func() (t [preparedInsertRows + 1][2]string) {
	for rows := 1; rows <= preparedInsertRows; rows++ {
		t[rows] = [2]string{insertStatement(rows, false), insertStatement(rows, true)}
	}
	return t
}()

// runInsert runs the insert of rows events in tx, or on the pool when tx
// is nil, prepared when it is small enough.
func (s *Store) runInsert(ctx context.Context, tx *sqlx.Tx, rows int, guarded bool, args []any) (*sql.Rows, error) {
	var raw, prepared queryer = s.db, s.stmts
	if tx != nil {
		raw, prepared = tx, s.stmts.In(tx.Tx)
	}
	if rows > preparedInsertRows {
		return raw.QueryContext(ctx, insertStatement(rows, guarded), args...)
	}
	query := insertTexts[rows][0]
	if guarded {
		query = insertTexts[rows][1]
	}
	return prepared.QueryContext(ctx, query, args...)
}

// guardedTypes are the types of a guarded insert's values, in order.
var guardedTypes = [eventCols + guardCols]string{"::uuid", "::text", "::text", "::integer", "::text",
	"::integer", "::jsonb", "::jsonb", "::timestamptz", "::bytea", "::bytea", "::text", "::integer"}

// writeAlone writes one append in its own transaction: a single statement
// when it has no claims and no idempotency key. Refused because another
// instance holds the read lease, it waits for the lease to lapse and writes
// again.
func (s *Store) writeAlone(ctx context.Context, p *pendingAppend) error {
	for {
		err := s.writeOnce(ctx, p)
		l, ok := leased(err)
		if !ok {
			return err
		}
		if err := s.awaitLease(ctx, l); err != nil {
			return err
		}
	}
}

func (s *Store) writeOnce(ctx context.Context, p *pendingAppend) error {
	if !p.special() {
		// A single statement is its own transaction: one round trip.
		return s.insertOne(ctx, nil, p)
	}
	return s.inTx(ctx, func(tx *sqlx.Tx) error { return s.writeSpecial(ctx, tx, p) })
}

// writeSpecial writes an append with its idempotency key and claims in tx.
func (s *Store) writeSpecial(ctx context.Context, tx *sqlx.Tx, p *pendingAppend) error {
	if p.idem != nil {
		if err := reserveIdempotencyKey(ctx, tx, p.idem); err != nil {
			return err
		}
	}
	for _, c := range p.claims {
		if err := claim(ctx, tx, c, p.stream.ID); err != nil {
			return err
		}
	}
	if err := s.insertOne(ctx, tx, p); err != nil {
		return err
	}
	if p.idem != nil {
		return storeIdempotentResponse(ctx, tx, p.idem, AppendResult{Events: p.stored})
	}
	return nil
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// insertOne inserts the rows of one append, in tx or on the pool when tx
// is nil, and returns its outcome.
func (s *Store) insertOne(ctx context.Context, tx *sqlx.Tx, p *pendingAppend) error {
	outcomes, err := s.insert(ctx, tx, []*pendingAppend{p})
	if err != nil {
		return err
	}
	return outcomes[0]
}

// insert writes the rows of every append of group in one statement and
// sets their positions. It returns each append's outcome — nil, or
// ErrGuardChanged when its guard no longer held — and an error when the
// statement failed as a whole (nothing of the group was written). It runs
// in tx, or on the pool when tx is nil.
func (s *Store) insert(ctx context.Context, tx *sqlx.Tx, group []*pendingAppend) ([]error, error) {
	guarded := false
	rows := 0
	for _, p := range group {
		guarded = guarded || p.guard != nil
		rows += len(p.stored)
	}
	cols := eventCols
	if guarded {
		cols += guardCols
	}
	args := make([]any, 0, rows*cols)
	for _, p := range group {
		if !guarded {
			args = append(args, p.args...)
			continue
		}
		var stream, version any
		if p.guard != nil {
			stream, version = p.guard.StreamID, p.guard.Version
		}
		for i := range p.stored {
			args = append(args, p.args[i*eventCols:(i+1)*eventCols]...)
			args = append(args, stream, version)
		}
	}
	res, err := s.runInsert(ctx, tx, rows, guarded, args)
	if err != nil {
		return nil, mapAppendError(err)
	}
	defer res.Close()
	outcomes := make([]error, len(group))
	var inserted insertedRows
	next := func() bool { return inserted.scan(res, guarded) }
	have := next()
	for i, p := range group {
		// The rows come back in the order of the statement, without those
		// of the appends whose guard failed.
		if !have || (guarded && !inserted.is(p.stored[0].EventID)) {
			if p.guard == nil {
				return nil, inserted.failed(res, "eventstore: the insert returned rows out of order")
			}
			outcomes[i] = ErrGuardChanged
			continue
		}
		for k := range p.stored {
			if !have {
				return nil, inserted.failed(res, "eventstore: fewer rows returned than inserted")
			}
			p.stored[k].GlobalPosition, p.stored[k].TxID = inserted.position, inserted.txID
			have = next()
		}
	}
	if have {
		return nil, inserted.failed(res, "eventstore: more rows returned than inserted")
	}
	if inserted.err != nil {
		return nil, inserted.err
	}
	if err := res.Err(); err != nil {
		return nil, mapAppendError(err)
	}
	return outcomes, nil
}

// insertedRows reads the rows an insert returns, one at a time.
type insertedRows struct {
	position int64
	txID     uint64
	eventID  uuid.UUID
	err      error
}

// is reports whether the row read last is the event with the given id.
func (r *insertedRows) is(eventID string) bool {
	id, err := uuid.Parse(eventID)
	return err == nil && id == r.eventID
}

// scan reads the next row, reporting whether there was one.
func (r *insertedRows) scan(rows *sql.Rows, withID bool) bool {
	if r.err != nil || !rows.Next() {
		return false
	}
	var err error
	if withID {
		err = rows.Scan(&r.position, &r.txID, &r.eventID)
	} else {
		err = rows.Scan(&r.position, &r.txID)
	}
	if err != nil {
		r.err = fmt.Errorf("eventstore: scan position: %w", err)
		return false
	}
	return true
}

// failed is the error of an insert whose rows do not match the appends,
// or the error that stopped the reading first.
func (r *insertedRows) failed(rows *sql.Rows, msg string) error {
	if r.err != nil {
		return r.err
	}
	if err := rows.Err(); err != nil {
		return mapAppendError(err)
	}
	return errors.New(msg)
}

func mapAppendError(err error) error {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "23505" {
		switch pqErr.Constraint {
		case "events_stream_version_key", "events_event_id_key":
			return ErrConcurrency
		}
	}
	return fmt.Errorf("eventstore: append: %w", err)
}

func (s *Store) inTx(ctx context.Context, fn func(tx *sqlx.Tx) error) (err error) {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("eventstore: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return mapAppendError(err)
	}
	return nil
}

// prevHash returns the hash of the event at expectedVersion, which must exist.
// Its absence means the stream is not at that version.
func (s *Store) prevHash(ctx context.Context, streamID string, expectedVersion int) ([]byte, error) {
	if expectedVersion == NoStream {
		return nil, nil
	}
	if h, ok := s.heads.get(streamID, expectedVersion); ok {
		return h, nil
	}
	var h []byte
	err := s.queryRow(ctx,
		`SELECT hash FROM events WHERE stream_id = $1 AND stream_version = $2`,
		streamID, expectedVersion).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrConcurrency
	}
	if err != nil {
		return nil, fmt.Errorf("eventstore: read stream head: %w", err)
	}
	return h, nil
}

const eventColumns = `global_position, tx_id::text, event_id, stream_id, stream_type,
	stream_version, type, schema_version, data, metadata, recorded_at, prev_hash, hash`

func scanEvent(sc interface{ Scan(...any) error }) (Event, error) {
	var (
		e        Event
		data, md []byte
	)
	if err := sc.Scan(&e.GlobalPosition, &e.TxID, &e.EventID, &e.StreamID, &e.StreamType,
		&e.StreamVersion, &e.Type, &e.SchemaVersion, &data, &md, &e.RecordedAt, &e.PrevHash, &e.Hash); err != nil {
		return Event{}, fmt.Errorf("eventstore: scan event: %w", err)
	}
	e.Data = json.RawMessage(data)
	if len(md) > 0 {
		if err := json.Unmarshal(md, &e.Metadata); err != nil {
			return Event{}, fmt.Errorf("eventstore: event %d metadata: %w", e.GlobalPosition, err)
		}
	}
	e.RecordedAt = e.RecordedAt.UTC()
	return e, nil
}

func (s *Store) queryEvents(ctx context.Context, query string, args ...any) ([]Event, error) {
	rows, err := s.query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("eventstore: query: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("eventstore: query: %w", err)
	}
	return out, nil
}

// ReadStream returns the events of a stream with a version above afterVersion,
// in version order. A stream that does not exist has no events.
func (s *Store) ReadStream(ctx context.Context, streamID string, afterVersion int) ([]Event, error) {
	events, err := s.queryEvents(ctx, `SELECT `+eventColumns+` FROM events
		WHERE stream_id = $1 AND stream_version > $2 ORDER BY stream_version`, streamID, afterVersion)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", streamID, err)
	}
	if n := len(events); n > 0 {
		s.heads.put(streamID, events[n-1].StreamVersion, events[n-1].Hash)
	}
	return events, nil
}

// ReadAll returns up to limit events with a global position above
// afterPosition, in position order. It is meant for audits and exports of
// committed history; live consumers tail with ReadCommitted or a Subscriber.
func (s *Store) ReadAll(ctx context.Context, afterPosition int64, limit int) ([]Event, error) {
	return s.queryEvents(ctx, `SELECT `+eventColumns+` FROM events
		WHERE global_position > $1 ORDER BY global_position LIMIT $2`, afterPosition, limit)
}

// Cursor is a position in commit order: the transaction id and global position
// of the last event a tailing reader has seen.
type Cursor struct {
	TxID     uint64
	Position int64
}

// Cursor returns the event's place in commit order.
func (e Event) Cursor() Cursor { return Cursor{TxID: e.TxID, Position: e.GlobalPosition} }

// ReadCommitted returns up to limit events after cursor in commit order,
// (tx_id, global_position), stopping below the oldest transaction still in
// flight, so that an event whose transaction commits late is never skipped.
// Transactions of this process that write no events (Bystander) are not
// waited for. It is a plain read: it takes no transaction id.
func (s *Store) ReadCommitted(ctx context.Context, after Cursor, limit int) ([]Event, error) {
	return s.queryEvents(ctx, `WITH snapshot AS (SELECT pg_current_snapshot() AS s),
		horizon AS (
			SELECT coalesce(min(x), (SELECT pg_snapshot_xmax(s) FROM snapshot)) AS h
			FROM snapshot, pg_snapshot_xip(snapshot.s) AS x WHERE x <> ALL ($4::xid8[]))
		SELECT `+eventColumns+` FROM events
		WHERE (tx_id, global_position) > ($1::text::xid8, $2)
		  AND tx_id < (SELECT h FROM horizon)
		ORDER BY events.tx_id, events.global_position LIMIT $3`, // events.: the xid8, not the text output column
		strconv.FormatUint(after.TxID, 10), after.Position, limit, s.bystanders.list())
}

// Head returns the cursor of the last event that every reader can already see:
// tailing from it delivers exactly what commits afterwards.
func (s *Store) Head(ctx context.Context) (Cursor, error) {
	return s.lastCursor(ctx, "head", `WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot())`)
}

// Tip returns the cursor of the last event committed so far in commit
// order, whether or not an older transaction is still in flight: a reader
// that has applied it has applied every event committed before the call.
func (s *Store) Tip(ctx context.Context) (Cursor, error) {
	return s.lastCursor(ctx, "tip", "")
}

// lastCursor returns the cursor of the last event in commit order among
// those where selects (the zero cursor when there is none).
func (s *Store) lastCursor(ctx context.Context, what, where string) (Cursor, error) {
	var c Cursor
	err := s.queryRow(ctx, `SELECT tx_id::text, global_position FROM events `+where+`
		ORDER BY events.tx_id DESC, events.global_position DESC LIMIT 1`).Scan(&c.TxID, &c.Position)
	if errors.Is(err, sql.ErrNoRows) {
		return Cursor{}, nil
	}
	if err != nil {
		return Cursor{}, fmt.Errorf("eventstore: %s: %w", what, err)
	}
	return c, nil
}

// LastPosition returns the highest global position written so far (0 when the
// log is empty).
func (s *Store) LastPosition(ctx context.Context) (int64, error) {
	var p int64
	if err := s.db.QueryRowContext(ctx, `SELECT coalesce(max(global_position), 0) FROM events`).Scan(&p); err != nil {
		return 0, fmt.Errorf("eventstore: last position: %w", err)
	}
	return p, nil
}

// ClaimOwner returns the stream that holds a unique claim, or "" when nobody does.
func (s *Store) ClaimOwner(ctx context.Context, c Claim) (string, error) {
	var streamID string
	err := s.db.QueryRowContext(ctx, `SELECT stream_id FROM unique_claims WHERE scope = $1 AND value = $2`,
		c.Scope, c.Value).Scan(&streamID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("eventstore: claim owner: %w", err)
	}
	return streamID, nil
}

func claim(ctx context.Context, tx *sqlx.Tx, c Claim, streamID string) error {
	var owner string
	err := tx.QueryRowContext(ctx, `INSERT INTO unique_claims (scope, value, stream_id) VALUES ($1, $2, $3)
		ON CONFLICT (scope, value) DO UPDATE SET scope = excluded.scope
		RETURNING stream_id`, c.Scope, c.Value, streamID).Scan(&owner)
	if err != nil {
		return fmt.Errorf("eventstore: claim %s: %w", c.Scope, err)
	}
	if owner != streamID {
		return ErrClaimed
	}
	return nil
}

func isJSONObject(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{':
			return json.Valid(b)
		default:
			return false
		}
	}
	return false
}

func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// heads remembers the hash of the latest known version of recently used
// streams, so that an append usually needs no extra read for its prev_hash.
// Stored rows never change, so an entry is never wrong, only possibly old.
type heads struct {
	mu  sync.Mutex
	max int
	m   map[string]head
}

type head struct {
	version int
	hash    []byte
}

func newHeads(max int) *heads { return &heads{max: max, m: make(map[string]head)} }

func (h *heads) get(streamID string, version int) ([]byte, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.m[streamID]
	if !ok || e.version != version {
		return nil, false
	}
	return e.hash, true
}

func (h *heads) put(streamID string, version int, hash []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e, ok := h.m[streamID]; ok && e.version >= version {
		return
	}
	if len(h.m) >= h.max {
		for k := range h.m { // evict an arbitrary entry
			delete(h.m, k)
			break
		}
	}
	h.m[streamID] = head{version: version, hash: hash}
}

// StreamTail names a stream and the version after which to read it.
type StreamTail struct {
	StreamID     string
	AfterVersion int
}

// ReadStreams reads the tails of several streams in one query: for each,
// the events with a version above AfterVersion, in version order.
func (s *Store) ReadStreams(ctx context.Context, tails []StreamTail) (map[string][]Event, error) {
	ids := make([]string, len(tails))
	afters := make([]int64, len(tails))
	for i, t := range tails {
		ids[i], afters[i] = t.StreamID, int64(t.AfterVersion)
	}
	// One index range scan per tail (LATERAL): joined instead, the planner
	// expects a hundred events a tail and scans each through a bitmap,
	// several times slower for the few events a tail usually holds.
	events, err := s.queryEvents(ctx, `SELECT e.* FROM unnest($1::text[], $2::int[]) AS t(id, after)
		CROSS JOIN LATERAL (SELECT `+eventColumns+` FROM events
			WHERE stream_id = t.id AND stream_version > t.after ORDER BY stream_version) e
		ORDER BY e.stream_id, e.stream_version`, pq.Array(ids), pq.Array(afters))
	if err != nil {
		return nil, fmt.Errorf("read streams: %w", err)
	}
	out := make(map[string][]Event, len(tails))
	for _, e := range events {
		out[e.StreamID] = append(out[e.StreamID], e)
	}
	for id, evs := range out {
		last := evs[len(evs)-1]
		s.heads.put(id, last.StreamVersion, last.Hash)
	}
	return out, nil
}
