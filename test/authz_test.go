package test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/engramhq/engram/test/enginetest"
)

// who is a column of the authorization matrix: one kind of caller.
type who int

const (
	anonymous who = iota
	otherUser
	viewer
	editor
	owner
	admin
	auditor
	keyRead
	keyWrite
	keyAudit
	callers
)

var callerNames = [callers]string{"anonymous", "other user", "viewer", "editor", "owner", "admin", "auditor",
	"API key read", "API key write", "API key audit"}

// expect is a row's expected status for each caller, in the order above.
type expect [callers]int

// authzCell is one request of the matrix.
type authzCell struct {
	path string
	body any
	// credential, when set, replaces the caller's own (e.g. a fresh session
	// for a logout, which ends it).
	credential string
}

// authzRow is a route and what each caller gets from it.
type authzRow struct {
	route string // "METHOD /path/:param", as the server registers it
	want  expect
	// cell builds the request of one caller; nil means the route's path
	// with the fixture's ids and no body.
	cell func(t *testing.T, f *authzFixture, w who) authzCell
	// stream marks a live stream: only the status is read.
	stream bool
}

// authzFixture is the world the matrix runs in: Ada owns a workspace shared
// with a viewer and an editor, with a conversation; Otto is a stranger; the
// admin and the auditor hold those roles; Ada has a read key and a
// read-write key, the auditor an audit key.
type authzFixture struct {
	inst         *enginetest.Instance
	ada          *enginetest.Client
	credential   [callers]string
	email        [callers]string
	workspace    string
	conversation string
	task         string
}

