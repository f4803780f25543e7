package projections

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/domain/workspace"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/platform/cache"
)

// Names of the Redis projectors. They are stable identities (consumer
// groups), like the SQL projectors' names.
const (
	RedisMessagesProjector   = "redis_messages"
	RedisWorkspacesProjector = "redis_workspaces"
)

// MessageWindow is how many of a conversation's latest messages the Redis
// read model keeps.
const MessageWindow = 100

// What the Redis read models hold, for operators.
var (
	redisMessagesDescription   = fmt.Sprintf("Redis: the latest %d messages of each conversation", MessageWindow)
	redisWorkspacesDescription = "Redis: each user's workspaces, and each workspace's members"
)

// Timeouts of the Redis read models' commands: an unavailable Redis must
// cost a request or a projector transaction little.
const (
	redisApplyTimeout = 500 * time.Millisecond
	redisReadTimeout  = 250 * time.Millisecond
	redisLockTTL      = 30 * time.Second
	redisRebuildPage  = 2000
)

// RedisConn is the Redis behind the cache, as the Redis read models use it
// (cache.Fallback).
type RedisConn interface {
	// Client returns the Redis client, or nil when no Redis is configured.
	Client() *redis.Client
	// Backend is cache.BackendRedis while Redis is in use.
	Backend() string
	// Failed reports a failed command; it reports whether the error means
	// that Redis is unavailable.
	Failed(ctx context.Context, err error) bool
}

