package test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engramhq/engram/test/enginetest"
)

// The stress test drives two instances on one database with many writers
// (idempotency keys, retries, unique e-mail claims) while one instance is
// restarted and the other killed, then waits until everything downstream of
// the log has caught up and compares every consumer's result with the log:
// a consumer that skipped a committed event fails it.
//
// TestStress is bounded (a few seconds of writing) and runs with the other
// tests; TestSoak writes for ENGRAM_SOAK_DURATION (default 60s) with more
// writers and runs only when ENGRAM_SOAK is set (make soak).

func TestStress(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two instances and restarts them")
	}
	runStress(t, stressConfig{duration: 3 * time.Second, writers: 6, maxMessages: 150, conversations: 4})
}

func TestSoak(t *testing.T) {
	if os.Getenv("ENGRAM_SOAK") == "" {
		t.Skip("set ENGRAM_SOAK=1 (make soak) to run the long stress test")
	}
	d := 60 * time.Second
	if raw := os.Getenv("ENGRAM_SOAK_DURATION"); raw != "" {
		var err error
		if d, err = time.ParseDuration(raw); err != nil {
			t.Fatalf("ENGRAM_SOAK_DURATION=%q: %v", raw, err)
		}
	}
	runStress(t, stressConfig{duration: d, writers: 16, maxMessages: 1 << 30, conversations: 16, nearPowerOfTen: true})
}

type stressConfig struct {
	duration      time.Duration
	writers       int
	maxMessages   int
	conversations int
	// nearPowerOfTen brings the cluster's transaction ids just below the
	// next power of ten before the writers start, so that the run crosses
	// it under load (where ordering them as text once skipped events).
	nearPowerOfTen bool
}

// stressClient is a plain HTTP client for the writers: unlike
// enginetest.Client it reports failures instead of failing the test, so that
// it can run outside the test goroutine and retry while an instance is down.
type stressClient struct {
	http  *http.Client
	token string
}

func (c *stressClient) do(base, method, path string, body any, headers ...string) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	enginetest.SetHeaders(req, c.token, headers...)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

// posted is a message a writer was told was created (201), with the
// answers of every retry of its request.
type posted struct {
	id, conversation, content string
}

// stressRun is what the writers did.
type stressRun struct {
	mu        sync.Mutex
	accepted  map[string]posted // by content
	attempted map[string]bool   // contents sent at least once
	claims    map[string][]int  // e-mail → statuses of its registrations
	problems  []string
}

func (r *stressRun) problem(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.problems) < 50 {
		r.problems = append(r.problems, fmt.Sprintf(format, args...))
	}
}

func runStress(t *testing.T, cfg stressConfig) {
	// A task the killed instance had started is claimed again when its
	// lease ends: short attempts keep that within the wait below.
	a := enginetest.Start(t, enginetest.Options{Env: map[string]string{"ENGRAM_TASK_TIMEOUT": "3s"}})
	b := a.Second(t)
	owner := a.Signup(t, "Owner")
	ws := owner.Must(http.StatusCreated, "POST", "/v1/workspaces", map[string]any{"name": "Stress"}).Map(t)["id"].(string)
	var conversations []string
	for i := range cfg.conversations {
		c := owner.Must(http.StatusCreated, "POST", "/v1/workspaces/"+ws+"/conversations",
			map[string]any{"title": fmt.Sprint("Stress ", i)}).Map(t)
		conversations = append(conversations, c["id"].(string))
	}

	instances := []*enginetest.Instance{a, b}
	bases := &sync.Map{} // instance index → base URL (the same after restarts)
	for i, inst := range instances {
		bases.Store(i, inst.URL)
	}
	run := &stressRun{accepted: map[string]posted{}, attempted: map[string]bool{}, claims: map[string][]int{}}
	var budget sync.Mutex
	remaining := cfg.maxMessages
	take := func() bool {
		budget.Lock()
		defer budget.Unlock()
		remaining--
		return remaining >= 0
	}

	db, err := sql.Open("postgres", a.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if cfg.nearPowerOfTen {
		approachPowerOfTen(t, db)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range cfg.writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			c := &stressClient{http: &http.Client{Timeout: 15 * time.Second}, token: owner.Token}
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if n%10 == 9 {
					claimEmail(run, bases, c, fmt.Sprintf("claim-%d-%d-%d@example.com", w, n, rng.Uint32()))
					continue
				}
				if !take() {
					return
				}
				postWithRetries(run, bases, c, rng, conversations[rng.IntN(len(conversations))], fmt.Sprintf("stress w%d m%d", w, n))
			}
		}()
	}

	// A graceful restart of one instance, then a crash of the other, while
	// the writers go on.
	began := time.Now()
	<-time.After(cfg.duration / 3)
	stopped := time.Now()
	if err := b.Stop(t); err != nil {
		t.Errorf("second instance: stop: %v", err)
	}
	t.Logf("%s: second instance stopped in %s", time.Since(began).Round(time.Millisecond), time.Since(stopped).Round(time.Millisecond))
	b.Restart(t)
	t.Logf("%s: second instance restarted", time.Since(began).Round(time.Millisecond))
	<-time.After(cfg.duration / 3)
	a.Kill(t)
	a.Restart(t)
	t.Logf("%s: first instance killed and started again", time.Since(began).Round(time.Millisecond))
	<-time.After(cfg.duration / 3)
	close(stop)
	wg.Wait()
	t.Logf("%s: writers done", time.Since(began).Round(time.Millisecond))
	for _, p := range run.problems {
		t.Error(p)
	}
	if len(run.accepted) == 0 {
		t.Fatal("no message was accepted")
	}
	t.Logf("%d messages accepted, %d e-mail claims", len(run.accepted), len(run.claims))

	checkClaims(t, db, run)
	checkLogHoldsEachMessageOnce(t, db, run)
	waitUntilSettled(t, db, cfg)
	t.Logf("%s: settled", time.Since(began).Round(time.Millisecond))
	checkEveryUserMessageAnswered(t, db)
	checkMessagesEverywhere(t, db, instances, owner, conversations)
	checkProjectionsVerify(t, a, owner)
}

