package test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	goredis "github.com/redis/go-redis/v9"

	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/projections"
	"github.com/engramhq/engram/projections/projectionstest"
	"github.com/engramhq/engram/projections/redis"
	"github.com/engramhq/engram/queries"
	"github.com/engramhq/engram/test/enginetest"
	"github.com/engramhq/engram/test/eventgen"
	"github.com/engramhq/engram/test/redistest"
)

// sqlReadModels are the SQL projectors whose read models the tests compare,
// with their tables.
var sqlReadModels = map[string][]string{
	"users":         {"users"},
	"workspaces":    {"workspaces", "workspace_members"},
	"conversations": {"conversations", "messages"},
	"sessions":      {"sessions", "api_keys"},
}

func sqlReadModelNames() []string {
	return []string{"users", "workspaces", "conversations", "sessions"}
}

// projectionsCLI runs `engram projections ARGS` against inst's database and
// Redis and returns its standard output; it fails the test unless the
// command succeeds.
func projectionsCLI(t *testing.T, inst *enginetest.Instance, redisURL string, args ...string) string {
	t.Helper()
	env := []string{"ENGRAM_REDIS_URL=" + redisURL, "ENGRAM_REDIS_PREFIX=" + inst.RedisPrefix}
	out, errOut, code := engramCLIEnv(t, inst, env, "", append([]string{"projections"}, args...)...)
	if code != 0 {
		t.Fatalf("engram projections %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// checksums returns the md5 of every table of the named read models, rows
// in order, as found in schema (where the schema holds the name's tables;
// schemaOf gives it per read model).
func checksums(t *testing.T, db *sql.DB, names []string, schemaOf func(name string) string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range names {
		for _, table := range sqlReadModels[name] {
			var sum string
			q := `SELECT count(*) || ':' || coalesce(md5(string_agg(r::text, E'\n' ORDER BY r::text)), '') FROM ` +
				schemaOf(name) + `.` + table + ` r`
			if err := db.QueryRowContext(t.Context(), q).Scan(&sum); err != nil {
				t.Fatalf("checksum of %s.%s: %v", schemaOf(name), table, err)
			}
			out[name+"/"+table] = sum
		}
	}
	return out
}

func live(string) string { return "public" }

func equalChecksums(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d tables, want %d", what, len(got), len(want))
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %s = %s, want %s", what, k, got[k], w)
		}
	}
}

// quietCognition routes every message to nothing: the read models then
// hold only what the tests write (and the routing decisions).
func quietCognition() map[string]string {
	return map[string]string{
		"ENGRAM_ROUTER":       "patterns",
		"ENGRAM_ROUTER_RULES": `{"patterns":[{"pattern":"(?s).*","action":"ignore","reason":"read-model tests"}]}`,
	}
}

// startQuiet starts an instance with quietCognition, on the shared Redis
// under a prefix of its own, emptied when the test ends (after the
// instance has stopped).
func startQuiet(t *testing.T) *enginetest.Instance {
	t.Helper()
	prefix := redistest.Prefix(t)
	return enginetest.Start(t, enginetest.Options{Env: quietCognition(), RedisPrefix: prefix})
}

// quiesce waits until every consumer group of the instance (projectors,
// and the cognition that reacts to messages) has handled the whole log,
// which the test no longer writes to.
func quiesce(t *testing.T, db *sql.DB) eventstore.Cursor {
	t.Helper()
	var names []string
	if err := sqlx.NewDb(db, "postgres").SelectContext(t.Context(), &names, `SELECT consumer_group FROM consumer_offsets`); err != nil {
		t.Fatal(err)
	}
	checkpoints := projections.NewCheckpoints(db, time.Second)
	deadline := time.Now().Add(60 * time.Second)
	for {
		var last int64
		if err := db.QueryRowContext(t.Context(), `SELECT coalesce(max(global_position), 0) FROM events`).Scan(&last); err != nil {
			t.Fatal(err)
		}
		statuses, err := checkpoints.Status(t.Context(), names)
		if err != nil {
			t.Fatal(err)
		}
		done := true
		for _, s := range statuses {
			if s.LagEvents > 0 {
				done = false
			}
		}
		if done {
			var c eventstore.Cursor
			var tx string
			if err := db.QueryRowContext(t.Context(), `SELECT tx_id::text, global_position FROM events WHERE global_position = $1`, last).
				Scan(&tx, &c.Position); err != nil && !errors.Is(err, sql.ErrNoRows) {
				t.Fatal(err)
			}
			c.TxID, _ = strconv.ParseUint(tx, 10, 64)
			return c
		}
		if time.Now().After(deadline) {
			var behind []projections.Status
			for _, s := range statuses {
				if s.LagEvents > 0 {
					behind = append(behind, s)
				}
			}
			t.Fatalf("consumer groups still behind after a minute: %+v", behind)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// workload drives the API at random, as a few users would: workspaces,
// members, conversations, mostly messages, some updates and removals.
type workload struct {
	t      *testing.T
	rng    *rand.Rand
	users  []*enginetest.Client
	spaces []space
	convs  []conv
	// last is the position of the last command's events.
	last string
}

type space struct {
	id      string
	owner   *enginetest.Client
	members []*enginetest.Client
}

type conv struct {
	id    string
	space int
}

func newWorkload(t *testing.T, inst *enginetest.Instance, seed uint64, users int) *workload {
	w := &workload{t: t, rng: rand.New(rand.NewPCG(seed, 1))}
	for i := range users {
		w.users = append(w.users, inst.Signup(t, fmt.Sprintf("User%d", i)))
	}
	return w
}

func (w *workload) pick(n int) int { return w.rng.IntN(n) }

// run sends n commands.
func (w *workload) run(n int) {
	for range n {
		switch r := w.pick(100); {
		case len(w.spaces) == 0 || r < 4:
			owner := w.users[w.pick(len(w.users))]
			res := owner.Must(http.StatusCreated, "POST", "/v1/workspaces", map[string]any{
				"name": fmt.Sprintf("Space %d", w.pick(1000)), "config": map[string]any{"b": w.pick(9), "aa": "x", "n": 1.50}})
			w.spaces = append(w.spaces, space{id: res.Map(w.t)["id"].(string), owner: owner})
			w.last = res.Position()
		case len(w.convs) == 0 || r < 10:
			si := w.pick(len(w.spaces))
			res := w.spaces[si].owner.Must(http.StatusCreated, "POST", "/v1/workspaces/"+w.spaces[si].id+"/conversations",
				map[string]any{"title": fmt.Sprintf("Talk %d", w.pick(1000)), "metadata": map[string]any{"k": w.pick(5)}})
			w.convs = append(w.convs, conv{id: res.Map(w.t)["id"].(string), space: si})
			w.last = res.Position()
		case r < 16:
			s := &w.spaces[w.pick(len(w.spaces))]
			u := w.users[w.pick(len(w.users))]
			if u == s.owner {
				continue
			}
			res := s.owner.Do("POST", "/v1/workspaces/"+s.id+"/members", map[string]any{"user_id": u.UserID, "role": "editor"})
			if res.Status == http.StatusCreated || res.Status == http.StatusOK {
				s.members = append(s.members, u)
				w.last = res.Position()
			}
		case r < 19:
			s := &w.spaces[w.pick(len(w.spaces))]
			if len(s.members) == 0 {
				continue
			}
			u := s.members[0]
			res := s.owner.Do("DELETE", "/v1/workspaces/"+s.id+"/members/"+u.UserID, nil)
			if res.Status < 300 {
				s.members = s.members[1:]
				w.last = res.Position()
			}
		case r < 23:
			s := w.spaces[w.pick(len(w.spaces))]
			res := s.owner.Must(http.StatusOK, "PATCH", "/v1/workspaces/"+s.id, map[string]any{
				"name": fmt.Sprintf("Renamed %d", w.pick(1000)), "config": map[string]any{"z": w.pick(3), "a": []int{1, 2}}})
			w.last = res.Position()
		case r < 26:
			c := w.convs[w.pick(len(w.convs))]
			res := w.spaces[c.space].owner.Do("PATCH", "/v1/conversations/"+c.id, map[string]any{"title": "Retitled", "metadata": map[string]any{"p": 1}})
			if res.Status == http.StatusOK {
				w.last = res.Position()
			}
		default:
			c := w.convs[w.pick(len(w.convs))]
			s := w.spaces[c.space]
			author := s.owner
			if len(s.members) > 0 && w.pick(2) == 0 {
				author = s.members[w.pick(len(s.members))]
			}
			body := map[string]any{"content": fmt.Sprintf("message <%d> & more", w.pick(100000))}
			if w.pick(3) == 0 {
				body["metadata"] = map[string]any{"bb": w.pick(10), "a": "é", "x": 1e2}
			}
			res := author.Do("POST", "/v1/conversations/"+c.id+"/messages", body)
			if res.Status == http.StatusCreated {
				w.last = res.Position()
			}
		}
	}
}

// Rebuild equals live: after a random workload through the API, each SQL
// read model rebuilt by the command line (while the instance serves and
// takes writes) equals the one the live projectors built, and the API
// answers correctly during and after the swaps.
func TestRebuildEqualsLive(t *testing.T) {
	inst := startQuiet(t)
	db := openDB(t, inst.DatabaseURL)
	w := newWorkload(t, inst, 1, 3)
	w.run(220)
	quiesce(t, db)
	before := checksums(t, db, sqlReadModelNames(), live)

	// Swapped in with nothing else happening: the same read models.
	for _, name := range sqlReadModelNames() {
		out := projectionsCLI(t, inst, redistest.URL(), "rebuild", name)
		if !strings.Contains(out, "swapped in") {
			t.Fatalf("rebuild %s said %q", name, out)
		}
	}
	equalChecksums(t, "rebuilt vs live", checksums(t, db, sqlReadModelNames(), live), before)

	// Swapped in while the API takes writes and answers reads.
	ada := w.spaces[0].owner
	c := w.convs[0]
	for w.spaces[c.space].owner != ada {
		c = w.convs[w.pick(len(w.convs))]
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var posted, failures []string
	var mu sync.Mutex
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			res := ada.Do("POST", "/v1/conversations/"+c.id+"/messages", map[string]any{"content": fmt.Sprintf("during %d", i)})
			page := ada.Do("GET", "/v1/conversations/"+c.id+"/messages?limit=200", nil, "Engram-Min-Position: "+res.Position())
			list := ada.Do("GET", "/v1/workspaces", nil)
			// Answered from the SQL read models only.
			one := ada.Do("GET", "/v1/conversations/"+c.id, nil, "Engram-Min-Position: "+res.Position())
			members := ada.Do("GET", "/v1/workspaces/"+w.spaces[c.space].id+"/members", nil, "Engram-Min-Position: "+res.Position())
			mu.Lock()
			if res.Status != http.StatusCreated || page.Status != http.StatusOK || list.Status != http.StatusOK ||
				one.Status != http.StatusOK || members.Status != http.StatusOK {
				failures = append(failures, fmt.Sprintf("post %d, list %d, workspaces %d, conversation %d, members %d",
					res.Status, page.Status, list.Status, one.Status, members.Status))
			} else if count := decode[struct {
				MessageCount int `json:"message_count"`
			}](one).MessageCount; count < len(posted)+1 {
				failures = append(failures, fmt.Sprintf("the conversation counts %d messages after %d posted during the rebuilds", count, len(posted)+1))
			} else {
				posted = append(posted, decode[struct{ ID string }](res).ID)
				p := decode[struct{ Items []struct{ ID string } }](page)
				seen := map[string]bool{}
				for _, it := range p.Items {
					seen[it.ID] = true
				}
				for _, id := range posted {
					if !seen[id] && len(p.Items) < 200 {
						failures = append(failures, "a read after a write missed message "+id)
					}
				}
			}
			mu.Unlock()
		}
	})
	// The read models the reads above depend on.
	underLoad := []string{"workspaces", "conversations"}
	for _, name := range underLoad {
		projectionsCLI(t, inst, redistest.URL(), "rebuild", name, "--page-size", "50")
	}
	projectionsCLI(t, inst, redistest.URL(), "rebuild", redis.MessagesProjector)
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("during the rebuilds: %d failures, first: %s", len(failures), failures[0])
	}
	if len(posted) == 0 {
		t.Fatal("no write went through during the rebuilds")
	}
	quiesce(t, db)
	for _, name := range underLoad {
		projectionsCLI(t, inst, redistest.URL(), "rebuild", name, "--into", "fresh_"+name, "--quiet")
	}
	equalChecksums(t, "live after rebuilds under load vs fresh rebuilds",
		checksums(t, db, underLoad, live), checksums(t, db, underLoad, func(n string) string { return "fresh_" + n }))
	var p struct{ Items []struct{ ID string } }
	ada.Must(http.StatusOK, "GET", "/v1/conversations/"+c.id+"/messages?limit=200", nil).JSON(t, &p)
	if got := len(p.Items); got < len(posted) {
		t.Errorf("after the rebuilds the conversation lists %d messages; %d were posted during them alone", got, len(posted))
	}

	var statuses []struct {
		Name, State string
		LagEvents   int64 `json:"lag_events"`
	}
	if err := json.Unmarshal([]byte(projectionsCLI(t, inst, redistest.URL(), "status", "--json")), &statuses); err != nil {
		t.Fatal(err)
	}
	for _, s := range statuses {
		if _, ok := sqlReadModels[s.Name]; ok && (s.State != "live" || s.LagEvents != 0) {
			t.Errorf("status of %s after the rebuilds: %+v", s.Name, s)
		}
	}
}

// Point in time: a read model rebuilt as of a position, or a time, in the
// middle of a workload equals the live read model captured at that moment.
func TestPointInTimeRebuild(t *testing.T) {
	inst := startQuiet(t)
	db := openDB(t, inst.DatabaseURL)
	w := newWorkload(t, inst, 2, 3)
	w.run(120)
	mid := quiesce(t, db)
	then := checksums(t, db, sqlReadModelNames(), live)
	var at time.Time
	if err := db.QueryRowContext(t.Context(), `SELECT max(recorded_at) FROM events`).Scan(&at); err != nil {
		t.Fatal(err)
	}
	w.run(100)
	quiesce(t, db)

	pos := strconv.FormatInt(mid.Position, 10)
	for _, name := range sqlReadModelNames() {
		projectionsCLI(t, inst, redistest.URL(), "rebuild", name, "--as-of", pos, "--into", "pit_pos_"+name, "--quiet")
		projectionsCLI(t, inst, redistest.URL(), "rebuild", name, "--as-of", at.UTC().Format(time.RFC3339Nano), "--into", "pit_time_"+name, "--quiet")
	}
	equalChecksums(t, "as of position", checksums(t, db, sqlReadModelNames(), func(n string) string { return "pit_pos_" + n }), then)
	equalChecksums(t, "as of time", checksums(t, db, sqlReadModelNames(), func(n string) string { return "pit_time_" + n }), then)
	if now := checksums(t, db, sqlReadModelNames(), live); now["conversations/messages"] == then["conversations/messages"] {
		t.Error("the live read model did not move on: the test compares nothing")
	}
}

// Crash safety: the process is killed while it projects a batch of events;
// restarted, it catches up, and every read model equals a clean rebuild (SQL)
// or answers as SQL does (Redis).
func TestProjectionsCrashSafety(t *testing.T) {
	inst := startQuiet(t)
	db := openDB(t, inst.DatabaseURL)
	xdb := sqlx.NewDb(db, "postgres")
	store, err := eventstore.New(xdb)
	if err != nil {
		t.Fatal(err)
	}
	gen := eventgen.New(store, 3)
	gen.Roles = []string{"assistant", "system"} // nothing for cognition to answer
	start := time.Now()
	if _, err := gen.Append(t.Context(), 1500); err != nil {
		t.Fatal(err)
	}
	t.Logf("appended in %s", time.Since(start))
	var last int64
	if err := db.QueryRow(`SELECT max(global_position) FROM events`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	// Kill it in the middle of the work.
	deadline := time.Now().Add(60 * time.Second)
	for {
		var pos int64
		if err := db.QueryRow(`SELECT coalesce(min(offset_acked), 0) FROM consumer_offsets WHERE consumer_group = ANY($1)`,
			"{conversations,redis_messages}").Scan(&pos); err != nil {
			t.Fatal(err)
		}
		if pos > last/10 || time.Now().After(deadline) {
			if pos >= last {
				t.Log("the projections finished before the kill: the crash interrupted nothing")
			}
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	inst.Kill(t)
	t.Logf("killed after %s", time.Since(start))
	inst.Restart(t)
	quiesce(t, db)
	t.Logf("caught up after %s", time.Since(start))

	for _, name := range sqlReadModelNames() {
		projectionsCLI(t, inst, redistest.URL(), "rebuild", name, "--into", "clean_"+name, "--quiet")
	}
	equalChecksums(t, "after a crash vs a clean rebuild", checksums(t, db, sqlReadModelNames(), live),
		checksums(t, db, sqlReadModelNames(), func(n string) string { return "clean_" + n }))

	// The Redis read models answer as SQL does: pages inside the message
	// window, and every user's workspaces.
	waitRedisLive(t, inst)
	sqlQ, hotQ, served := hotQueries(t, xdb, inst.RedisPrefix, redistest.URL())
	admin := access.Actor{UserID: gen.Users()[0], Roles: []string{access.RoleAdmin}}
	for _, id := range gen.Conversations() {
		all, err := sqlQ.ListMessages.Handle(t.Context(), admin, id, queries.PageRequest{Limit: queries.MaxLimit}, 0)
		if err != nil {
			t.Fatal(err)
		}
		for len(all.Items) > 0 && all.NextCursor != "" { // the last page
			if all, err = sqlQ.ListMessages.Handle(t.Context(), admin, id, queries.PageRequest{Limit: queries.MaxLimit, Cursor: all.NextCursor}, 0); err != nil {
				t.Fatal(err)
			}
		}
		after := "0"
		if n := len(all.Items); n > 30 {
			after = strconv.FormatInt(all.Items[n-30].Position, 10)
		}
		page := queries.PageRequest{Limit: 20, Cursor: after}
		want, _ := sqlQ.ListMessages.Handle(t.Context(), admin, id, page, 0)
		got, _ := hotQ.ListMessages.Handle(t.Context(), admin, id, page, 0)
		projectionstest.SameJSON(t, "messages of "+id, got, want)
	}
	for _, u := range gen.Users() {
		actor := access.Actor{UserID: u, Roles: []string{"user"}}
		want, _ := sqlQ.ListWorkspaces.Handle(t.Context(), actor, queries.PageRequest{}, 0)
		got, _ := hotQ.ListWorkspaces.Handle(t.Context(), actor, queries.PageRequest{}, 0)
		projectionstest.SameJSON(t, "workspaces of "+u, got, want)
	}
	if served.Load() == 0 {
		t.Error("Redis answered none of the reads: the comparison compared SQL with itself")
	}
}

// decode reads a JSON answer, off the test's goroutine (a body that does not
// decode gives the zero value, which the checks then refuse).
func decode[T any](r *enginetest.Response) T {
	var v T
	_ = json.Unmarshal(r.Body, &v)
	return v
}

// waitRedisLive waits until both Redis read models of inst are live.
func waitRedisLive(t *testing.T, inst *enginetest.Instance) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var report struct {
			ReadModels []redis.Status `json:"read_models"`
		}
		res := inst.Client(t).Do("GET", "/readyz", nil)
		_ = json.Unmarshal(res.Body, &report)
		live := 0
		for _, s := range report.ReadModels {
			if s.State == redis.Live {
				live++
			}
		}
		if live == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Redis read models are not live: %s", res.Body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// redisConn is a Redis always in use, for queries made by the test itself.
type redisConn struct{ client *goredis.Client }

func (c redisConn) Client() *goredis.Client            { return c.client }
func (c redisConn) Backend() string                    { return "redis" }
func (c redisConn) Failed(context.Context, error) bool { return false }

// hotQueries returns the queries over SQL only and over the Redis read
// models of prefix, and the count of reads Redis answered.
func hotQueries(t *testing.T, db *sqlx.DB, prefix, redisURL string) (queries.Queries, queries.Queries, *atomic.Int64) {
	t.Helper()
	store, err := eventstore.New(db)
	if err != nil {
		t.Fatal(err)
	}
	served := &atomic.Int64{}
	rm, err := redis.New(redisConn{client: redistest.Client(t, redisURL)}, store, slog.New(slog.DiscardHandler), redis.Options{
		Prefix: prefix, OnRead: func(_ string, fromRedis bool) {
			if fromRedis {
				served.Add(1)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	waiter := projections.NewCheckpoints(db.DB, time.Second)
	sqlQ, err := queries.New(db, waiter)
	if err != nil {
		t.Fatal(err)
	}
	hotQ, err := queries.New(db, waiter, queries.WithHotReads(rm))
	if err != nil {
		t.Fatal(err)
	}
	return sqlQ, hotQ, served
}

// Redis stopped during a workload and started again: every answer stays
// correct: from Redis before, from SQL during the outage, from Redis again
// once its read models are rebuilt.
func TestRedisOutageKeepsAnswersCorrect(t *testing.T) {
	rs := startRedis(t)
	env := quietCognition()
	// The test is about answers, not latency: while Redis is down, other
	// consumers can hold everyone back for a few seconds.
	env["ENGRAM_READ_YOUR_WRITES_TIMEOUT"] = "30s"
	// The in-memory read cache would answer before Redis: without it, the
	// Redis read models answer every read they can.
	env["ENGRAM_READ_CACHE_BYTES"] = "0"
	inst := enginetest.Start(t, enginetest.Options{RedisURL: rs.url(), Env: env})
	ada := inst.Signup(t, "Ada")
	bob := inst.Signup(t, "Bob")
	ws := ada.Must(http.StatusCreated, "POST", "/v1/workspaces", map[string]any{"name": "Ops", "config": map[string]any{"b": 1, "a": 2}})
	wsID := ws.Map(t)["id"].(string)
	ada.Must(http.StatusCreated, "POST", "/v1/workspaces/"+wsID+"/members", map[string]any{"user_id": bob.UserID, "role": "editor"})
	var convs []string
	for i := range 3 {
		res := ada.Must(http.StatusCreated, "POST", "/v1/workspaces/"+wsID+"/conversations", map[string]any{"title": fmt.Sprint("c", i)})
		convs = append(convs, res.Map(t)["id"].(string))
	}
	posted := map[string][]json.RawMessage{}
	workspaces := []string{wsID}
	step := func(i int) {
		t.Helper()
		c := convs[i%len(convs)]
		author := ada
		if i%2 == 1 {
			author = bob
		}
		res := author.Must(http.StatusCreated, "POST", "/v1/conversations/"+c+"/messages",
			map[string]any{"content": fmt.Sprint("m", i), "metadata": map[string]any{"i": i, "a": "<x>"}})
		posted[c] = append(posted[c], json.RawMessage(res.Body))
		if i%7 == 0 {
			ws := bob.Must(http.StatusCreated, "POST", "/v1/workspaces", map[string]any{"name": fmt.Sprint("w", i)})
			workspaces = append(workspaces, ws.Map(t)["id"].(string))
			res = ws
		}
		checkAnswers(t, inst, bob, convs, posted, workspaces, res.Position())
	}
	i := 0
	servedBefore := redisServed(t, inst)
	for ; i < 12 || redisServed(t, inst) == servedBefore; i++ {
		if i > 200 {
			t.Fatal("Redis answered no read before the outage")
		}
		step(i)
	}

	t.Logf("before the outage: %d steps, %d reads answered from Redis", i, redisServed(t, inst))
	rs.stop()
	for end := i + 12; i < end; i++ {
		step(i)
	}
	outage := redisServed(t, inst)
	for end := i + 5; i < end; i++ {
		step(i)
	}
	if got := redisServed(t, inst); got != outage {
		t.Errorf("%v reads answered from Redis while it was down", got-outage)
	}

	rs.start()
	back := time.Now()
	deadline := back.Add(45 * time.Second)
	for ; redisServed(t, inst) == outage; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("Redis answers no read after it came back\n%s", inst.Client(t).Do("GET", "/readyz", nil).Body)
		}
		step(i)
	}
	t.Logf("Redis answers again %s after it came back", time.Since(back).Round(time.Millisecond))
	for end := i + 10; i < end; i++ {
		step(i)
	}
	if got := redisServed(t, inst); got == outage {
		t.Error("no read answered from Redis after it came back")
	}
}

// checkAnswers reads every conversation's messages and bob's workspaces,
// at least as of position, and compares them with what was posted and
// with each workspace read on its own (from SQL).
func checkAnswers(t *testing.T, inst *enginetest.Instance, c *enginetest.Client, convs []string, posted map[string][]json.RawMessage,
	workspaces []string, position string) {
	t.Helper()
	get := func(path string) *enginetest.Response {
		t.Helper()
		res := c.Do("GET", path, nil, "Engram-Min-Position: "+position)
		if res.Status != http.StatusOK {
			t.Fatalf("GET %s: %d %s\n/readyz: %s", path, res.Status, res.Body, inst.Client(t).Do("GET", "/readyz", nil).Body)
		}
		return res
	}
	for _, id := range convs {
		var page struct {
			Items      []json.RawMessage `json:"items"`
			NextCursor string            `json:"next_cursor"`
		}
		get("/v1/conversations/"+id+"/messages?limit=100").JSON(t, &page)
		want := posted[id]
		if len(page.Items) != len(want) || page.NextCursor != "" {
			t.Fatalf("conversation %s lists %d messages (next %q), want %d", id, len(page.Items), page.NextCursor, len(want))
		}
		for k := range want {
			if !jsonEqual(page.Items[k], want[k]) {
				t.Fatalf("message %d of %s:\n got  %s\n want %s", k, id, page.Items[k], want[k])
			}
		}
	}
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	get("/v1/workspaces").JSON(t, &list)
	if len(list.Items) != len(workspaces) {
		t.Fatalf("bob lists %d workspaces, want %d", len(list.Items), len(workspaces))
	}
	for k, item := range list.Items {
		id := workspaces[len(workspaces)-1-k] // newest first
		one := get("/v1/workspaces/" + id)
		if !jsonEqual(item, one.Body) {
			t.Fatalf("workspace %d of the list:\n got  %s\n want %s", k, item, one.Body)
		}
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y bytes.Buffer
	if json.Compact(&x, a) != nil || json.Compact(&y, b) != nil {
		return false
	}
	return x.String() == y.String()
}

var readsFromRedis = regexp.MustCompile(`(?m)^engram_read_model_reads_total\{model="(messages|workspaces)",source="redis"\} (\d+)`)

// redisServed returns how many reads the instance answered from Redis.
func redisServed(t *testing.T, inst *enginetest.Instance) int {
	t.Helper()
	body := inst.Client(t).Must(http.StatusOK, "GET", "/metrics", nil).Body
	n := 0
	for _, m := range readsFromRedis.FindAllSubmatch(body, -1) {
		k, _ := strconv.Atoi(string(m[2]))
		n += k
	}
	return n
}

// redisServer is a private redis-server on a free port, which the test
// stops and starts again on the same port.
type redisServer struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rs := &redisServer{t: t, port: l.Addr().(*net.TCPAddr).Port}
	_ = l.Close()
	rs.start()
	t.Cleanup(rs.stop)
	return rs
}

func (rs *redisServer) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", rs.port) }

func (rs *redisServer) start() {
	rs.t.Helper()
	rs.cmd = exec.Command("redis-server", "--port", strconv.Itoa(rs.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", rs.t.TempDir())
	if err := rs.cmd.Start(); err != nil {
		rs.t.Fatalf("start redis-server: %v", err)
	}
	rs.done = make(chan struct{})
	go func() {
		_ = rs.cmd.Wait()
		close(rs.done)
	}()
	client := goredis.NewClient(&goredis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", rs.port)})
	defer client.Close()
	deadline := time.Now().Add(10 * time.Second)
	for client.Ping(rs.t.Context()).Err() != nil {
		if time.Now().After(deadline) {
			rs.t.Fatal("redis-server did not answer within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop kills the server, as a crash would.
func (rs *redisServer) stop() {
	if rs.cmd == nil || rs.cmd.Process == nil {
		return
	}
	select {
	case <-rs.done:
		return
	default:
	}
	_ = rs.cmd.Process.Kill()
	<-rs.done
}

// The same Idempotency-Key sent 20 times at once appends once, and every
// answer is the same; the key with another body is refused.
func TestIdempotencyKeyConcurrentRetries(t *testing.T) {
	inst := startQuiet(t)
	ada := inst.Signup(t, "Ada")
	ws := ada.Must(http.StatusCreated, "POST", "/v1/workspaces", map[string]any{"name": "Keys"}).Map(t)["id"].(string)
	conv := ada.Must(http.StatusCreated, "POST", "/v1/workspaces/"+ws+"/conversations", map[string]any{"title": "t"}).Map(t)["id"].(string)

	body := map[string]any{"content": "exactly once", "metadata": map[string]any{"n": 1}}
	type answer struct {
		status int
		body   string
	}
	answers := make([]answer, 20)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range answers {
		wg.Go(func() {
			<-start
			res := ada.Do("POST", "/v1/conversations/"+conv+"/messages", body, "Idempotency-Key: post-once-1")
			answers[i] = answer{res.Status, string(res.Body)}
		})
	}
	close(start)
	wg.Wait()
	for i, a := range answers {
		if a.status != http.StatusCreated || a.body != answers[0].body {
			t.Errorf("answer %d = %d %s; answer 0 = %d %s", i, a.status, a.body, answers[0].status, answers[0].body)
		}
	}
	db := openDB(t, inst.DatabaseURL)
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM events WHERE stream_id = $1 AND type = 'conversation.message_posted'`,
		"conversation-"+conv).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d messages appended for one idempotency key, want 1", n)
	}
	other := ada.Do("POST", "/v1/conversations/"+conv+"/messages", map[string]any{"content": "something else"}, "Idempotency-Key: post-once-1")
	if other.Status != http.StatusUnprocessableEntity || !strings.Contains(string(other.Body), "Idempotency-Key") {
		t.Errorf("the key with another body = %d %s, want 422 naming Idempotency-Key", other.Status, other.Body)
	}
}
