package redis_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/platform/cache"
	"github.com/engramhq/engram/projections"
	"github.com/engramhq/engram/projections/projectionstest"
	"github.com/engramhq/engram/projections/redis"
	"github.com/engramhq/engram/queries"
	"github.com/engramhq/engram/test/redistest"
)

// testConn is the Redis of the tests, which can pretend to be out.
type testConn struct {
	client   *goredis.Client
	down     atomic.Bool
	failures atomic.Int64
}

func (c *testConn) Client() *goredis.Client { return c.client }

func (c *testConn) Backend() string {
	if c.down.Load() {
		return cache.BackendMemory
	}
	return cache.BackendRedis
}

func (c *testConn) Failed(context.Context, error) bool {
	c.failures.Add(1)
	return true
}

// fixture is a log of its own with Redis read models, under a prefix of
// their own, and the queries over SQL only and over Redis.
type fixture struct {
	*projectionstest.Log
	conn   *testConn
	prefix string
	rm     *redis.ReadModels
	served map[string]*atomic.Int64
	sql    queries.Queries
	hot    queries.Queries
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{Log: projectionstest.New(t), conn: &testConn{client: redistest.Client(t, "")},
		prefix: redistest.Prefix(t), served: map[string]*atomic.Int64{"messages": {}, "workspaces": {}}}
	var err error
	f.rm, err = redis.New(f.conn, f.Store, slog.New(slog.DiscardHandler), redis.Options{
		Prefix: f.prefix, OnRead: func(model string, fromRedis bool) {
			if fromRedis {
				f.served[model].Add(1)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	waiter := projections.NewCheckpoints(f.DB.DB, time.Second)
	if f.sql, err = queries.New(f.DB, waiter); err != nil {
		t.Fatal(err)
	}
	if f.hot, err = queries.New(f.DB, waiter, queries.WithHotReads(f.rm)); err != nil {
		t.Fatal(err)
	}
	return f
}

// project brings the SQL read models the queries use and the Redis read
// models up to the head of the log.
func (f *fixture) project(t *testing.T) {
	t.Helper()
	for _, p := range projections.SQL()[:3] {
		f.ApplyLive(t, p)
	}
	f.applyRedis(t)
}

// applyRedis runs the Redis read models' consumer groups to the head of the
// log and waits until their writers have sent everything to Redis.
func (f *fixture) applyRedis(t *testing.T) {
	t.Helper()
	for _, p := range f.rm.Projectors() {
		f.ApplyLive(t, p)
	}
	if err := f.rm.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) rebuildRedis(t *testing.T) {
	t.Helper()
	for _, p := range f.rm.Projectors() {
		res, err := f.rm.Rebuild(t.Context(), p.Name(), nil)
		if err != nil {
			t.Fatalf("rebuild %s: %v", p.Name(), err)
		}
		if !res.Swapped {
			t.Fatalf("rebuild %s did not go live: %+v", p.Name(), res)
		}
	}
}

// compare asks every conversation's messages and every user's workspaces
// through SQL and through the hot read models: the answers must be equal.
// It returns how many of the hot reads Redis answered.
func (f *fixture) compare(t *testing.T, pages ...queries.PageRequest) int64 {
	t.Helper()
	ctx := t.Context()
	before := f.served["messages"].Load() + f.served["workspaces"].Load()
	if len(pages) == 0 {
		pages = []queries.PageRequest{{}}
	}
	admin := access.Actor{UserID: uuid.NewString(), Roles: []string{access.RoleAdmin}}
	for _, id := range f.Gen.Conversations() {
		for _, page := range pages {
			want, err := f.sql.ListMessages.Handle(ctx, admin, id, page, 0)
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.hot.ListMessages.Handle(ctx, admin, id, page, 0)
			if err != nil {
				t.Fatal(err)
			}
			projectionstest.SameJSON(t, "messages of "+id, got, want)
		}
	}
	for _, u := range f.Gen.Users() {
		actor := access.Actor{UserID: u, Roles: []string{"user"}}
		want, err := f.sql.ListWorkspaces.Handle(ctx, actor, queries.PageRequest{Limit: 3}, 0)
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.hot.ListWorkspaces.Handle(ctx, actor, queries.PageRequest{Limit: 3}, 0)
		if err != nil {
			t.Fatal(err)
		}
		projectionstest.SameJSON(t, "workspaces of "+u, got, want)
	}
	return f.served["messages"].Load() + f.served["workspaces"].Load() - before
}

// fromRedis compares the answers (see compare) and fails t unless Redis
// gave some of them.
func (f *fixture) fromRedis(t *testing.T, pages ...queries.PageRequest) {
	t.Helper()
	if f.compare(t, pages...) == 0 {
		t.Fatal("Redis answered no read")
	}
}

// fromSQL compares the answers (see compare) and fails t if Redis gave any
// of them: the models are why not.
func (f *fixture) fromSQL(t *testing.T, why string) {
	t.Helper()
	if n := f.compare(t); n != 0 {
		t.Fatalf("%d reads served by %s", n, why)
	}
}

// dump returns every key under the fixture's prefix with its content.
func (f *fixture) dump(t *testing.T) map[string]string {
	t.Helper()
	ctx := t.Context()
	c := f.conn.client
	out := map[string]string{}
	iter := c.Scan(ctx, 0, f.prefix+"rm:*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		var v any
		var err error
		switch c.Type(ctx, k).Val() {
		case "hash":
			v, err = c.HGetAll(ctx, k).Result()
		case "zset":
			v, err = c.ZRangeWithScores(ctx, k, 0, -1).Result()
		default:
			v, err = c.Get(ctx, k).Result()
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(v)
		out[k] = string(b)
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func (f *fixture) states(t *testing.T) []string {
	var out []string
	for _, s := range f.rm.Status(t.Context()) {
		out = append(out, s.State)
	}
	return out
}

func (f *fixture) resetCheckpoints(t *testing.T) {
	t.Helper()
	if _, err := f.DB.ExecContext(t.Context(), `UPDATE consumer_offsets SET offset_acked = 0, last_processed_transaction_id = '0'
		WHERE consumer_group LIKE 'redis_%'`); err != nil {
		t.Fatal(err)
	}
}

func TestRedisReadModels(t *testing.T) {
	f := newFixture(t)
	f.Generate(t, 300)

	t.Run("nothing is read before the first rebuild", func(t *testing.T) {
		f.project(t)
		if got := f.states(t); fmt.Sprint(got) != "[none none]" {
			t.Errorf("states = %v, want none", got)
		}
		f.fromSQL(t, "models never built")
	})

	t.Run("rebuilt, then fed by the consumer groups, Redis answers as SQL", func(t *testing.T) {
		f.rebuildRedis(t)
		f.fromRedis(t)
		f.Generate(t, 200)
		f.project(t)
		f.fromRedis(t, queries.PageRequest{}, queries.PageRequest{Limit: 7}, queries.PageRequest{Limit: 7, Cursor: "400"})
	})

	t.Run("Engram-Min-Position is honoured", func(t *testing.T) {
		ctx := t.Context()
		last, err := f.Store.LastPosition(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conv := f.Gen.Conversations()[0]
		if _, ok := f.rm.Workspaces(ctx, f.Gen.Users()[0], 5, last); !ok {
			t.Error("Redis did not answer at a position its group has handled")
		}
		// A position the group has not handled yet: SQL, which waits.
		f.Generate(t, 10)
		later, _ := f.Store.LastPosition(ctx)
		if _, ok := f.rm.Messages(ctx, conv, "nobody", later, 5, later); ok {
			t.Error("Redis answered at a position its group has not handled")
		}
		if _, ok := f.rm.Workspaces(ctx, f.Gen.Users()[0], 5, later+1000); ok {
			t.Error("Redis answered at a position that does not exist")
		}
		f.project(t)
		if _, ok := f.rm.Workspaces(ctx, f.Gen.Users()[0], 5, later); !ok {
			t.Error("Redis did not answer once its group handled the position")
		}
	})

	t.Run("redelivery and replay change nothing", func(t *testing.T) {
		before := f.dump(t)
		f.resetCheckpoints(t)
		f.applyRedis(t)
		after := f.dump(t)
		if len(after) != len(before) {
			t.Fatalf("%d keys after a replay, %d before", len(after), len(before))
		}
		for k, v := range before {
			if after[k] != v {
				t.Fatalf("key %s changed by a replay:\n%s\n%s", k, v, after[k])
			}
		}
	})

	t.Run("a missed event makes the model stale until rebuilt", func(t *testing.T) {
		f.conn.down.Store(true)
		f.Generate(t, 40)
		f.project(t)
		f.conn.down.Store(false)
		f.Generate(t, 40)
		f.project(t)
		if got := f.states(t); fmt.Sprint(got) != "[stale stale]" {
			t.Fatalf("states after a gap = %v, want stale", got)
		}
		f.fromSQL(t, "stale models")
		f.rebuildRedis(t)
		f.fromRedis(t)
	})

	t.Run("emptied Redis is rebuilt", func(t *testing.T) {
		if err := cache.NewRedis(f.conn.client, f.prefix).Clear(t.Context()); err != nil {
			t.Fatal(err)
		}
		f.Generate(t, 30)
		f.project(t)
		f.fromSQL(t, "an emptied Redis")
		f.rebuildRedis(t)
		f.fromRedis(t)
	})

	t.Run("a conversation longer than the window", func(t *testing.T) {
		id := f.longConversation(t, redis.MessageWindow+30)
		f.project(t)
		admin := access.Actor{UserID: uuid.NewString(), Roles: []string{access.RoleAdmin}}
		first, err := f.sql.ListMessages.Handle(t.Context(), admin, id, queries.PageRequest{Limit: 40}, 0)
		if err != nil {
			t.Fatal(err)
		}
		served := f.served["messages"].Load()
		got, _ := f.hot.ListMessages.Handle(t.Context(), admin, id, queries.PageRequest{Limit: 40}, 0)
		projectionstest.SameJSON(t, "first page", got, first)
		if f.served["messages"].Load() != served {
			t.Error("Redis answered the first page of a conversation longer than its window")
		}
		// Pages inside the window come from Redis.
		for _, cursor := range []string{first.NextCursor, fmt.Sprint(first.Items[35].Position)} {
			page := queries.PageRequest{Limit: 40, Cursor: cursor}
			want, _ := f.sql.ListMessages.Handle(t.Context(), admin, id, page, 0)
			got, _ := f.hot.ListMessages.Handle(t.Context(), admin, id, page, 0)
			projectionstest.SameJSON(t, "page after "+cursor, got, want)
		}
		if f.served["messages"].Load() != served+2 {
			t.Errorf("Redis answered %d of the 2 pages inside the window", f.served["messages"].Load()-served)
		}
	})

	t.Run("a rebuild while the consumer groups run", func(t *testing.T) {
		var wg sync.WaitGroup
		stop := make(chan struct{})
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				f.Generate(t, 20)
				f.applyRedis(t)
			}
		})
		f.rebuildRedis(t)
		close(stop)
		wg.Wait()
		f.project(t)
		if got := f.states(t); fmt.Sprint(got) != "[live live]" {
			t.Fatalf("states = %v", got)
		}
		f.fromRedis(t)
		// Only the live generation's keys remain.
		gens := map[string]bool{}
		for k := range f.dump(t) {
			model, rest, _ := strings.Cut(strings.TrimPrefix(k, f.prefix+"rm:"), ":")
			if gen, _, ok := strings.Cut(rest, ":"); ok && strings.HasPrefix(gen, "g") {
				gens[model+":"+gen] = true
			}
		}
		if len(gens) != 2 {
			t.Errorf("generations left in Redis: %v, want one per model", gens)
		}
	})

	t.Run("a model of another log is not read", func(t *testing.T) {
		meta := f.prefix + "rm:workspaces:meta"
		if err := f.conn.client.HSet(t.Context(), meta, "log", uuid.NewString()).Err(); err != nil {
			t.Fatal(err)
		}
		before := f.served["workspaces"].Load()
		f.compare(t)
		if f.served["workspaces"].Load() != before {
			t.Error("a model of another log was read")
		}
		f.rebuildRedis(t)
		f.compare(t)
		if f.served["workspaces"].Load() == before {
			t.Error("the rebuilt model was not read")
		}
	})
}

// longConversation appends a conversation with n messages to the first
// workspace of the generator and returns its id.
func (f *fixture) longConversation(t *testing.T, n int) string {
	t.Helper()
	ctx := t.Context()
	var ws, owner string
	if err := f.DB.QueryRowContext(ctx, `SELECT id, owner_id FROM workspaces LIMIT 1`).Scan(&ws, &owner); err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()
	stream := eventstore.Stream{ID: conversation.StreamType + "-" + id, Type: conversation.StreamType}
	created, _ := json.Marshal(conversation.Created{ConversationID: id, WorkspaceID: ws, CreatedBy: owner, Title: "long", Modality: "text", Metadata: json.RawMessage(`{}`)})
	events := []eventstore.NewEvent{{ID: uuid.NewString(), Type: conversation.EventCreated, Data: created}}
	for i := range n {
		m, _ := json.Marshal(conversation.MessagePosted{MessageID: uuid.NewString(), AuthorID: owner, Role: "user",
			Content: fmt.Sprintf("line %d", i), Metadata: json.RawMessage(`{"i":` + fmt.Sprint(i) + `}`)})
		events = append(events, eventstore.NewEvent{ID: uuid.NewString(), Type: conversation.EventMessagePosted, Data: m})
	}
	if _, err := f.Store.Append(ctx, stream, 0, events, eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	f.Settle(t)
	return id
}
