package test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/engramhq/engram/test/enginetest"
)

// The newcomer's path: register, log in, create a workspace and a
// conversation, post messages and read them back in order; restart Engram
// and find everything still there. Engram runs as the binary and, the
// same program, inside the test process.
func TestCoreSpineEndToEnd(t *testing.T) {
	for _, mode := range []struct {
		name      string
		inProcess bool
	}{{"binary", false}, {"in-process", true}} {
		t.Run(mode.name, func(t *testing.T) {
			coreSpine(t, enginetest.Start(t, enginetest.Options{InProcess: mode.inProcess}))
		})
	}
}

func coreSpine(t *testing.T, inst *enginetest.Instance) {
	ada := inst.Signup(t, "Ada")

	ws := ada.Must(http.StatusCreated, "POST", "/v1/workspaces", map[string]any{"name": "Research", "description": "notes"})
	if ws.Header.Get("ETag") != `"1"` || ws.Position() == "" {
		t.Fatalf("workspace answer headers: ETag %q, Engram-Position %q", ws.Header.Get("ETag"), ws.Position())
	}
	wsID := ws.Map(t)["id"].(string)
	conv := ada.Must(http.StatusCreated, "POST", "/v1/workspaces/"+wsID+"/conversations", map[string]any{"title": "Kickoff", "metadata": map[string]any{"topic": "plans"}})
	convID := conv.Map(t)["id"].(string)

	var last *enginetest.Response
	prevVersion := 1
	for i, content := range []string{"first", "second", "third"} {
		last = ada.Must(http.StatusCreated, "POST", "/v1/conversations/"+convID+"/messages", map[string]any{"content": content})
		m := last.Map(t)
		if m["content"] != content || m["role"] != "user" || m["author_id"] != ada.UserID || m["conversation_id"] != convID {
			t.Fatalf("message %d answer = %v", i, m)
		}
		var version int
		if _, err := fmt.Sscanf(last.Header.Get("ETag"), `"%d"`, &version); err != nil || version <= prevVersion {
			t.Fatalf("message %d ETag = %q after version %d", i, last.Header.Get("ETag"), prevVersion)
		}
		prevVersion = version
	}

	// The assistant may answer (cognition): the user's own messages must be
	// there, in order.
	all := userMessages(t, ada, convID, last.Position(), 200)
	if fmt.Sprint(all) != "[first second third]" {
		t.Fatalf("user messages = %v", all)
	}
	// Pagination by two gives the same list.
	if paged := userMessages(t, ada, convID, "", 2); fmt.Sprint(paged) != fmt.Sprint(all) {
		t.Fatalf("paginated user messages = %v, want %v", paged, all)
	}

	got := ada.Must(http.StatusOK, "GET", "/v1/conversations/"+convID, nil, "Engram-Min-Position: "+last.Position()).Map(t)
	if got["message_count"].(float64) < 3 || got["title"] != "Kickoff" {
		t.Fatalf("conversation = %v", got)
	}
	list := ada.Must(http.StatusOK, "GET", "/v1/workspaces", nil).Map(t)
	if items := list["items"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != wsID {
		t.Fatalf("workspaces = %v", list)
	}

	// Every change is an event with metadata.
	db := openDB(t, inst.DatabaseURL)
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM events WHERE stream_id = $1 AND metadata->>'actor_id' = $2
		AND metadata ? 'request_id' AND metadata ? 'correlation_id' AND metadata ? 'causation_id'`,
		"conversation-"+convID, ada.UserID).Scan(&n); err != nil || n != 4 {
		t.Fatalf("conversation events with metadata = %d, %v; want 4", n, err)
	}

	inst.Restart(t)
	if after := userMessages(t, ada, convID, "", 200); fmt.Sprint(after) != fmt.Sprint(all) {
		t.Fatalf("after restart: user messages = %v", after)
	}
	ada.Must(http.StatusCreated, "POST", "/v1/conversations/"+convID+"/messages", map[string]any{"content": "after restart"})
}

// Bad input gets the right status and problem JSON, and changes nothing.
func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	inst := enginetest.Start(t, enginetest.Options{})
	ada := inst.Signup(t, "Ada")
	eve := inst.Signup(t, "Eve")
	wsID := ada.Must(http.StatusCreated, "POST", "/v1/workspaces", map[string]any{"name": "Private"}).Map(t)["id"].(string)
	convID := ada.Must(http.StatusCreated, "POST", "/v1/workspaces/"+wsID+"/conversations", map[string]any{"title": "Secret"}).Map(t)["id"].(string)
	anon := inst.Client(t)
	db := openDB(t, inst.DatabaseURL)
	before := countEvents(t, db)

	expired := signToken(t, inst.JWTSecret, ada.UserID, time.Now().Add(-time.Hour))
	tampered := ada.Token[:len(ada.Token)-2] + flip(ada.Token[len(ada.Token)-2:])
	msgs := "/v1/conversations/" + convID + "/messages"
	cases := []struct {
		name   string
		client *enginetest.Client
		method string
		path   string
		body   any
		header string
		status int
		field  string
	}{
		{"malformed json", ada, "POST", msgs, `{"content": "x"`, "", 400, "body"},
		{"not an object", ada, "POST", msgs, `["x"]`, "", 400, "body"},
		{"missing content", ada, "POST", msgs, `{}`, "", 422, "content"},
		{"blank content", ada, "POST", msgs, `{"content": "   "}`, "", 422, "content"},
		{"too long content", ada, "POST", msgs, map[string]any{"content": strings.Repeat("x", 32001)}, "", 422, "content"},
		{"wrong type", ada, "POST", msgs, `{"content": 42}`, "", 400, "content"},
		{"unknown field", ada, "POST", msgs, `{"content": "x", "sender": "me"}`, "", 400, "sender"},
		{"bad role", ada, "POST", msgs, `{"content": "x", "role": "god"}`, "", 422, "role"},
		{"metadata not object", ada, "POST", msgs, `{"content": "x", "metadata": [1]}`, "", 422, "metadata"},
		{"NUL in content", ada, "POST", msgs, `{"content": "a\u0000b"}`, "", 422, "content"},
		{"title too long", ada, "POST", "/v1/workspaces/" + wsID + "/conversations", map[string]any{"title": strings.Repeat("t", 201)}, "", 422, "title"},
		{"every bad field listed", ada, "POST", "/v1/auth/register", map[string]any{"email": "nope", "password": "short", "display_name": ""}, "", 422, "email,password,display_name"},
		{"unknown conversation", ada, "POST", "/v1/conversations/01a00000-0000-7000-8000-000000000000/messages", map[string]any{"content": "x"}, "", 404, ""},
		{"malformed id", ada, "GET", "/v1/conversations/not-an-id", nil, "", 404, ""},
		{"other user's conversation", eve, "POST", msgs, map[string]any{"content": "x"}, "", 404, ""},
		{"other user's messages", eve, "GET", msgs, nil, "", 404, ""},
		{"other user's workspace", eve, "GET", "/v1/workspaces/" + wsID, nil, "", 404, ""},
		{"other user's rename", eve, "PATCH", "/v1/workspaces/" + wsID, map[string]any{"name": "mine"}, "", 404, ""},
		{"no token", anon, "POST", msgs, map[string]any{"content": "x"}, "", 401, ""},
		{"no token list", anon, "GET", "/v1/workspaces", nil, "", 401, ""},
		{"expired token", anon, "GET", "/v1/workspaces", nil, "Authorization: Bearer " + expired, 401, ""},
		{"tampered token", anon, "GET", "/v1/workspaces", nil, "Authorization: Bearer " + tampered, 401, ""},
		{"garbage token", anon, "GET", "/v1/workspaces", nil, "Authorization: Bearer garbage", 401, ""},
		{"bad min position", ada, "GET", msgs, nil, "Engram-Min-Position: -3", 422, "Engram-Min-Position"},
		{"unknown min position", ada, "GET", msgs, nil, "Engram-Min-Position: 999999", 422, "Engram-Min-Position"},
		{"bad limit", ada, "GET", msgs + "?limit=100000", nil, "", 422, "limit"},
		{"bad cursor", ada, "GET", "/v1/workspaces?cursor=zzz", nil, "", 422, "cursor"},
		{"stale If-Match", ada, "PATCH", "/v1/conversations/" + convID, map[string]any{"title": "x"}, `If-Match: "7"`, 412, ""},
		{"bad If-Match", ada, "PATCH", "/v1/conversations/" + convID, map[string]any{"title": "x"}, `If-Match: "abc"`, 422, "If-Match"},
		{"wrong content type", ada, "POST", msgs, `content=x`, "Content-Type: application/x-www-form-urlencoded", 415, "Content-Type"},
		{"oversized body", ada, "POST", msgs, map[string]any{"content": strings.Repeat("x", 2<<20)}, "", 413, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var headers []string
			if tc.header != "" {
				headers = append(headers, tc.header)
			}
			r := tc.client.Do(tc.method, tc.path, tc.body, headers...)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
				t.Fatalf("Content-Type %q, want problem JSON", ct)
			}
			p := r.Map(t)
			if p["status"] != float64(tc.status) || p["title"] == "" || p["request_id"] != r.Header.Get("X-Request-Id") {
				t.Fatalf("problem = %v", p)
			}
			if tc.field != "" {
				fields := map[string]bool{}
				errs, _ := p["errors"].([]any)
				for _, e := range errs {
					fields[e.(map[string]any)["field"].(string)] = true
				}
				for _, f := range strings.Split(tc.field, ",") {
					if !fields[f] {
						t.Fatalf("errors %v do not name %q", errs, f)
					}
				}
			}
		})
	}
	if after := countEvents(t, db); after != before {
		t.Fatalf("bad input appended %d events", after-before)
	}
}

// userMessages pages through a conversation's messages, limit at a time, and
// returns the contents of those with role user, oldest first.
func userMessages(t *testing.T, c *enginetest.Client, convID, minPosition string, limit int) []string {
	t.Helper()
	var out []string
	cursor := ""
	for pages := 0; pages < 100; pages++ {
		var page struct {
			Items []struct {
				Role     string `json:"role"`
				Content  string `json:"content"`
				Position int64  `json:"position"`
			} `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		path := fmt.Sprintf("/v1/conversations/%s/messages?limit=%d", convID, limit)
		if cursor != "" {
			path += "&after=" + cursor
		}
		var headers []string
		if minPosition != "" {
			headers = append(headers, "Engram-Min-Position: "+minPosition)
		}
		c.Must(http.StatusOK, "GET", path, nil, headers...).JSON(t, &page)
		var prev int64
		for _, m := range page.Items {
			if m.Position <= prev {
				t.Fatalf("messages out of order: %d after %d", m.Position, prev)
			}
			prev = m.Position
			if m.Role == "user" {
				out = append(out, m.Content)
			}
		}
		if page.NextCursor == "" {
			return out
		}
		if len(page.Items) != limit {
			t.Fatalf("a page of %d items (limit %d) has a next cursor", len(page.Items), limit)
		}
		cursor = page.NextCursor
	}
	t.Fatal("more than 100 pages")
	return nil
}

func openDB(t *testing.T, url string) *sql.DB {
	t.Helper()
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func countEvents(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func signToken(t *testing.T, secret, subject string, exp time.Time) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": subject, "sid": "01a00000-0000-7000-8000-000000000001", "iss": "engram", "aud": "engram-api",
		"iat": exp.Add(-time.Minute).Unix(), "exp": exp.Unix(),
	})
	s, err := tok.SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func flip(s string) string {
	b := []byte(s)
	for i := range b {
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
	}
	return string(b)
}