// approachPowerOfTen uses up transaction ids, each in a transaction of its
// own, until the cluster's next id is a few hundred below the next power of
// ten (when that takes at most ten million). Transaction ids are cheap and
// cluster-wide; nothing else changes.
func approachPowerOfTen(t *testing.T, db *sql.DB) {
	t.Helper()
	const margin, most = 300, 10_000_000
	var current int64
	if err := db.QueryRow(`SELECT pg_current_xact_id()::text::bigint`).Scan(&current); err != nil {
		t.Fatal(err)
	}
	next := int64(10)
	for next <= current {
		next *= 10
	}
	burn := next - margin - current
	if burn <= 0 || burn > most {
		t.Logf("transaction id %d: the next power of ten, %d, is not within reach", current, next)
		return
	}
	began := time.Now()
	for burn > 0 {
		n := min(burn, 50_000)
		if _, err := db.Exec(`DO $$ BEGIN
			PERFORM set_config('synchronous_commit', 'off', false);
			FOR i IN 1..` + strconv.FormatInt(n, 10) + ` LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP;
		END $$`); err != nil {
			t.Fatalf("use up transaction ids: %v", err)
		}
		burn -= n
	}
	t.Logf("transaction ids brought from %d to %d below %d in %s", current, margin, next, time.Since(began).Round(time.Millisecond))
}

// postWithRetries posts one message with an Idempotency-Key, retrying the
// same request (on either instance) until it is answered 201, and
// sometimes once more after that: every answer must name the same message.
func postWithRetries(run *stressRun, bases *sync.Map, c *stressClient, rng *rand.Rand, conversation, content string) {
	key := fmt.Sprintf("%s-%d", strings.ReplaceAll(content, " ", "-"), rng.Uint64())
	run.mu.Lock()
	run.attempted[content] = true
	run.mu.Unlock()
	var first string
	extra := rng.IntN(4) == 0
	for attempt := 0; attempt < 60; attempt++ {
		base, _ := bases.Load(rng.IntN(2))
		status, body, err := c.do(base.(string), "POST", "/v1/conversations/"+conversation+"/messages",
			map[string]any{"content": content}, "Idempotency-Key: "+key)
		if err != nil || status >= 500 || status == http.StatusTooManyRequests || status == http.StatusConflict && first == "" {
			// Down, restarting, or the first attempt still in flight.
			<-time.After(time.Duration(20+rng.IntN(80)) * time.Millisecond)
			continue
		}
		if status != http.StatusCreated && status != http.StatusOK {
			run.problem("post %q: status %d: %s", content, status, body)
			return
		}
		var m struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(body, &m); err != nil || m.ID == "" {
			run.problem("post %q: answer %s", content, body)
			return
		}
		if first == "" {
			first = m.ID
			run.mu.Lock()
			run.accepted[content] = posted{id: m.ID, conversation: conversation, content: content}
			run.mu.Unlock()
			if !extra {
				return
			}
			extra = false
			continue
		}
		if m.ID != first {
			run.problem("retry of %q with the same key created message %s after %s", content, m.ID, first)
		}
		return
	}
	if first == "" {
		run.problem("post %q: no answer after 60 attempts", content)
	}
}

