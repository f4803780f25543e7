package redis

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/domain/workspace"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/platform/cache"
	"github.com/engramhq/engram/projections"
)

// Names of the Redis projectors. They are stable identities (consumer
// groups), like the SQL projectors' names.
const (
	MessagesProjector   = "redis_messages"
	WorkspacesProjector = "redis_workspaces"
)

// MessageWindow is how many of a conversation's latest messages the Redis
// read model keeps.
const MessageWindow = 100

// What the Redis read models hold, for operators.
var (
	messagesDescription   = fmt.Sprintf("Redis: the latest %d messages of each conversation", MessageWindow)
	workspacesDescription = "Redis: each user's workspaces, and each workspace's members"
)

// Timeouts of the Redis read models' commands: an unavailable Redis must
// cost a request or a projector transaction little.
const (
	applyTimeout = 500 * time.Millisecond
	readTimeout  = 250 * time.Millisecond
	lockTTL      = 30 * time.Second
	rebuildPage  = 2000
)

// Conn is the Redis behind the cache, as the Redis read models use it
// (cache.Fallback).
type Conn interface {
	// Client returns the Redis client, or nil when no Redis is configured.
	Client() *goredis.Client
	// Backend is cache.BackendRedis while Redis is in use.
	Backend() string
	// Failed reports a failed command; it reports whether the error means
	// that Redis is unavailable.
	Failed(ctx context.Context, err error) bool
}

// Options configure the Redis read models.
type Options struct {
	// Prefix starts every key (the cache's prefix: a cache recovery
	// deletes the read models with everything else).
	Prefix string
	// ResyncInterval is how often a read model that is not live is looked
	// at, to rebuild it (default 2s).
	ResyncInterval time.Duration
	// OnRead, when set, is called after every read with the model's name
	// and whether Redis answered it (false: the query goes to SQL).
	OnRead func(model string, fromRedis bool)
}

// ReadModels are the Redis read models (see the package documentation).
// Their methods are safe for concurrent use.
type ReadModels struct {
	conn   Conn
	prefix string
	store  *eventstore.Store
	db     *sql.DB
	logger *slog.Logger
	every  time.Duration
	onRead func(model string, fromRedis bool)

	messages, workspaces *model
	logID                atomic.Pointer[string]
}

// New returns the Redis read models over conn, fed from store's log.
func New(conn Conn, store *eventstore.Store, logger *slog.Logger, o Options) (*ReadModels, error) {
	if conn == nil || conn.Client() == nil || store == nil || logger == nil {
		return nil, errors.New("redis: the read models need Redis, a store and a logger")
	}
	if o.Prefix == "" {
		return nil, errors.New("redis: the read models need a key prefix")
	}
	if o.ResyncInterval <= 0 {
		o.ResyncInterval = 2 * time.Second
	}
	rm := &ReadModels{conn: conn, prefix: o.Prefix, store: store, db: store.DB().DB, logger: logger,
		every: o.ResyncInterval, onRead: o.OnRead}
	rm.messages = &model{rm: rm, name: "messages", group: MessagesProjector, description: messagesDescription,
		streamType: conversation.StreamType, decode: conversation.Decode, plan: messagesPlan, wants: messagesWants,
		wake: make(chan struct{}, 1)}
	rm.workspaces = &model{rm: rm, name: "workspaces", group: WorkspacesProjector, description: workspacesDescription,
		streamType: workspace.StreamType, decode: workspace.Decode, plan: workspacesPlan, wants: workspacesWants,
		wake: make(chan struct{}, 1)}
	for _, m := range rm.models() {
		m.writer = newWriter(m)
	}
	return rm, nil
}

// Catalogue describes the Redis read models' projectors, for operators
// (engram projections list).
func Catalogue() []projections.Info {
	return []projections.Info{
		{Name: MessagesProjector, Kind: projections.KindRedis, Description: messagesDescription, Rebuildable: true},
		{Name: WorkspacesProjector, Kind: projections.KindRedis, Description: workspacesDescription, Rebuildable: true},
	}
}

// Projectors returns the projectors that feed the read models.
func (rm *ReadModels) Projectors() []projections.Projector {
	return []projections.Projector{projector{rm.messages}, projector{rm.workspaces}}
}

func (rm *ReadModels) models() []*model { return []*model{rm.messages, rm.workspaces} }

func (rm *ReadModels) byGroup(group string) (*model, bool) {
	for _, m := range rm.models() {
		if m.group == group {
			return m, true
		}
	}
	return nil, false
}

// up reports whether Redis is in use (not the memory fallback).
func (rm *ReadModels) up() bool { return rm.conn.Backend() == cache.BackendRedis }

func (rm *ReadModels) client() *goredis.Client { return rm.conn.Client() }

// failed reports a Redis error to the cache, which falls back to memory if
// Redis is unavailable.
func (rm *ReadModels) failed(ctx context.Context, what string, err error) {
	if rm.conn.Failed(ctx, err) {
		return // the cache logs the outage once
	}
	if ctx.Err() == nil {
		rm.logger.Warn("redis read model command failed", "op", what, "err", err)
	}
}

// log returns the id of the log's first event: it tells this log from
// another one, so that read models left in Redis by another database are
// never read. It is "" while the log is empty.
func (rm *ReadModels) log(ctx context.Context) (string, error) {
	if id := rm.logID.Load(); id != nil {
		return *id, nil
	}
	var id string
	err := rm.db.QueryRowContext(ctx, `SELECT event_id::text FROM events ORDER BY global_position LIMIT 1`).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("identify the log: %w", err)
	}
	rm.logID.Store(&id)
	return id, nil
}

// model is one Redis read model.
type model struct {
	rm          *ReadModels
	name        string // in key names
	group       string // the consumer group
	description string
	streamType  string // of the streams it keeps
	decode      func(eventType string, schemaVersion int, data []byte) (domain.Event, error)
	plan        func(e eventstore.Event, id string, ev domain.Event) (ops, error)
	wants       func(e eventstore.Event) bool
	wake        chan struct{}
	writer      *writer
}

func (m *model) key(suffix string) string { return m.rm.prefix + "rm:" + m.name + ":" + suffix }
func (m *model) meta() string             { return m.key("meta") }
func (m *model) lock() string             { return m.key("lock") }

// base starts the keys of a generation: base() + gen + ":".
func (m *model) base() string { return m.key("g") }

// opsOf returns what e does to the model: nothing unless e belongs to the
// model's streams.
func (m *model) opsOf(e eventstore.Event) (ops, error) {
	if e.StreamType != m.streamType {
		return nil, nil
	}
	ev, err := m.decode(e.Type, e.SchemaVersion, e.Data)
	if err != nil {
		return nil, err
	}
	// Stream ids are "<stream type>-<id of the aggregate>".
	return m.plan(e, e.StreamID[len(e.StreamType)+1:], ev)
}

// applyArgs are the arguments of the apply script (see lua/apply.lua) that
// applies o, the operations of e, in mode live (after prev, the event the
// projector handed over before e) or build (a rebuild's, with its token).
func (m *model) applyArgs(mode, token, log string, e eventstore.Event, prev eventstore.Cursor, o ops) []any {
	return append([]any{mode, token, log, strconv.FormatUint(e.TxID, 10), strconv.FormatInt(e.GlobalPosition, 10),
		strconv.FormatUint(prev.TxID, 10), strconv.FormatInt(prev.Position, 10), m.base(), MessageWindow}, o...)
}

// poke asks the model's resync loop to look at the model now.
func (m *model) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}