// RedisOptions configure the Redis read models.
type RedisOptions struct {
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

// RedisReadModels keeps the hottest reads in Redis: a conversation's latest
// messages (the last MessageWindow of them) and each user's list of
// workspaces. Queries read them when they can answer exactly as the SQL read
// models would, and the SQL read models otherwise.
//
// Each read model is fed by its own consumer group (see Projectors). Each
// event that changes the model is applied, and the model's checkpoint
// moved, by one Lua script that skips any event at or before the
// checkpoint, so redelivery and replay change nothing; events that change
// nothing cost nothing. The checkpoint is a commit-order cursor
// (transaction id, position), like the consumer group's. The group keeps,
// in its own transaction, the cursor of the last event it sent to Redis
// (table redis_read_model_cursors) and passes it to the script, which
// declares the model stale when that cursor is past the model's own: an
// event the model missed (Redis unreachable, or emptied) is a gap, and a
// model with a gap is never read.
//
// A model that is not live (new, emptied when Redis came back, stale) is
// rebuilt from the log into a new generation of keys, with the same script,
// by whichever instance takes the model's lock; it goes live when the
// rebuild has reached the consumer group. Until then queries use SQL. A
// rebuild asked for while the model is live (engram projections rebuild)
// builds the new generation while the old one serves.
type RedisReadModels struct {
	conn   RedisConn
	prefix string
	store  *eventstore.Store
	db     *sql.DB
	logger *slog.Logger
	every  time.Duration
	onRead func(model string, fromRedis bool)

	messages, workspaces *redisModel
	logID                atomic.Pointer[string]
}

// NewRedisReadModels returns the Redis read models over conn, fed from
// store's log.
func NewRedisReadModels(conn RedisConn, store *eventstore.Store, logger *slog.Logger, o RedisOptions) (*RedisReadModels, error) {
	if conn == nil || conn.Client() == nil || store == nil || logger == nil {
		return nil, errors.New("projections: the Redis read models need Redis, a store and a logger")
	}
	if o.Prefix == "" {
		return nil, errors.New("projections: the Redis read models need a key prefix")
	}
	if o.ResyncInterval <= 0 {
		o.ResyncInterval = 2 * time.Second
	}
	rm := &RedisReadModels{conn: conn, prefix: o.Prefix, store: store, db: store.DB().DB, logger: logger,
		every: o.ResyncInterval, onRead: o.OnRead}
	rm.messages = &redisModel{rm: rm, name: "messages", group: RedisMessagesProjector,
		description: redisMessagesDescription, plan: messagesPlan, wants: messagesWants, wake: make(chan struct{}, 1)}
	rm.workspaces = &redisModel{rm: rm, name: "workspaces", group: RedisWorkspacesProjector,
		description: redisWorkspacesDescription, plan: workspacesPlan, wants: workspacesWants, wake: make(chan struct{}, 1)}
	for _, m := range rm.models() {
		m.writer = newRedisWriter(m)
	}
	return rm, nil
}

// Projectors returns the consumer groups that feed the read models.
func (rm *RedisReadModels) Projectors() []Projector {
	return []Projector{redisProjector{rm.messages}, redisProjector{rm.workspaces}}
}

func (rm *RedisReadModels) models() []*redisModel { return []*redisModel{rm.messages, rm.workspaces} }

func (rm *RedisReadModels) model(group string) (*redisModel, bool) {
	for _, m := range rm.models() {
		if m.group == group {
			return m, true
		}
	}
	return nil, false
}

// up reports whether Redis is in use (not the memory fallback).
func (rm *RedisReadModels) up() bool { return rm.conn.Backend() == cache.BackendRedis }

func (rm *RedisReadModels) client() *redis.Client { return rm.conn.Client() }

// failed reports a Redis error to the cache, which falls back to memory if
// Redis is unavailable.
func (rm *RedisReadModels) failed(ctx context.Context, what string, err error) {
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
func (rm *RedisReadModels) log(ctx context.Context) (string, error) {
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

// redisModel is one Redis read model.
type redisModel struct {
	rm          *RedisReadModels
	name        string // in key names
	group       string // the consumer group
	description string
	plan        func(e eventstore.Event) (redisPlan, error)
	wants       func(e eventstore.Event) bool
	wake        chan struct{}
	writer      *redisWriter
}

func (m *redisModel) key(suffix string) string { return m.rm.prefix + "rm:" + m.name + ":" + suffix }
func (m *redisModel) meta() string             { return m.key("meta") }
func (m *redisModel) lock() string             { return m.key("lock") }

// base starts the keys of a generation: base() + gen + ":".
func (m *redisModel) base() string { return m.key("g") }

func (m *redisModel) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// redisPlan is what an event does to a read model: the operations of the
// apply script, none when the event changes nothing.
//
// JSON values (a message's metadata, a workspace's config) are copied as
// the event's data holds them (see jsonMember), which is how the SQL read
// models' jsonb columns print them: answers from Redis equal the SQL read
// models' byte for byte without a round trip to PostgreSQL.
type redisPlan []any

// jsonMember returns the member name of the JSON object data as written
// there, or "{}" when it is missing or null. Events are read from a jsonb
// column, so data is as PostgreSQL prints jsonb (keys in jsonb's order);
// the domain's decoders re-serialise objects in their own canonical order,
// which is why the member is taken from data itself.
func jsonMember(data []byte, name string) (string, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		return "", err
	}
	if v := members[name]; len(v) > 0 && string(v) != "null" {
		return string(v), nil
	}
	return "{}", nil
}

// changes reports whether the event changes the read model.
func (p redisPlan) changes() bool { return len(p) > 0 }

// op encodes one operation of the apply script: its name, its number of
// arguments, its arguments.
func op(name string, args ...any) []any { return append([]any{name, len(args)}, args...) }

// MessageRow is a message as the Redis read model keeps it.
type MessageRow struct {
	ID             string          `json:"id"`
	ConversationID string          `json:"conversation_id"`
	Role           string          `json:"role"`
	AuthorID       string          `json:"author_id"`
	Content        string          `json:"content"`
	Metadata       json.RawMessage `json:"metadata"`
	CreatedAt      time.Time       `json:"created_at"`
	Position       int64           `json:"position"`
}

// messagesWants: conversations and their messages are all the model keeps.
func messagesWants(e eventstore.Event) bool {
	return e.StreamType == conversation.StreamType &&
		(e.Type == conversation.EventCreated || e.Type == conversation.EventMessagePosted)
}

func messagesPlan(e eventstore.Event) (redisPlan, error) {
	if e.StreamType != conversation.StreamType {
		return nil, nil
	}
	ev, err := conversation.Decode(e.Type, e.SchemaVersion, e.Data)
	if err != nil {
		return nil, err
	}
	id := idOf(e, conversation.StreamType)
	switch ev := ev.(type) {
	case conversation.Created:
		return op("conv", id, ev.WorkspaceID), nil
	case conversation.MessagePosted:
		metadata, err := jsonMember(e.Data, "metadata")
		if err != nil {
			return nil, err
		}
		doc, err := json.Marshal(MessageRow{ID: ev.MessageID, ConversationID: id, Role: ev.Role, AuthorID: ev.AuthorID,
			Content: ev.Content, Metadata: json.RawMessage(metadata), CreatedAt: e.RecordedAt, Position: e.GlobalPosition})
		if err != nil {
			return nil, err
		}
		return op("msg", id, e.GlobalPosition, doc), nil
	}
	return nil, nil
}

// WorkspaceRow is a workspace in a user's list, as the Redis read model
// keeps it.
type WorkspaceRow struct {
	ID          string
	OwnerID     string
	Name        string
	Description string
	Config      json.RawMessage
	Archived    bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Version     int
	// Role is the user's role in the workspace.
	Role string
}

func redisTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func workspacesWants(e eventstore.Event) bool { return e.StreamType == workspace.StreamType }

func workspacesPlan(e eventstore.Event) (redisPlan, error) {
	if e.StreamType != workspace.StreamType {
		return nil, nil
	}
	ev, err := workspace.Decode(e.Type, e.SchemaVersion, e.Data)
	if err != nil {
		return nil, err
	}
	id := idOf(e, workspace.StreamType)
	at := redisTime(e.RecordedAt)
	if c, ok := ev.(workspace.Created); ok {
		config, err := jsonMember(e.Data, "config")
		if err != nil {
			return nil, err
		}
		return op("wscreate", id, c.OwnerID, e.RecordedAt.UnixMicro(), "owner_id", c.OwnerID, "name", c.Name,
			"description", c.Description, "config", config, "archived", "0", "created_at", at, "updated_at", at,
			"version", e.StreamVersion), nil
	}
	// As the SQL projector: every later event moves the version on.
	set := []any{id, "version", e.StreamVersion, "updated_at", at}
	var more []any
	switch ev := ev.(type) {
	case workspace.Updated:
		if ev.Name != nil {
			set = append(set, "name", *ev.Name)
		}
		if ev.Description != nil {
			set = append(set, "description", *ev.Description)
		}
		if ev.Config != nil {
			config, err := jsonMember(e.Data, "config")
			if err != nil {
				return nil, err
			}
			set = append(set, "config", config)
		}
	case workspace.MemberAdded:
		more = op("wsmember", id, ev.UserID, ev.Role)
	case workspace.MemberRemoved:
		more = op("wsremove", id, ev.UserID)
	case workspace.Archived:
		set = append(set, "archived", "1")
	}
	return append(op("wsset", set...), more...), nil
}

// The Lua scripts. Cursors are (transaction id, position) pairs of decimal
// strings, compared without converting them to Lua's floating-point numbers.
const luaCursor = `
local function lt(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
local function before(tx1, p1, tx2, p2)
  if tx1 ~= tx2 then return lt(tx1, tx2) end
  return lt(p1, p2)
end
`

// applyScript applies one event to a read model and moves its checkpoint.
// KEYS[1] is the meta hash. ARGV: mode (live: from the consumer group;
// build: from a rebuild), build token, log id, tx, pos, the group's previous
// tx and pos, the base of the generations' keys, the message window, then
// the operations (name, number of arguments, arguments).
//
// The meta hash holds: log (the log's id), state (live, stale or none),
// gen, tx and pos (the live generation and its checkpoint), gens (the last
// generation number given out) and, while a rebuild runs, btoken, bgen, btx
// and bpos.
var applyScript = redis.NewScript(luaCursor + `
local meta = KEYS[1]
local tx, pos = ARGV[4], ARGV[5]
local gen
if ARGV[1] == 'live' then
  local m = redis.call('HMGET', meta, 'state', 'gen', 'tx', 'pos', 'log')
  if m[5] and m[5] ~= ARGV[3] then return 'foreign' end
  local ctx, cpos = m[3] or '0', m[4] or '0'
  if m[1] ~= 'live' then
    -- No model to apply to: remember how far the group went, for the
    -- rebuild to know when it has caught up.
    if before(ctx, cpos, tx, pos) then redis.call('HSET', meta, 'tx', tx, 'pos', pos) end
    if not m[1] then redis.call('HSET', meta, 'state', 'none', 'log', ARGV[3]) end
    return 'skipped'
  end
  if not before(ctx, cpos, tx, pos) then return 'duplicate' end
  if before(ctx, cpos, ARGV[6], ARGV[7]) then
    redis.call('HSET', meta, 'state', 'stale', 'tx', tx, 'pos', pos)
    return 'gap'
  end
  gen = m[2]
  redis.call('HSET', meta, 'tx', tx, 'pos', pos)
else
  local m = redis.call('HMGET', meta, 'btoken', 'bgen', 'btx', 'bpos')
  if m[1] ~= ARGV[2] then return 'aborted' end
  if not before(m[3], m[4], tx, pos) then return 'duplicate' end
  gen = m[2]
  redis.call('HSET', meta, 'btx', tx, 'bpos', pos)
end
local base = ARGV[8] .. gen .. ':'
local window = tonumber(ARGV[9])
local i = 10
while i <= #ARGV do
  local name, n = ARGV[i], tonumber(ARGV[i + 1])
  local a = i + 2
  if name == 'conv' then
    redis.call('HSETNX', base .. 'c:' .. ARGV[a], 'ws', ARGV[a + 1])
  elseif name == 'msg' then
    local c = base .. 'c:' .. ARGV[a]
    if redis.call('EXISTS', c) == 1 then
      local trimmed = tonumber(redis.call('HGET', c, 't') or '0')
      local p = tonumber(ARGV[a + 1])
      if p > trimmed then
        local ms = c .. ':m'
        redis.call('ZADD', ms, ARGV[a + 1], ARGV[a + 2])
        local over = redis.call('ZCARD', ms) - window
        if over > 0 then
          local popped = redis.call('ZPOPMIN', ms, over)
          redis.call('HSET', c, 't', popped[#popped])
        end
      end
    end
  elseif name == 'wscreate' then
    local w = base .. 'w:' .. ARGV[a]
    if redis.call('EXISTS', w) == 0 then
      local owner, score = ARGV[a + 1], ARGV[a + 2]
      local fields = {'score', score}
      for j = a + 3, a + n - 1 do fields[#fields + 1] = ARGV[j] end
      redis.call('HSET', w, unpack(fields))
      redis.call('HSET', w .. ':members', owner, 'owner')
      redis.call('ZADD', base .. 'u:' .. owner .. ':w', score, ARGV[a])
    end
  elseif name == 'wsset' then
    local w = base .. 'w:' .. ARGV[a]
    if redis.call('EXISTS', w) == 1 then
      local fields = {}
      for j = a + 1, a + n - 1 do fields[#fields + 1] = ARGV[j] end
      redis.call('HSET', w, unpack(fields))
    end
  elseif name == 'wsmember' then
    local w = base .. 'w:' .. ARGV[a]
    if redis.call('EXISTS', w) == 1 then
      redis.call('HSET', w .. ':members', ARGV[a + 1], ARGV[a + 2])
      redis.call('ZADD', base .. 'u:' .. ARGV[a + 1] .. ':w', redis.call('HGET', w, 'score'), ARGV[a])
    end
  elseif name == 'wsremove' then
    local w = base .. 'w:' .. ARGV[a]
    if redis.call('EXISTS', w) == 1 then
      redis.call('HDEL', w .. ':members', ARGV[a + 1])
      redis.call('ZREM', base .. 'u:' .. ARGV[a + 1] .. ':w', ARGV[a])
    end
  end
  i = a + n
end
return 'applied'
`)

// beginScript starts a rebuild: a new generation, owned by a token.
// KEYS[1] is the meta hash; ARGV: token, log id. A meta hash of another log
// is dropped (its keys are deleted by the rebuild).
var beginScript = redis.NewScript(`
local meta = KEYS[1]
local log = redis.call('HGET', meta, 'log')
if log and log ~= ARGV[2] then
  local gens = redis.call('HGET', meta, 'gens') or '0'
  redis.call('DEL', meta)
  redis.call('HSET', meta, 'gens', gens)
end
local g = redis.call('HINCRBY', meta, 'gens', 1)
redis.call('HSET', meta, 'btoken', ARGV[1], 'bgen', g, 'btx', '0', 'bpos', '0', 'log', ARGV[2])
if not redis.call('HGET', meta, 'state') then redis.call('HSET', meta, 'state', 'none') end
return {g, redis.call('HGET', meta, 'gen') or ''}
`)

// finishScript makes a rebuilt generation live once it has reached the
// consumer group's cursor (or, with force, in any case). KEYS[1] is the
// meta hash; ARGV: token, force ("1" or "0"). It returns {"live", the
// replaced generation}, {"behind"} or {"aborted"}.
var finishScript = redis.NewScript(luaCursor + `
local meta = KEYS[1]
local m = redis.call('HMGET', meta, 'btoken', 'bgen', 'btx', 'bpos', 'tx', 'pos', 'gen')
if m[1] ~= ARGV[1] then return {'aborted'} end
if before(m[3], m[4], m[5] or '0', m[6] or '0') and ARGV[2] ~= '1' then return {'behind'} end
redis.call('HSET', meta, 'state', 'live', 'gen', m[2], 'tx', m[3], 'pos', m[4])
redis.call('HDEL', meta, 'btoken', 'bgen', 'btx', 'bpos')
return {'live', m[7] or ''}
`)

// refreshScript extends a lock its owner holds; releaseScript drops it.
var (
	refreshScript = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`)
	releaseScript = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)
)

// readMessagesScript reads a page of a conversation's messages, with the
// reader's role from the workspaces model. KEYS: the messages' and the
// workspaces' meta hashes. ARGV: log id, the cursors each model must have
// reached (tx and pos of the messages', then of the workspaces'; "" when
// none), the messages' and workspaces' bases, conversation id, user id,
// after (position), count.
var readMessagesScript = redis.NewScript(luaCursor + `
local mm = redis.call('HMGET', KEYS[1], 'state', 'gen', 'tx', 'pos', 'log')
if mm[1] ~= 'live' or mm[5] ~= ARGV[1] then return {'unavailable'} end
if ARGV[2] ~= '' and before(mm[3], mm[4], ARGV[2], ARGV[3]) then return {'behind'} end
local mw = redis.call('HMGET', KEYS[2], 'state', 'gen', 'tx', 'pos', 'log')
if mw[1] ~= 'live' or mw[5] ~= ARGV[1] then return {'unavailable'} end
if ARGV[4] ~= '' and before(mw[3], mw[4], ARGV[4], ARGV[5]) then return {'behind'} end
local c = ARGV[6] .. mm[2] .. ':c:' .. ARGV[8]
local h = redis.call('HMGET', c, 'ws', 't')
if not h[1] then return {'missing'} end
if tonumber(ARGV[10]) < tonumber(h[2] or '0') then return {'window'} end
local role = redis.call('HGET', ARGV[7] .. mw[2] .. ':w:' .. h[1] .. ':members', ARGV[9]) or ''
local items = redis.call('ZRANGEBYSCORE', c .. ':m', '(' .. ARGV[10], '+inf', 'LIMIT', 0, tonumber(ARGV[11]))
local out = {'ok', h[1], role}
for _, it in ipairs(items) do out[#out + 1] = it end
return out
`)

// readWorkspacesScript reads the first page of a user's workspaces, newest
// first. KEYS[1] is the meta hash. ARGV: log id, required tx and pos,
// base, user id, count.
var readWorkspacesScript = redis.NewScript(luaCursor + `
local mw = redis.call('HMGET', KEYS[1], 'state', 'gen', 'tx', 'pos', 'log')
if mw[1] ~= 'live' or mw[5] ~= ARGV[1] then return {'unavailable'} end
if ARGV[2] ~= '' and before(mw[3], mw[4], ARGV[2], ARGV[3]) then return {'behind'} end
local b = ARGV[4] .. mw[2] .. ':'
local ids = redis.call('ZREVRANGE', b .. 'u:' .. ARGV[5] .. ':w', 0, tonumber(ARGV[6]) - 1)
local out = {'ok'}
for _, id in ipairs(ids) do
  local w = b .. 'w:' .. id
  local f = redis.call('HMGET', w, 'owner_id', 'name', 'description', 'config', 'archived', 'created_at', 'updated_at', 'version')
  out[#out + 1] = id
  for k = 1, 8 do out[#out + 1] = f[k] or '' end
  out[#out + 1] = redis.call('HGET', w .. ':members', ARGV[5]) or ''
end
return out
`)

// redisProjector is the projector of one Redis read model.
type redisProjector struct{ m *redisModel }

var (
	_ BatchProjector = redisProjector{}
	_ Selective      = redisProjector{}
	_ Describer      = redisProjector{}
)

// Name returns the projector's name (its checkpoint's).
func (p redisProjector) Name() string { return p.m.group }

// Description says what the read model holds.
func (p redisProjector) Description() string { return p.m.description }

// Wants reports whether e may change the read model: its consumer group
// acknowledges the other events without a round trip.
func (p redisProjector) Wants(e eventstore.Event) bool { return p.m.wants(e) }

// Apply hands e to the model's writer, if e changes the model. It first
// records e, in the batch's transaction, as the last event the projector
// sent to Redis, which gives the apply script the previous one's cursor
// (for gap detection). Redis itself is never called here: the writer sends
// the script after, and outside, the transaction (see redisWriter). A Redis
// failure never fails the consumer: the model misses the event, and the
// next event finds the gap. Only an event the projector cannot decode is an
// error (and, as for the SQL projectors, parked).
func (p redisProjector) Apply(ctx context.Context, tx Execer, e eventstore.Event) error {
	return p.ApplyBatch(ctx, tx, []eventstore.Event{e})
}

// ApplyBatch is Apply for a batch: the cursor of the last event sent to
// Redis is read and moved once, and each event's predecessor is the event
// before it in the batch.
func (p redisProjector) ApplyBatch(ctx context.Context, tx Execer, events []eventstore.Event) error {
	m := p.m
	type planned struct {
		e   eventstore.Event
		ops redisPlan
	}
	var writes []planned
	for _, e := range events {
		if !m.wants(e) {
			continue
		}
		ops, err := m.plan(e)
		if err != nil {
			return fmt.Errorf("event %d (%s): %w", e.GlobalPosition, e.Type, err)
		}
		if ops.changes() {
			writes = append(writes, planned{e, ops})
		}
	}
	if len(writes) == 0 {
		return nil
	}
	prev, err := advanceCursor(ctx, tx, m.group, writes[len(writes)-1].e)
	if err != nil {
		return err
	}
	if !m.rm.up() {
		return nil // Redis is out: the model will find the gap when it is back.
	}
	log, err := m.rm.log(ctx)
	if err != nil {
		return err
	}
	for _, w := range writes {
		args := append([]any{"live", "", log, strconv.FormatUint(w.e.TxID, 10), strconv.FormatInt(w.e.GlobalPosition, 10),
			strconv.FormatUint(prev.TxID, 10), strconv.FormatInt(prev.Position, 10), m.base(), MessageWindow}, w.ops...)
		m.writer.add(redisWrite{args: args, position: w.e.GlobalPosition})
		prev = w.e.Cursor()
	}
	return nil
}

// advanceCursor records e as the last event the group sent to Redis, in
// the subscriber's transaction, and returns the one recorded before.
func advanceCursor(ctx context.Context, tx Execer, group string, e eventstore.Event) (eventstore.Cursor, error) {
	var prevTx string
	var prev eventstore.Cursor
	err := tx.QueryRowContext(ctx, `WITH old AS (
			SELECT tx_id, global_position FROM redis_read_model_cursors WHERE consumer_group = $1 FOR UPDATE
		), saved AS (
			INSERT INTO redis_read_model_cursors (consumer_group, tx_id, global_position) VALUES ($1, $3::text::xid8, $2)
			ON CONFLICT (consumer_group) DO UPDATE SET tx_id = excluded.tx_id, global_position = excluded.global_position
		)
		SELECT coalesce((SELECT tx_id::text FROM old), '0'), coalesce((SELECT global_position FROM old), 0)`,
		group, e.GlobalPosition, strconv.FormatUint(e.TxID, 10)).Scan(&prevTx, &prev.Position)
	if err != nil {
		return eventstore.Cursor{}, fmt.Errorf("redis cursor of %s: %w", group, err)
	}
	if prev.TxID, err = strconv.ParseUint(prevTx, 10, 64); err != nil {
		return eventstore.Cursor{}, fmt.Errorf("redis cursor of %s: %w", group, err)
	}
	return prev, nil
}

// Run rebuilds, until ctx ends, every read model that is not live: when a
// projector finds it so, and every resync interval. It runs on every
// instance; the model's lock in Redis lets one rebuild at a time.
func (rm *RedisReadModels) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, m := range rm.models() {
		wg.Go(func() { rm.resync(ctx, m) })
	}
	wg.Wait()
}

func (rm *RedisReadModels) resync(ctx context.Context, m *redisModel) {
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
		if err != nil || st.State == RedisLive || st.Building {
			continue
		}
		res, err := rm.rebuild(ctx, m, nil)
		switch {
		case err == nil:
			warned = false
			rm.logger.Info("redis read model rebuilt from the log", "model", m.group, "events", res.Events,
				"elapsed", res.Elapsed.Round(time.Millisecond).String())
		case errors.Is(err, ErrRebuildRunning), ctx.Err() != nil:
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
// then. It returns ErrRebuildRunning when another rebuild holds the model.
func (rm *RedisReadModels) Rebuild(ctx context.Context, group string, progress func(RebuildProgress)) (RebuildResult, error) {
	m, ok := rm.model(group)
	if !ok {
		return RebuildResult{}, fmt.Errorf("no Redis read model is fed by %q", group)
	}
	return rm.rebuild(ctx, m, progress)
}

func (rm *RedisReadModels) rebuild(ctx context.Context, m *redisModel, progress func(RebuildProgress)) (RebuildResult, error) {
	start := time.Now()
	c := rm.client()
	token := uuid.NewString()
	ok, err := c.SetNX(ctx, m.lock(), token, redisLockTTL).Result()
	if err != nil {
		rm.failed(ctx, "lock "+m.name, err)
		return RebuildResult{}, fmt.Errorf("rebuild %s: lock: %w", m.group, err)
	}
	if !ok {
		return RebuildResult{}, fmt.Errorf("rebuild %s: %w", m.group, ErrRebuildRunning)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = releaseScript.Run(ctx, c, []string{m.lock()}, token).Err()
	}()

	log, err := rm.log(ctx)
	if err != nil {
		return RebuildResult{}, err
	}
	begun, err := beginScript.Run(ctx, c, []string{m.meta()}, token, log).Slice()
	if err != nil {
		return RebuildResult{}, fmt.Errorf("rebuild %s: begin: %w", m.group, err)
	}
	gen := fmt.Sprint(begun[0])
	live := fmt.Sprint(begun[1])
	// Keys of abandoned generations (and any of the new one's) go first.
	if err := rm.deleteGenerations(ctx, m, func(g string) bool { return g != live }); err != nil {
		return RebuildResult{}, err
	}

	var total int64
	if err := rm.db.QueryRowContext(ctx, `SELECT count(*) FROM events`).Scan(&total); err != nil {
		return RebuildResult{}, fmt.Errorf("rebuild %s: count events: %w", m.group, err)
	}
	res := RebuildResult{Projector: m.group, Schema: "redis"}
	var atHeadSince time.Time
	for {
		page, err := rm.store.ReadCommitted(ctx, res.Cursor, redisRebuildPage)
		if err != nil {
			return RebuildResult{}, fmt.Errorf("rebuild %s: read the log: %w", m.group, err)
		}
		if len(page) > 0 {
			atHeadSince = time.Time{}
			if err := rm.applyPage(ctx, m, token, log, page); err != nil {
				return RebuildResult{}, fmt.Errorf("rebuild %s: %w", m.group, err)
			}
			res.Events += int64(len(page))
			res.Cursor = page[len(page)-1].Cursor()
			if err := refreshScript.Run(ctx, c, []string{m.lock()}, token, redisLockTTL.Milliseconds()).Err(); err != nil {
				return RebuildResult{}, fmt.Errorf("rebuild %s: keep the lock: %w", m.group, err)
			}
			if progress != nil {
				total = max(total, res.Events)
				progress(RebuildProgress{Read: res.Events, Total: total})
			}
			if len(page) == redisRebuildPage {
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
			return RebuildResult{}, fmt.Errorf("rebuild %s: finish: %w", m.group, err)
		}
		switch fin[0] {
		case "aborted":
			return RebuildResult{}, fmt.Errorf("rebuild %s: %w", m.group, errRebuildAborted)
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
			return RebuildResult{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// applyPage applies a page of events to the generation being built, in one
// pipeline of scripts.
func (rm *RedisReadModels) applyPage(ctx context.Context, m *redisModel, token, log string, page []eventstore.Event) error {
	plans := make([]redisPlan, len(page))
	for i, e := range page {
		p, err := m.plan(e)
		if err != nil {
			// The consumer group parks such an event; the rebuild skips it
			// but moves past it.
			rm.logger.Warn("redis read model rebuild skips an event it cannot decode", "model", m.group,
				"position", e.GlobalPosition, "type", e.Type, "err", err)
			p = nil
		}
		plans[i] = p
	}
	c := rm.client()
	run := func() ([]*redis.Cmd, error) {
		pipe := c.Pipeline()
		cmds := make([]*redis.Cmd, 0, len(page))
		for i, e := range page {
			if !plans[i].changes() {
				continue
			}
			args := append([]any{"build", token, log, strconv.FormatUint(e.TxID, 10), strconv.FormatInt(e.GlobalPosition, 10),
				"0", "0", m.base(), MessageWindow}, plans[i]...)
			cmds = append(cmds, applyScript.EvalSha(ctx, pipe, []string{m.meta()}, args...))
		}
		if len(cmds) == 0 {
			return nil, nil
		}
		_, err := pipe.Exec(ctx)
		return cmds, err
	}
	cmds, err := run()
	if isNoScript(err) {
		if err := applyScript.Load(ctx, c).Err(); err != nil {
			return err
		}
		cmds, err = run() // the script's cursor check makes the retry harmless
	}
	if err != nil {
		return err
	}
	for _, cmd := range cmds {
		if s, _ := cmd.Text(); s == "aborted" {
			return errRebuildAborted
		}
	}
	return nil
}

// deleteGenerations deletes the keys of every generation for which drop
// says so.
func (rm *RedisReadModels) deleteGenerations(ctx context.Context, m *redisModel, drop func(gen string) bool) error {
	c := rm.client()
	base := m.base()
	iter := c.Scan(ctx, 0, cache.EscapeGlob(base)+"*", 1000).Iterator()
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := c.Unlink(ctx, batch...).Err()
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		key := iter.Val()
		gen, _, ok := strings.Cut(strings.TrimPrefix(key, base), ":")
		if !ok || !drop(gen) {
			continue
		}
		batch = append(batch, key)
		if len(batch) == 1000 {
			if err := flush(); err != nil {
				return fmt.Errorf("delete old keys of %s: %w", m.group, err)
			}
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("scan the keys of %s: %w", m.group, err)
	}
	if err := flush(); err != nil {
		return fmt.Errorf("delete old keys of %s: %w", m.group, err)
	}
	return nil
}

// States of a Redis read model.
const (
	// RedisLive: queries may read it.
	RedisLive = "live"
	// RedisStale: it missed events; it is rebuilt before it is read again.
	RedisStale = "stale"
	// RedisNone: nothing is built yet (or Redis was emptied).
	RedisNone = "none"
	// RedisUnavailable: Redis cannot be reached (the cache is on memory).
	RedisUnavailable = "unavailable"
)

// RedisStatus is the state of one Redis read model.
type RedisStatus struct {
	// Name is the consumer group feeding the model.
	Name string `json:"name"`
	// State is RedisLive, RedisStale, RedisNone or RedisUnavailable.
	State string `json:"state"`
	// Position is the position of the last event that changed the live
	// model.
	Position int64 `json:"position"`
	// Building reports a rebuild in progress, at BuildPosition.
	Building      bool  `json:"building"`
	BuildPosition int64 `json:"build_position,omitempty"`
}

// Status reports the state of every Redis read model.
func (rm *RedisReadModels) Status(ctx context.Context) []RedisStatus {
	out := make([]RedisStatus, 0, 2)
	for _, m := range rm.models() {
		st, err := rm.status(ctx, m)
		if err != nil {
			st = RedisStatus{Name: m.group, State: RedisUnavailable}
		}
		out = append(out, st)
	}
	return out
}

func (rm *RedisReadModels) status(ctx context.Context, m *redisModel) (RedisStatus, error) {
	st := RedisStatus{Name: m.group, State: RedisUnavailable}
	if !rm.up() {
		return st, nil
	}
	ctx, cancel := context.WithTimeout(ctx, redisReadTimeout)
	defer cancel()
	v, err := rm.client().HMGet(ctx, m.meta(), "state", "pos", "btoken", "bpos", "log").Result()
	if err != nil {
		rm.failed(ctx, "status "+m.name, err)
		return st, err
	}
	str := func(i int) string { s, _ := v[i].(string); return s }
	st.State = str(0)
	if st.State == "" {
		st.State = RedisNone
	}
	if log, _ := rm.log(ctx); st.State == RedisLive && str(4) != log {
		st.State = RedisStale // another log's
	}
	st.Position, _ = strconv.ParseInt(str(1), 10, 64)
	if str(2) != "" {
		if held, err := rm.client().Exists(ctx, m.lock()).Result(); err == nil && held == 1 {
			st.Building = true
			st.BuildPosition, _ = strconv.ParseInt(str(3), 10, 64)
		}
	}
	return st, nil
}

// HotMessages is a page of a conversation's messages read from Redis.
type HotMessages struct {
	// WorkspaceID is the conversation's workspace.
	WorkspaceID string
	// Role is the reader's role in it ("" for none).
	Role string
	// Items are the messages after the requested position, oldest first:
	// up to the count asked for.
	Items []MessageRow
}

// Messages reads up to count of a conversation's messages after position
// after, with the reader's role in its workspace. It reports false when
// Redis cannot answer as SQL would: Redis out, the model not live or behind
// minPosition, the conversation unknown to it, or messages before the
// window asked for.
func (rm *RedisReadModels) Messages(ctx context.Context, conversationID, userID string, after int64, count int, minPosition int64) (HotMessages, bool) {
	var out HotMessages
	ok := rm.read(ctx, rm.messages, minPosition, func(ctx context.Context, log, rtx, rpos string) ([]any, error) {
		// The reader's membership comes from the workspaces model, which
		// must have reached minPosition too.
		wtx, wpos := "", ""
		if minPosition > 0 {
			var ok bool
			if wtx, wpos, ok = rm.required(ctx, rm.workspaces, minPosition); !ok {
				return []any{"behind"}, nil
			}
		}
		return readMessagesScript.Run(ctx, rm.client(), []string{rm.messages.meta(), rm.workspaces.meta()}, log, rtx, rpos, wtx, wpos,
			rm.messages.base(), rm.workspaces.base(), conversationID, userID, after, count).Slice()
	}, func(res []any) error {
		out.WorkspaceID, out.Role = fmt.Sprint(res[1]), fmt.Sprint(res[2])
		out.Items = make([]MessageRow, 0, len(res)-3)
		for _, raw := range res[3:] {
			var m MessageRow
			if err := json.Unmarshal([]byte(fmt.Sprint(raw)), &m); err != nil {
				return fmt.Errorf("decode a message: %w", err)
			}
			out.Items = append(out.Items, m)
		}
		return nil
	})
	return out, ok
}

// Workspaces reads the first count workspaces of a user, newest first
// (created_at, then id, descending), with the user's role in each. It
// reports false when Redis cannot answer as SQL would.
func (rm *RedisReadModels) Workspaces(ctx context.Context, userID string, count int, minPosition int64) ([]WorkspaceRow, bool) {
	var out []WorkspaceRow
	ok := rm.read(ctx, rm.workspaces, minPosition, func(ctx context.Context, log, rtx, rpos string) ([]any, error) {
		return readWorkspacesScript.Run(ctx, rm.client(), []string{rm.workspaces.meta()}, log, rtx, rpos,
			rm.workspaces.base(), userID, count).Slice()
	}, func(res []any) error {
		const per = 10 // id, the fields, role
		rows := res[1:]
		if len(rows)%per != 0 {
			return fmt.Errorf("%d values for rows of %d", len(rows), per)
		}
		out = make([]WorkspaceRow, 0, len(rows)/per)
		for i := 0; i < len(rows); i += per {
			f := func(k int) string { return fmt.Sprint(rows[i+k]) }
			w := WorkspaceRow{ID: f(0), OwnerID: f(1), Name: f(2), Description: f(3), Config: json.RawMessage(f(4)),
				Archived: f(5) == "1", Role: f(9)}
			var err error
			if w.CreatedAt, err = time.Parse(time.RFC3339Nano, f(6)); err != nil {
				return fmt.Errorf("workspace %s: created_at: %w", w.ID, err)
			}
			if w.UpdatedAt, err = time.Parse(time.RFC3339Nano, f(7)); err != nil {
				return fmt.Errorf("workspace %s: updated_at: %w", w.ID, err)
			}
			if w.Version, err = strconv.Atoi(f(8)); err != nil {
				return fmt.Errorf("workspace %s: version: %w", w.ID, err)
			}
			out = append(out, w)
		}
		return nil
	})
	return out, ok
}

// required returns the cursor the model must have reached to have applied
// everything up to position: once the consumer group has handled that
// position, the last event it sent to Redis. It reports false when the
// group has not handled it yet (or the position is unknown: the SQL path
// reports that).
func (rm *RedisReadModels) required(ctx context.Context, m *redisModel, position int64) (string, string, bool) {
	var covered bool
	var tx string
	var pos int64
	err := rm.db.QueryRowContext(ctx, `SELECT (o.last_processed_transaction_id, o.offset_acked) >= (e.tx_id, e.global_position),
			coalesce(r.tx_id::text, '0'), coalesce(r.global_position, 0)
		FROM events e
		JOIN consumer_offsets o ON o.consumer_group = $2
		LEFT JOIN redis_read_model_cursors r ON r.consumer_group = $2
		WHERE e.global_position = $1`, position, m.group).Scan(&covered, &tx, &pos)
	if err != nil || !covered {
		return "", "", false
	}
	return tx, strconv.FormatInt(pos, 10), true
}

// read runs one read script and decodes its answer; it reports whether
// Redis answered.
func (rm *RedisReadModels) read(ctx context.Context, m *redisModel, minPosition int64,
	run func(ctx context.Context, log, rtx, rpos string) ([]any, error), decode func([]any) error) (served bool) {
	defer func() {
		if rm.onRead != nil {
			rm.onRead(m.name, served)
		}
	}()
	if !rm.up() {
		return false
	}
	log, err := rm.log(ctx)
	if err != nil || log == "" {
		return false
	}
	rtx, rpos := "", ""
	if minPosition > 0 {
		var ok bool
		if rtx, rpos, ok = rm.required(ctx, m, minPosition); !ok {
			return false
		}
	}
	rctx, cancel := context.WithTimeout(ctx, redisReadTimeout)
	defer cancel()
	res, err := run(rctx, log, rtx, rpos)
	if err != nil {
		// A slow answer sends this read to SQL; only a failure says that
		// Redis is gone (a consumer group finds a Redis that hangs).
		if !errors.Is(err, context.DeadlineExceeded) {
			rm.failed(ctx, "read "+m.name, err)
		}
		return false
	}
	if len(res) == 0 || res[0] != "ok" {
		return false
	}
	if err := decode(res); err != nil {
		rm.logger.Error("redis read model answered something undecodable; using SQL", "model", m.group, "err", err)
		return false
	}
	return true
}