// claimEmail registers one e-mail address on both instances at once.
func claimEmail(run *stressRun, bases *sync.Map, c *stressClient, email string) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var statuses []int
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base, _ := bases.Load(i)
			anon := &stressClient{http: c.http}
			status, _, err := anon.do(base.(string), "POST", "/v1/auth/register",
				map[string]string{"email": email, "password": enginetest.Password, "display_name": "Claim"})
			if err != nil {
				status = 0 // the instance was down: nothing is known
			}
			mu.Lock()
			statuses = append(statuses, status)
			mu.Unlock()
		}()
	}
	wg.Wait()
	run.mu.Lock()
	run.claims[email] = statuses
	run.mu.Unlock()
}

// checkClaims: an e-mail address registered twice at once belongs to one
// user, in the log and in the users read model.
func checkClaims(t *testing.T, db *sql.DB, run *stressRun) {
	t.Helper()
	for email, statuses := range run.claims {
		created := 0
		for _, s := range statuses {
			if s == http.StatusCreated {
				created++
			} else if s != 0 && s != http.StatusConflict && s < 500 {
				t.Errorf("register %s: status %d", email, s)
			}
		}
		var inLog int
		if err := db.QueryRow(`SELECT count(*) FROM events WHERE type = 'user.registered' AND lower(data->>'email') = lower($1)`, email).Scan(&inLog); err != nil {
			t.Fatal(err)
		}
		if created > 1 || inLog > 1 || created == 1 && inLog != 1 {
			t.Errorf("e-mail %s: %d registrations answered 201 (%v), %d in the log", email, created, statuses, inLog)
		}
	}
}

// checkLogHoldsEachMessageOnce: every accepted message is in the log once,
// with the id its 201 gave, and no content was appended twice.
func checkLogHoldsEachMessageOnce(t *testing.T, db *sql.DB, run *stressRun) {
	t.Helper()
	inLog := map[string]string{}
	var (
		content, id string
		n           int
	)
	eachRow(t, db, `SELECT data->>'content', data->>'message_id', count(*) OVER (PARTITION BY data->>'content')
		FROM events WHERE type = 'conversation.message_posted' AND data->>'role' = 'user'`, nil, []any{&content, &id, &n}, func() {
		if n > 1 {
			t.Errorf("message %q appended %d times", content, n)
		}
		if !run.attempted[content] {
			t.Errorf("message %q in the log was never sent", content)
		}
		inLog[content] = id
	})
	for content, p := range run.accepted {
		if id, ok := inLog[content]; !ok || id != p.id {
			t.Errorf("accepted message %q (%s) is not in the log as such (log: %q)", content, p.id, id)
		}
	}
}

// waitUntilSettled polls until every user message has its routing decision
// and answer and every consumer group has handled every event, twice in a
// row. It fails the test, but lets it go on, when that does not happen in
// time.
func waitUntilSettled(t *testing.T, db *sql.DB, cfg stressConfig) {
	t.Helper()
	deadline := time.Now().Add(60*time.Second + 2*cfg.duration)
	settled := 0
	var last string
	for settled < 2 {
		if time.Now().After(deadline) {
			// Compare anyway: the checks below name what is missing.
			t.Errorf("not settled in time: %s", last)
			return
		}
		var unanswered, lagging int
		err := db.QueryRow(`SELECT
			(SELECT count(*) FROM events m WHERE m.type = 'conversation.message_posted' AND m.data->>'role' = 'user'
				AND NOT EXISTS (SELECT 1 FROM events r WHERE r.type = 'conversation.message_posted' AND r.data->>'role' = 'assistant'
					AND r.data->>'content' = 'ECHO: ' || (m.data->>'content'))),
			(SELECT count(*) FROM consumer_offsets o WHERE EXISTS (SELECT 1 FROM events e
				WHERE (e.tx_id, e.global_position) > (o.last_processed_transaction_id, o.offset_acked)))`).Scan(&unanswered, &lagging)
		if err != nil {
			t.Fatal(err)
		}
		last = fmt.Sprintf("%d user messages unanswered, %d consumer groups behind", unanswered, lagging)
		if unanswered == 0 && lagging == 0 {
			settled++
		} else {
			settled = 0
		}
		<-time.After(100 * time.Millisecond)
	}
}