// The authorization matrix: every route × every kind of caller → status, from
// this one table, run end to end against one instance.
func TestAuthorizationMatrix(t *testing.T) {
	//        anon other viewer editor owner admin auditor kRead kWrite kAudit
	public := expect{200, 200, 200, 200, 200, 200, 200, 200, 200, 200}
	created := expect{201, 201, 201, 201, 201, 201, 201, 201, 201, 201}
	ownAccount := expect{401, 200, 200, 200, 200, 200, 200, 200, 200, 403}
	credentials := expect{401, 200, 200, 200, 200, 200, 200, 403, 403, 403}
	wsRead := expect{401, 404, 200, 200, 200, 200, 200, 200, 200, 404}
	auditRead := expect{401, 404, 404, 404, 404, 200, 200, 404, 404, 200}

	rows := []authzRow{
		{route: "GET /healthz", want: public},
		{route: "GET /readyz", want: public},
		{route: "GET /metrics", want: public},
		{route: "GET /openapi.yaml", want: public},
		{route: "GET /", want: public},
		{route: "GET /assets/:name", want: public, cell: func(*testing.T, *authzFixture, who) authzCell {
			return authzCell{path: "/assets/console.js"}
		}},

		{route: "POST /v1/auth/register", want: created, cell: func(t *testing.T, f *authzFixture, w who) authzCell {
			return authzCell{body: map[string]string{"email": "new-" + uniqueSuffix() + "@example.com", "password": enginetest.Password, "display_name": "New"}}
		}},
		{route: "POST /v1/auth/login", want: public, cell: func(t *testing.T, f *authzFixture, w who) authzCell {
			return authzCell{body: map[string]string{"email": f.email[owner], "password": enginetest.Password}}
		}},
		{route: "POST /v1/auth/refresh", want: public, cell: func(t *testing.T, f *authzFixture, w who) authzCell {
			tokens := f.inst.Client(t).Must(http.StatusOK, "POST", "/v1/auth/login",
				map[string]string{"email": f.email[owner], "password": enginetest.Password}).Map(t)
			return authzCell{body: map[string]any{"refresh_token": tokens["refresh_token"]}}
		}},
		{route: "POST /v1/auth/logout", want: expect{401, 204, 204, 204, 204, 204, 204, 403, 403, 403},
			cell: func(t *testing.T, f *authzFixture, w who) authzCell {
				// Logging out ends the session: log in afresh for it.
				if f.email[w] == "" {
					return authzCell{}
				}
				return authzCell{credential: signIn(t, f.inst, f.email[w], enginetest.Password).Token}
			}},
		{route: "POST /v1/auth/sse-ticket", want: ownAccount},
		{route: "GET /v1/auth/me", want: ownAccount},
		{route: "GET /v1/sessions", want: credentials},
		{route: "DELETE /v1/sessions/:id", want: expect{401, 404, 404, 404, 204, 204, 404, 403, 403, 403},
			cell: func(t *testing.T, f *authzFixture, w who) authzCell {
				fresh := signIn(t, f.inst, f.email[owner], enginetest.Password)
				return authzCell{path: "/v1/sessions/" + jwtClaimsOf(t, fresh.Token)["sid"].(string)}
			}},
		{route: "POST /v1/api-keys", want: expect{401, 201, 201, 201, 201, 201, 201, 403, 403, 403},
			cell: func(t *testing.T, f *authzFixture, w who) authzCell {
				return authzCell{body: map[string]any{"name": "matrix", "scopes": []string{"read"}}}
			}},
		{route: "GET /v1/api-keys", want: credentials},
		{route: "DELETE /v1/api-keys/:id", want: expect{401, 404, 404, 404, 204, 204, 404, 403, 403, 403},
			cell: func(t *testing.T, f *authzFixture, w who) authzCell {
				k := f.ada.Must(http.StatusCreated, "POST", "/v1/api-keys", map[string]any{"name": "victim", "scopes": []string{"read"}}).Map(t)
				return authzCell{path: "/v1/api-keys/" + k["id"].(string)}
			}},
		{route: "GET /v1/users/me/events", want: ownAccount, stream: true},
		{route: "GET /v1/events", want: ownAccount, stream: true},

		{route: "POST /v1/workspaces", want: expect{401, 201, 201, 201, 201, 201, 201, 403, 201, 403},
			cell: func(t *testing.T, f *authzFixture, w who) authzCell {
				return authzCell{body: map[string]any{"name": "Mine"}}
			}},
		{route: "GET /v1/workspaces", want: ownAccount},
		{route: "GET /v1/workspaces/:id", want: wsRead},
		{route: "PATCH /v1/workspaces/:id", want: expect{401, 404, 403, 403, 200, 200, 403, 403, 200, 404},
			cell: func(t *testing.T, f *authzFixture, w who) authzCell {
				return authzCell{body: map[string]any{"description": "edited by " + callerNames[w]}}
			}},
		{route: "DELETE /v1/workspaces/:id", want: expect{401, 404, 403, 403, 200, 200, 403, 403, 200, 404},
			cell: func(t *testing.T, f *authzFixture, w who) authzCell {
				return authzCell{path: "/v1/workspaces/" + f.sharedWorkspace(t)}
			}},
		{route: "GET /v1/workspaces/:id/members", want: wsRead},
		{route: "POST /v1/workspaces/:id/members", want: expect{401, 404, 403, 403, 201, 201, 403, 403, 201, 404},
			cell: func(t *testing.T, f *authzFixture, w who) authzCell {
				_, email := f.newUser(t)
				return authzCell{body: map[string]any{"email": email, "role": "viewer"}}
			}},
		{route: "DELETE /v1/workspaces/:id/members/:user_id", want: expect{401, 404, 403, 403, 204, 204, 403, 403, 204, 404},
			cell: func(t *testing.T, f *authzFixture, w who) authzCell {
				id, _ := f.newUser(t)
				f.ada.Must(http.StatusCreated, "POST", "/v1/workspaces/"+f.workspace+"/members", map[string]any{"user_id": id, "role": "viewer"})
				return authzCell{path: "/v1/workspaces/" + f.workspace + "/members/" + id}
			}},
		{route: "GET /v1/workspaces/:id/events", want: wsRead, stream: true},

		{route: "POST /v1/workspaces/:id/conversations", want: expect{401, 404, 403, 201, 201, 201, 403, 403, 201, 404},
			cell: func(t *testing.T, f *authzFixture, w who) authzCell {
				return authzCell{body: map[string]any{"title": "By " + callerNames[w]}}
			}},
		{route: "GET /v1/workspaces/:id/conversations", want: wsRead},
		{route: "GET /v1/conversations/:id", want: wsRead},
		{route: "PATCH /v1/conversations/:id", want: expect{401, 404, 403, 200, 200, 200, 403, 403, 200, 404},
			cell: func(t *testing.T, f *authzFixture, w who) authzCell {
				return authzCell{body: map[string]any{"title": "Renamed by " + callerNames[w]}}
			}},
		{route: "DELETE /v1/conversations/:id", want: expect{401, 404, 403, 200, 200, 200, 403, 403, 200, 404},
			cell: func(t *testing.T, f *authzFixture, w who) authzCell {
				c := f.ada.Must(http.StatusCreated, "POST", "/v1/workspaces/"+f.workspace+"/conversations", map[string]any{"title": "Doomed"}).Map(t)
				return authzCell{path: "/v1/conversations/" + c["id"].(string)}
			}},
		{route: "POST /v1/conversations/:id/messages", want: expect{401, 404, 403, 201, 201, 201, 403, 403, 201, 404},
			cell: func(t *testing.T, f *authzFixture, w who) authzCell {
				return authzCell{body: map[string]any{"content": "hello from " + callerNames[w]}}
			}},
		{route: "GET /v1/conversations/:id/messages", want: wsRead},
		{route: "POST /v1/conversations/:id/typing", want: expect{401, 404, 403, 204, 204, 204, 403, 403, 204, 404},
			cell: func(t *testing.T, f *authzFixture, w who) authzCell {
				return authzCell{body: map[string]any{"state": "start"}}
			}},
		{route: "GET /v1/conversations/:id/events", want: wsRead, stream: true},

		{route: "GET /v1/experts", want: ownAccount},
		{route: "GET /v1/tasks/:id", want: wsRead},
		// The fixture's task is finished: who may cancel it is told so (409).
		{route: "POST /v1/tasks/:id/cancel", want: expect{401, 404, 403, 409, 409, 409, 403, 403, 409, 404}},
		{route: "GET /v1/workspaces/:id/memory", want: wsRead},
		{route: "GET /v1/workspaces/:id/memory/context", want: wsRead},
		{route: "POST /v1/workspaces/:id/memory", want: expect{401, 404, 403, 201, 201, 201, 403, 403, 201, 404},
			cell: func(t *testing.T, f *authzFixture, w who) authzCell {
				return authzCell{body: map[string]any{"type": "event", "content": "noted by " + callerNames[w]}}
			}},
		{route: "DELETE /v1/workspaces/:id/memory/:item_id", want: expect{401, 404, 403, 204, 204, 204, 403, 403, 204, 404},
			cell: func(t *testing.T, f *authzFixture, w who) authzCell {
				item := f.ada.Must(http.StatusCreated, "POST", "/v1/workspaces/"+f.workspace+"/memory",
					map[string]any{"type": "event", "content": "to forget"}).Map(t)
				return authzCell{path: "/v1/workspaces/" + f.workspace + "/memory/" + item["id"].(string)}
			}},

		{route: "GET /v1/audit/events", want: auditRead},
		{route: "GET /v1/audit/streams/:stream_id/events", want: auditRead},
		{route: "GET /v1/audit/streams/:stream_id/state", want: auditRead, cell: func(t *testing.T, f *authzFixture, w who) authzCell {
			return authzCell{path: "/v1/audit/streams/workspace-" + f.workspace + "/state?version=1"}
		}},
		{route: "GET /v1/audit/verify", want: auditRead},
		{route: "GET /v1/audit/projections/verify", want: auditRead},
	}

	inst := enginetest.Start(t, enginetest.Options{Env: map[string]string{"ENGRAM_LOG_LEVEL": "debug"}})
	f := newAuthzFixture(t, inst)

	// Every route the server serves has a row, and every row a route.
	served := servedRoutes(t, inst)
	var listed []string
	for _, r := range rows {
		listed = append(listed, r.route)
	}
	for _, r := range served {
		if !slices.Contains(listed, r) {
			t.Errorf("route %s has no row in the authorization matrix: add one", r)
		}
	}
	for _, r := range listed {
		if !slices.Contains(served, r) {
			t.Errorf("the matrix has a row for %s, which the server does not serve", r)
		}
	}

	cells := 0
	defer func() { t.Logf("%d routes × %d callers: %d requests checked", len(rows), callers, cells) }()
	for _, row := range rows {
		method, pattern, _ := strings.Cut(row.route, " ")
		for w := range callers {
			cell := authzCell{}
			if row.cell != nil {
				cell = row.cell(t, f, w)
			}
			if cell.path == "" {
				cell.path = f.fill(pattern)
			}
			credential := f.credential[w]
			if cell.credential != "" {
				credential = cell.credential
			}
			status, body := authzDo(t, inst, method, cell.path, cell.body, credential, row.stream)
			cells++
			if status != row.want[w] {
				t.Errorf("%s as %s: status %d, want %d: %s", row.route, callerNames[w], status, row.want[w], body)
			}
		}
	}
}

func newAuthzFixture(t *testing.T, inst *enginetest.Instance) *authzFixture {
	t.Helper()
	f := &authzFixture{inst: inst}
	for w, name := range map[who]string{owner: "Ada", viewer: "Vic", editor: "Eve", otherUser: "Otto"} {
		c, email := newAccount(t, inst, name)
		f.credential[w], f.email[w] = c.Token, email
		if w == owner {
			f.ada = c
		}
	}
	for w, role := range map[who]string{admin: "admin", auditor: "auditor"} {
		email := role + "-" + uniqueSuffix() + "@example.com"
		if out, errOut, code := engramCLI(t, inst, enginetest.Password+"\n", "user", "create",
			"--email", email, "--display-name", role, "--role", role); code != 0 {
			t.Fatalf("engram user create: exit %d: %s%s", code, out, errOut)
		}
		f.credential[w], f.email[w] = signIn(t, inst, email, enginetest.Password).Token, email
	}

	ws := f.ada.Must(http.StatusCreated, "POST", "/v1/workspaces", map[string]any{"name": "Shared"})
	f.workspace = ws.Map(t)["id"].(string)
	f.share(t, f.workspace)
	conv := f.ada.Must(http.StatusCreated, "POST", "/v1/workspaces/"+f.workspace+"/conversations", map[string]any{"title": "Plans"})
	f.conversation = conv.Map(t)["id"].(string)
	last := f.ada.Must(http.StatusCreated, "POST", "/v1/conversations/"+f.conversation+"/messages", map[string]any{"content": "first"})

	key := func(c string, scopes ...string) string {
		return f.inst.Client(t).Must(http.StatusCreated, "POST", "/v1/api-keys", map[string]any{"name": "matrix", "scopes": scopes},
			"Authorization: Bearer "+c).Map(t)["key"].(string)
	}
	f.credential[keyRead] = key(f.credential[owner], "read")
	f.credential[keyWrite] = key(f.credential[owner], "read", "write")
	f.credential[keyAudit] = key(f.credential[auditor], "audit")
	// The issue answers once the api_keys read model holds the key, unless
	// that takes longer than the read-your-writes bound: make sure.
	for _, w := range []who{keyRead, keyWrite, keyAudit} {
		c := f.inst.Client(t)
		c.Token = f.credential[w]
		awaitStatus(t, c, map[who]int{keyRead: 200, keyWrite: 200, keyAudit: 403}[w], "GET", "/v1/auth/me")
	}

	// Read models: wait until they hold the fixture, and the task that
	// answered the message (whose id its reply names) is finished.
	f.ada.Must(http.StatusOK, "GET", "/v1/workspaces/"+f.workspace+"/members", nil, "Engram-Min-Position: "+last.Position())
	deadline := time.Now().Add(15 * time.Second)
	for f.task == "" {
		var page struct {
			Items []struct {
				Role     string            `json:"role"`
				Metadata map[string]string `json:"metadata"`
			} `json:"items"`
		}
		f.ada.Must(http.StatusOK, "GET", "/v1/conversations/"+f.conversation+"/messages", nil, "Engram-Min-Position: "+last.Position()).JSON(t, &page)
		for _, m := range page.Items {
			if m.Role == "assistant" && m.Metadata["task_id"] != "" {
				f.task = m.Metadata["task_id"]
			}
		}
		if f.task == "" && time.Now().After(deadline) {
			t.Fatal("no expert answered the fixture's message within 15s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	awaitStatus(t, f.ada, http.StatusConflict, "POST", "/v1/tasks/"+f.task+"/cancel")
	return f
}

// share gives the viewer and the editor their roles in workspace id.
func (f *authzFixture) share(t *testing.T, id string) {
	t.Helper()
	f.ada.Must(http.StatusCreated, "POST", "/v1/workspaces/"+id+"/members", map[string]any{"email": f.email[viewer], "role": "viewer"})
	f.ada.Must(http.StatusCreated, "POST", "/v1/workspaces/"+id+"/members", map[string]any{"email": f.email[editor], "role": "editor"})
}

// sharedWorkspace creates another workspace of Ada's, shared like the
// fixture's, for a request that would end it.
func (f *authzFixture) sharedWorkspace(t *testing.T) string {
	t.Helper()
	id := f.ada.Must(http.StatusCreated, "POST", "/v1/workspaces", map[string]any{"name": "Doomed"}).Map(t)["id"].(string)
	f.share(t, id)
	return id
}

// newUser registers a user who plays no part in the matrix.
func (f *authzFixture) newUser(t *testing.T) (id, email string) {
	t.Helper()
	email = "extra-" + uniqueSuffix() + "@example.com"
	r := f.inst.Client(t).Must(http.StatusCreated, "POST", "/v1/auth/register",
		map[string]string{"email": email, "password": enginetest.Password, "display_name": "Extra"})
	return r.Map(t)["id"].(string), email
}

// fill puts the fixture's ids into a route pattern.
func (f *authzFixture) fill(pattern string) string {
	path := pattern
	switch {
	case strings.HasPrefix(pattern, "/v1/workspaces/:id"):
		path = strings.Replace(path, ":id", f.workspace, 1)
	case strings.HasPrefix(pattern, "/v1/conversations/:id"):
		path = strings.Replace(path, ":id", f.conversation, 1)
	case strings.HasPrefix(pattern, "/v1/tasks/:id"):
		path = strings.Replace(path, ":id", f.task, 1)
	}
	return strings.Replace(path, ":stream_id", "workspace-"+f.workspace, 1)
}

// authzDo sends one request of the matrix and returns its status and a
// little of its body. A live stream is closed as soon as its status is
// known.
func authzDo(t *testing.T, inst *enginetest.Instance, method, path string, body any, credential string, stream bool) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(mustJSON(t, body)))
	}
	req, err := http.NewRequestWithContext(ctx, method, inst.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if stream && resp.StatusCode == http.StatusOK {
		checkContract(t, req, resp.StatusCode, resp.Header, nil)
		return resp.StatusCode, ""
	}
	b, _ := io.ReadAll(resp.Body)
	checkContract(t, req, resp.StatusCode, resp.Header, b)
	return resp.StatusCode, string(b[:min(len(b), 512)])
}

// checkContract fails the test when an answer departs from openapi.yaml.
func checkContract(t *testing.T, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	if err := enginetest.CheckContract(req, status, header, body); err != nil {
		t.Errorf("openapi.yaml contract: %s %s answered %d, which the document does not describe:\n  %v\n  body: %.512s",
			req.Method, req.URL.RequestURI(), status, err, body)
	}
}

// servedRoutes reads the routes the instance serves from its debug log
// (written within the log's flush interval).
func servedRoutes(t *testing.T, inst *enginetest.Instance) []string {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, line := range strings.Split(inst.Logs(), "\n") {
			var entry struct {
				Msg    string   `json:"msg"`
				Routes []string `json:"routes"`
			}
			if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "http routes" {
				if len(entry.Routes) == 0 {
					t.Fatal("the server logged no routes")
				}
				return entry.Routes
			}
		}
	}
	t.Fatal(`no "http routes" line in the debug log`)
	return nil
}