// checkEveryUserMessageAnswered: one routing decision per user message, a
// completed task whose reply is in the log, and a memory item for every
// message, user's and assistant's, in the log and in the read model.
func checkEveryUserMessageAnswered(t *testing.T, db *sql.DB) {
	t.Helper()
	for _, c := range []struct{ what, query string }{
		{"user messages without exactly one routing decision", `SELECT count(*) FROM events m WHERE m.type = 'conversation.message_posted'
			AND m.data->>'role' = 'user' AND (SELECT count(*) FROM events r WHERE r.type = 'conversation.routing_decided'
				AND r.data->>'message_id' = m.data->>'message_id') <> 1`},
		{"user messages without a completed task", `SELECT count(*) FROM events m WHERE m.type = 'conversation.message_posted'
			AND m.data->>'role' = 'user' AND NOT EXISTS (SELECT 1 FROM tasks k WHERE k.message_id::text = m.data->>'message_id'
				AND k.status = 'completed')`},
		{"messages without a memory item in the log", `SELECT count(*) FROM events m WHERE m.type = 'conversation.message_posted'
			AND NOT EXISTS (SELECT 1 FROM events i WHERE i.type = 'memory.item_stored' AND i.data->>'source_message_id' = m.data->>'message_id')`},
		{"messages without a memory item in the read model", `SELECT count(*) FROM events m WHERE m.type = 'conversation.message_posted'
			AND NOT EXISTS (SELECT 1 FROM memory_items i WHERE i.source_message_id::text = m.data->>'message_id')`},
		{"messages missing from the messages table", `SELECT count(*) FROM events m WHERE m.type = 'conversation.message_posted'
			AND NOT EXISTS (SELECT 1 FROM messages x WHERE x.id::text = m.data->>'message_id')`},
		{"parked events", `SELECT count(*) FROM parked_events`},
	} {
		var n int
		if err := db.QueryRow(c.query).Scan(&n); err != nil {
			t.Fatalf("%s: %v", c.what, err)
		}
		if n != 0 {
			t.Errorf("%d %s", n, c.what)
		}
	}
}

// checkMessagesEverywhere: each conversation's messages, read through the
// API of each instance (the Redis list first, then the SQL read model), are
// exactly the log's, in order.
func checkMessagesEverywhere(t *testing.T, db *sql.DB, instances []*enginetest.Instance, owner *enginetest.Client, conversations []string) {
	t.Helper()
	for _, conv := range conversations {
		want := queryStrings(t, db, `SELECT data->>'message_id' FROM events WHERE stream_id = $1 AND type = 'conversation.message_posted'
			ORDER BY global_position`, "conversation-"+conv)
		for i, inst := range instances {
			c := inst.Client(t)
			c.Token = owner.Token
			var got []string
			path := "/v1/conversations/" + conv + "/messages?limit=100"
			for {
				var page struct {
					Items []struct {
						ID       string `json:"id"`
						Position int64  `json:"position"`
					} `json:"items"`
					NextCursor string `json:"next_cursor"`
				}
				r := c.Do("GET", path, nil)
				if r.Status != http.StatusOK {
					t.Errorf("instance %d: GET %s: status %d: %s", i, path, r.Status, r.Body)
					break
				}
				r.JSON(t, &page)
				for _, m := range page.Items {
					got = append(got, m.ID)
				}
				if page.NextCursor == "" || len(page.Items) == 0 {
					break
				}
				path = "/v1/conversations/" + conv + "/messages?limit=100&cursor=" + page.NextCursor
			}
			if !slices.Equal(got, want) {
				t.Errorf("instance %d, conversation %s: the API lists %d messages, the log has %d (first difference at %d)",
					i, conv, len(got), len(want), firstDifference(got, want))
			}
		}
	}
}

func firstDifference(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// checkProjectionsVerify: the SQL read models agree with the log, by the
// command line and by the auditor's route.
func checkProjectionsVerify(t *testing.T, inst *enginetest.Instance, owner *enginetest.Client) {
	t.Helper()
	out, errOut, code := engramCLI(t, inst, "", "projections", "verify")
	if code != 0 {
		t.Errorf("engram projections verify: exit %d\n%s%s", code, out, errOut)
	}
	grant(t, inst, owner, "auditor")
	var report struct {
		OK         bool `json:"ok"`
		ReadModels []struct {
			Name            string `json:"name"`
			DifferenceCount int    `json:"difference_count"`
			Events          int64  `json:"events"`
		} `json:"read_models"`
	}
	owner.Must(http.StatusOK, "GET", "/v1/audit/projections/verify", nil).JSON(t, &report)
	if !report.OK || len(report.ReadModels) != 6 {
		t.Errorf("GET /v1/audit/projections/verify: %+v", report)
	}
	for _, m := range report.ReadModels {
		if m.Events == 0 {
			t.Errorf("read model %s compared no event", m.Name)
		}
	}
	owner.Must(http.StatusUnprocessableEntity, "GET", "/v1/audit/projections/verify?name=nope", nil)
}

// eachRow runs query on db and, for every row of the result, scans the row
// into dest and calls row; any error fails t at once.
func eachRow(t *testing.T, db *sql.DB, query string, args []any, dest []any, row func()) {
	t.Helper()
	rows, err := db.Query(query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			t.Fatal(err)
		}
		row()
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// queryStrings runs a query of one column of strings on db and returns its rows.
func queryStrings(t *testing.T, db *sql.DB, query string, args ...any) []string {
	t.Helper()
	var (
		out []string
		s   string
	)
	eachRow(t, db, query, args, []any{&s}, func() { out = append(out, s) })
	return out
}
