package test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/engramhq/engram/audit"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/test/enginetest"
	"github.com/engramhq/engram/test/pgtest"
)

// auditScene starts an instance with a user, Ada, and an auditor, Aud, and
// opens its database.
func auditScene(t *testing.T) (*enginetest.Instance, *sql.DB, *enginetest.Client, *enginetest.Client) {
	t.Helper()
	inst := enginetest.Start(t, enginetest.Options{})
	db := openDB(t, inst.DatabaseURL)
	ada := inst.Signup(t, "Ada")
	aud := inst.Signup(t, "Aud")
	grant(t, inst, aud, "auditor")
	return inst, db, ada, aud
}

// grant gives c's user a global role with `engram user grant` and logs in
// again, so that the new token carries the role.
func grant(t *testing.T, inst *enginetest.Instance, c *enginetest.Client, role string) {
	t.Helper()
	email := emailOf(t, inst, c)
	if out, errOut, code := engramCLI(t, inst, "", "user", "grant", "--email", email, "--role", role); code != 0 {
		t.Fatalf("engram user grant: exit %d\n%s%s", code, out, errOut)
	}
	login := c.Must(http.StatusOK, "POST", "/v1/auth/login", map[string]string{"email": email, "password": enginetest.Password}).Map(t)
	c.Token = login["access_token"].(string)
}

// emailOf returns the e-mail address of c's user, from its registration
// in the log.
func emailOf(t *testing.T, inst *enginetest.Instance, c *enginetest.Client) string {
	t.Helper()
	db, err := sql.Open("postgres", inst.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var email string
	if err := db.QueryRow(`SELECT data->>'email' FROM events WHERE stream_id = $1 AND type = 'user.registered'`,
		"user-"+c.UserID).Scan(&email); err != nil {
		t.Fatalf("e-mail of %s: %v", c.UserID, err)
	}
	return email
}

// auditReads counts the audit.log_read events recorded for an actor.
func auditReads(t *testing.T, db *sql.DB, actorID string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM events WHERE stream_id = $1 AND type = 'audit.log_read'`, "audit-"+actorID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// lastAuditRead returns the data of the last audit.log_read of an actor.
func lastAuditRead(t *testing.T, db *sql.DB, actorID string) map[string]any {
	t.Helper()
	var raw []byte
	if err := db.QueryRow(`SELECT data FROM events WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1`, "audit-"+actorID).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// auditPage is a page of the audit API (audit.Page as it travels).
type auditPage struct {
	Items      []audit.Item `json:"items"`
	NextCursor string       `json:"next_cursor"`
}

// Who may read the audit log: auditors and admins, and their API keys with
// the audit scope. Everyone else is answered as the policy says.
func TestAuditAccess(t *testing.T) {
	inst := enginetest.Start(t, enginetest.Options{})
	db := openDB(t, inst.DatabaseURL)
	ada := inst.Signup(t, "Ada")
	aud := inst.Signup(t, "Aud")
	adm := inst.Signup(t, "Adm")
	grant(t, inst, aud, "auditor")
	grant(t, inst, adm, "admin")
	anon := inst.Client(t)

	userStream := "user-" + ada.UserID
	routes := []string{
		"/v1/audit/events",
		"/v1/audit/streams/" + userStream + "/events",
		"/v1/audit/streams/" + userStream + "/state",
		"/v1/audit/verify",
	}
	for _, path := range routes {
		for _, c := range []*enginetest.Client{ada, anon} {
			want := http.StatusNotFound
			if c == anon {
				want = http.StatusUnauthorized
			}
			r := c.Must(want, "GET", path, nil)
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
				t.Fatalf("%s: Content-Type %q", path, ct)
			}
		}
		aud.Must(http.StatusOK, "GET", path, nil)
		adm.Must(http.StatusOK, "GET", path, nil)
	}
	if n := auditReads(t, db, aud.UserID); n != len(routes) {
		t.Fatalf("auditor reads recorded: %d, want %d", n, len(routes))
	}
	if n := auditReads(t, db, ada.UserID); n != 0 {
		t.Fatalf("refused reads recorded: %d", n)
	}

	// API keys: an auditor's key with the audit scope reads; without it, the
	// policy decides.
	issue := func(scopes ...string) *enginetest.Client {
		t.Helper()
		r := aud.Must(http.StatusCreated, "POST", "/v1/api-keys", map[string]any{"name": "audit " + strings.Join(scopes, ","), "scopes": scopes})
		m := r.Map(t)
		keyClient := inst.Client(t)
		keyClient.Token, keyClient.UserID = m["key"].(string), aud.UserID
		// The key authenticates once its read model has it, and carries the
		// auditor role once the users read model has applied the grant.
		deadline := time.Now().Add(10 * time.Second)
		for st := keyClient.Do("GET", "/v1/audit/events?limit=1", nil).Status; st == http.StatusUnauthorized || st == http.StatusNotFound; st = keyClient.Do("GET", "/v1/audit/events?limit=1", nil).Status {
			if time.Now().After(deadline) {
				t.Fatal("the API key never authenticated")
			}
			time.Sleep(20 * time.Millisecond)
		}
		return keyClient
	}
	auditKey := issue("audit")
	r := auditKey.Must(http.StatusOK, "GET", "/v1/audit/events?limit=2", nil)
	var page auditPage
	r.JSON(t, &page)
	if len(page.Items) != 2 {
		t.Fatalf("key read %d items", len(page.Items))
	}
	read := lastAuditRead(t, db, aud.UserID)
	if read["key_id"] == nil || read["key_id"] == "" || read["via"] != "api" {
		t.Fatalf("key read recorded as %v", read)
	}
	readKey := issue("read")
	want := statusOf(access.CheckAudit(access.Actor{UserID: aud.UserID, Roles: []string{"user", "auditor"}, Scopes: []string{"read"}, KeyID: "k"}))
	for _, path := range routes {
		readKey.Must(want, "GET", path, nil)
	}
}

// statusOf is the HTTP status the API answers a policy decision with.
func statusOf(err error) int {
	switch domain.ErrorCode(err) {
	case "":
		return http.StatusOK
	case domain.CodeNotFound:
		return http.StatusNotFound
	case domain.CodeForbidden:
		return http.StatusForbidden
	case domain.CodeUnauthorized:
		return http.StatusUnauthorized
	}
	return http.StatusInternalServerError
}

// The event log API: filters, pages, NDJSON, validation, redaction, and a
// record of every read.
func TestAuditEventLogAPI(t *testing.T) {
	inst, db, ada, aud := auditScene(t)

	// Some history with every kind of secret: password hashes (register,
	// password change where available), refresh token hashes (login,
	// refresh) and key hashes (an API key).
	login := ada.Must(http.StatusOK, "POST", "/v1/auth/login", map[string]string{"email": emailOf(t, inst, ada), "password": enginetest.Password}).Map(t)
	ada.Must(http.StatusOK, "POST", "/v1/auth/refresh", map[string]any{"refresh_token": login["refresh_token"]})
	aud.Must(http.StatusCreated, "POST", "/v1/api-keys", map[string]any{"name": "ci", "scopes": []string{"audit", "read"}})
	ws := ada.Must(http.StatusCreated, "POST", "/v1/workspaces", map[string]any{"name": "Lab"}).Map(t)
	wsID := ws["id"].(string)
	ada.Must(http.StatusOK, "PATCH", "/v1/workspaces/"+wsID, map[string]any{"name": "Lab 2"})

	secrets := queryStrings(t, db, `SELECT s FROM events, LATERAL (VALUES (data->>'password_hash'), (data->>'refresh_token_hash'), (data->>'key_hash')) v(s) WHERE s <> ''`)
	if len(secrets) < 5 {
		t.Fatalf("expected secrets of several kinds in the log, found %d", len(secrets))
	}
	noSecret := func(what string, body []byte) {
		t.Helper()
		for _, s := range secrets {
			if bytes.Contains(body, []byte(s)) {
				t.Fatalf("%s shows a secret", what)
			}
		}
	}

	var all auditPage
	aud.Must(http.StatusOK, "GET", "/v1/audit/events?limit=1000", nil).JSON(t, &all)
	last := all.Items[len(all.Items)-1].GlobalPosition
	for i, it := range all.Items {
		if i > 0 && it.GlobalPosition <= all.Items[i-1].GlobalPosition {
			t.Fatal("items are not in position order")
		}
		if len(it.Hash) != 64 || (it.StreamVersion == 1) != (it.PrevHash == nil) || it.EventID == "" || it.SchemaVersion != 1 {
			t.Fatalf("item %+v", it)
		}
	}
	body, _ := json.Marshal(all)
	noSecret("the event list", body)

	// Filters, one at a time and together.
	count := func(query string) []audit.Item {
		t.Helper()
		var p auditPage
		aud.Must(http.StatusOK, "GET", "/v1/audit/events?"+query, nil).JSON(t, &p)
		noSecret(query, mustJSON(t, p))
		return p.Items
	}
	for _, it := range count("stream_type=workspace&to_position=" + strconv.FormatInt(last, 10)) {
		if it.StreamID != "workspace-"+wsID {
			t.Fatalf("stream_type filter returned %s", it.StreamID)
		}
	}
	if items := count("type=workspace.created,workspace.updated&type=session.refreshed"); len(items) != 3 {
		t.Fatalf("type filter: %d items", len(items))
	}
	if items := count("actor_id=" + ada.UserID + "&stream_type=workspace"); len(items) != 2 {
		t.Fatalf("actor filter: %d items", len(items))
	}
	if items := count(fmt.Sprintf("from_position=%d&to_position=%d", all.Items[1].GlobalPosition, all.Items[3].GlobalPosition)); len(items) != 3 {
		t.Fatalf("position filter: %d items", len(items))
	}
	at := all.Items[2].RecordedAt
	items := count("from=" + url.QueryEscape(at.Format(time.RFC3339Nano)) + "&to=" + url.QueryEscape(at.Add(time.Microsecond).Format(time.RFC3339Nano)))
	if len(items) == 0 || !slices.ContainsFunc(items, func(it audit.Item) bool { return it.EventID == all.Items[2].EventID }) {
		t.Fatalf("time filter: %+v", items)
	}

	// Pages follow the cursor to the same list.
	var paged []string
	next := ""
	for range 100 {
		var p auditPage
		aud.Must(http.StatusOK, "GET", fmt.Sprintf("/v1/audit/events?limit=3&to_position=%d&cursor=%s", last, next), nil).JSON(t, &p)
		for _, it := range p.Items {
			paged = append(paged, it.EventID)
		}
		if next = p.NextCursor; next == "" {
			break
		}
	}
	var whole []string
	for _, it := range all.Items {
		whole = append(whole, it.EventID)
	}
	if !slices.Equal(paged, whole) {
		t.Fatalf("paged %d ids, whole %d", len(paged), len(whole))
	}

	// One stream, JSON and NDJSON.
	var stream auditPage
	aud.Must(http.StatusOK, "GET", "/v1/audit/streams/workspace-"+wsID+"/events", nil).JSON(t, &stream)
	if len(stream.Items) != 2 || stream.Items[1].StreamVersion != 2 || *stream.Items[1].PrevHash != stream.Items[0].Hash {
		t.Fatalf("stream events = %+v", stream.Items)
	}
	r := aud.Must(http.StatusOK, "GET", "/v1/audit/events?to_position="+strconv.FormatInt(last, 10), nil, "Accept: application/x-ndjson")
	if ct := r.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Fatalf("Content-Type %q", ct)
	}
	noSecret("the NDJSON export", r.Body)
	lines := bytes.Split(bytes.TrimSpace(r.Body), []byte("\n"))
	if len(lines) != len(all.Items) {
		t.Fatalf("NDJSON lines %d, want %d", len(lines), len(all.Items))
	}
	for i, line := range lines {
		var it audit.Item
		if err := json.Unmarshal(line, &it); err != nil || !reflect.DeepEqual(it, all.Items[i]) {
			t.Fatalf("line %d = %s (%v), want %+v", i, line, err, all.Items[i])
		}
	}
	r = aud.Must(http.StatusOK, "GET", "/v1/audit/streams/workspace-"+wsID+"/events", nil, "Accept: application/x-ndjson")
	if n := bytes.Count(r.Body, []byte("\n")); n != 2 {
		t.Fatalf("stream NDJSON lines %d", n)
	}
	aud.Must(http.StatusNotFound, "GET", "/v1/audit/streams/workspace-"+uuid.NewString()+"/events", nil)
	aud.Must(http.StatusNotFound, "GET", "/v1/audit/streams/workspace-"+uuid.NewString()+"/events", nil, "Accept: application/x-ndjson")

	// Bad filters: every bad field is listed, and nothing is recorded.
	before := auditReads(t, db, aud.UserID)
	bad := "/v1/audit/events?from_position=x&to_position=0&stream_type=a%20b&type=&actor_id=" + strings.Repeat("a", 300) +
		"&from=yesterday&to=2026-13-01&cursor=zzz&limit=5000&colour=red&stream_id=1&stream_id=2"
	p := aud.Must(http.StatusUnprocessableEntity, "GET", bad, nil).Map(t)
	fields := map[string]bool{}
	for _, e := range p["errors"].([]any) {
		fields[e.(map[string]any)["field"].(string)] = true
	}
	for _, f := range []string{"from_position", "to_position", "stream_type", "type", "actor_id", "from", "to", "cursor", "limit", "colour", "stream_id"} {
		if !fields[f] {
			t.Errorf("the problem does not name %q: %v", f, p["errors"])
		}
	}
	aud.Must(http.StatusUnprocessableEntity, "GET", "/v1/audit/events?from_position=9&to_position=3", nil)
	aud.Must(http.StatusUnprocessableEntity, "GET", "/v1/audit/events?limit=0", nil, "Accept: application/x-ndjson")
	aud.Must(http.StatusUnprocessableEntity, "GET", "/v1/audit/streams/user-"+ada.UserID+"/state?version=0&at=now", nil)
	aud.Must(http.StatusUnprocessableEntity, "GET", "/v1/audit/verify?stream=x", nil)
	if after := auditReads(t, db, aud.UserID); after != before {
		t.Fatalf("refused reads were recorded: %d", after-before)
	}

	// Every read the auditor made left an event with the filter and count.
	reads := auditReads(t, db, aud.UserID)
	wantReads := 1 + 5 + len(paged)/3 + 1 + 1 + 2
	if reads < wantReads-1 || reads > wantReads {
		t.Fatalf("recorded reads %d, want about %d", reads, wantReads)
	}
	aud.Must(http.StatusOK, "GET", "/v1/audit/events?stream_type=workspace&type=workspace.updated", nil)
	rec := lastAuditRead(t, db, aud.UserID)
	filter, _ := rec["filter"].(map[string]any)
	if rec["operation"] != "events" || rec["result_count"] != float64(1) || rec["actor_id"] != aud.UserID ||
		filter["stream_type"] != "workspace" || fmt.Sprint(filter["type"]) != "[workspace.updated]" || rec["session_id"] == "" {
		t.Fatalf("recorded read = %v", rec)
	}
	// Auditing the auditors: the records are readable like any event.
	var own auditPage
	aud.Must(http.StatusOK, "GET", "/v1/audit/events?stream_type=audit&actor_id="+aud.UserID+"&limit=1000", nil).JSON(t, &own)
	if len(own.Items) != reads+1 || own.Items[0].Type != "audit.log_read" {
		t.Fatalf("audit stream: %d items, want %d", len(own.Items), reads+1)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A snapshot of what the API showed right after a change.
type shown struct {
	// changed is the stream version the change wrote (its ETag); before is
	// a time just before the change was sent.
	changed int
	before  time.Time
	// body is the resource as the API then showed it, and members the
	// workspace's members.
	body    map[string]any
	members []any
}

// The state folded as of a version, or a time, equals what the API showed
// at that moment. Other writers (the router, which decides on every
// message) may append to the same streams meanwhile: what the API showed
// is compared with the state at the version the API showed.
func TestAuditStateAsItWasMatchesWhatTheAPIShowed(t *testing.T) {
	inst := enginetest.Start(t, enginetest.Options{})
	ada := inst.Signup(t, "Ada")
	bob := inst.Signup(t, "Bob")
	aud := inst.Signup(t, "Aud")
	grant(t, inst, aud, "auditor")

	// change sends a command (again while another writer changed the
	// stream at the same time, as a client would) and captures what the API
	// shows once its read model has applied the change.
	change := func(want int, method, path string, body any, read string, withMembers bool) (shown, map[string]any) {
		t.Helper()
		s := shown{before: time.Now().UTC()}
		r := ada.Do(method, path, body)
		for tries := 0; r.Status == http.StatusConflict && tries < 20; tries++ {
			r = ada.Do(method, path, body)
		}
		if r.Status != want {
			t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Body)
		}
		var err error
		if s.changed, err = strconv.Atoi(strings.Trim(r.Header.Get("ETag"), `"`)); err != nil {
			t.Fatalf("ETag %q", r.Header.Get("ETag"))
		}
		answer := r.Map(t)
		if read == "" {
			read = "/v1/" + map[bool]string{true: "workspaces", false: "conversations"}[withMembers] + "/" + answer["id"].(string)
		}
		s.body = ada.Must(http.StatusOK, "GET", read, nil, "Engram-Min-Position: "+r.Position()).Map(t)
		if withMembers {
			var m struct {
				Items []any `json:"items"`
			}
			ada.Must(http.StatusOK, "GET", read+"/members", nil, "Engram-Min-Position: "+r.Position()).JSON(t, &m)
			s.members = m.Items
		}
		return s, answer
	}
	var wsShown, convShown []shown
	s, ws := change(http.StatusCreated, "POST", "/v1/workspaces", map[string]any{"name": "Lab", "description": "first", "config": map[string]any{"tone": "dry"}}, "", true)
	wsID := ws["id"].(string)
	wsPath := "/v1/workspaces/" + wsID
	wsShown = append(wsShown, s)
	s, _ = change(http.StatusOK, "PATCH", wsPath, map[string]any{"name": "Lab 2", "config": map[string]any{"tone": "warm", "n": 2}}, wsPath, true)
	wsShown = append(wsShown, s)
	s, _ = change(http.StatusCreated, "POST", wsPath+"/members", map[string]any{"user_id": bob.UserID, "role": "editor"}, wsPath, true)
	wsShown = append(wsShown, s)

	s, conv := change(http.StatusCreated, "POST", wsPath+"/conversations", map[string]any{"title": "Kickoff", "metadata": map[string]any{"k": 1}}, "", false)
	convID := conv["id"].(string)
	convPath := "/v1/conversations/" + convID
	convShown = append(convShown, s)
	for _, content := range []string{"one", "two"} {
		s, _ = change(http.StatusCreated, "POST", convPath+"/messages", map[string]any{"content": content}, convPath, false)
		convShown = append(convShown, s)
	}
	s, _ = change(http.StatusOK, "PATCH", convPath, map[string]any{"title": "Kickoff, renamed", "metadata": map[string]any{"k": nil, "j": "x"}}, convPath, false)
	convShown = append(convShown, s)
	s, _ = change(http.StatusOK, "PATCH", wsPath, map[string]any{"description": "second"}, wsPath, true)
	wsShown = append(wsShown, s)

	state := func(streamID, query string) map[string]any {
		t.Helper()
		return aud.Must(http.StatusOK, "GET", "/v1/audit/streams/"+streamID+"/state?"+query, nil).Map(t)
	}
	same := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: state %v, API showed %v", what, got, want)
		}
	}
	// check compares the states folded as of the version the API showed,
	// and as of that version's recording time, with what it showed; and the
	// state as of a time just before the change with what preceded it.
	check := func(kind, streamID string, s shown, fields []string) map[string]any {
		t.Helper()
		version := int(s.body["version"].(float64))
		if version < s.changed {
			t.Fatalf("%s: the API showed version %d after the change wrote %d", kind, version, s.changed)
		}
		byVersion := state(streamID, fmt.Sprintf("version=%d", version))
		byTime := state(streamID, "at="+url.QueryEscape(byVersion["recorded_at"].(string)))
		for _, got := range []map[string]any{byVersion, byTime} {
			what := fmt.Sprintf("%s v%d", kind, version)
			same(what+" version", got["version"], float64(version))
			st := got["state"].(map[string]any)
			for _, f := range fields {
				same(what+" "+f, st[f], s.body[f])
			}
		}
		before := "at=" + url.QueryEscape(s.before.Format(time.RFC3339Nano))
		if s.changed == 1 {
			// Created: the stream did not exist before.
			aud.Must(http.StatusNotFound, "GET", "/v1/audit/streams/"+streamID+"/state?"+before, nil)
			return byVersion["state"].(map[string]any)
		}
		if v := int(state(streamID, before)["version"].(float64)); v >= s.changed {
			t.Fatalf("%s: state just before the change is at version %d, the change wrote %d", kind, v, s.changed)
		}
		return byVersion["state"].(map[string]any)
	}
	for _, s := range wsShown {
		st := check("workspace", "workspace-"+wsID, s, []string{"name", "description", "config", "archived", "owner_id"})
		roles := map[any]any{}
		for _, m := range s.members {
			roles[m.(map[string]any)["user_id"]] = m.(map[string]any)["role"]
		}
		stRoles := map[any]any{}
		for _, m := range st["members"].([]any) {
			stRoles[m.(map[string]any)["user_id"]] = m.(map[string]any)["role"]
		}
		same("workspace members", stRoles, roles)
	}
	for _, s := range convShown {
		check("conversation", "conversation-"+convID, s, []string{"title", "modality", "metadata", "archived", "message_count", "workspace_id", "created_by"})
	}

	// The command line folds the same state.
	out, errOut, code := engramCLI(t, inst, "", "audit", "state", "conversation-"+convID, "--version", "2")
	if code != 0 {
		t.Fatalf("engram audit state: exit %d: %s", code, errOut)
	}
	var cli map[string]any
	if err := json.Unmarshal([]byte(out), &cli); err != nil {
		t.Fatalf("engram audit state printed %q: %v", out, err)
	}
	same("CLI state", cli, state("conversation-"+convID, "version=2"))

	// Beyond the stream, before it, unknown: refused.
	aud.Must(http.StatusUnprocessableEntity, "GET", "/v1/audit/streams/conversation-"+convID+"/state?version=99", nil)
	aud.Must(http.StatusNotFound, "GET", "/v1/audit/streams/conversation-"+convID+"/state?at=2001-01-01T00:00:00Z", nil)
	aud.Must(http.StatusNotFound, "GET", "/v1/audit/streams/conversation-"+uuid.NewString()+"/state", nil)
	if _, _, code := engramCLI(t, inst, "", "audit", "state", "conversation-"+convID, "--version", "99"); code == 0 {
		t.Fatal("engram audit state beyond the stream exited 0")
	}

	// No secret in any state.
	for _, id := range []string{"user-" + ada.UserID} {
		st := state(id, "")["state"].(map[string]any)
		if _, ok := st["password_hash"]; ok || st["email"] == "" {
			t.Fatalf("user state = %v", st)
		}
	}
}

// Tampering with the log is found: a changed event is reported at exactly
// its stream and version, a deleted one as a gap; the CLI exits non-zero.
func TestAuditVerifyFindsTampering(t *testing.T) {
	inst, db, ada, aud := auditScene(t)
	wsID := ada.Must(http.StatusCreated, "POST", "/v1/workspaces", map[string]any{"name": "Lab"}).Map(t)["id"].(string)
	ada.Must(http.StatusOK, "PATCH", "/v1/workspaces/"+wsID, map[string]any{"name": "Lab 2"})
	ada.Must(http.StatusOK, "PATCH", "/v1/workspaces/"+wsID, map[string]any{"name": "Lab 3"})
	convID := ada.Must(http.StatusCreated, "POST", "/v1/workspaces/"+wsID+"/conversations", map[string]any{"title": "T"}).Map(t)["id"].(string)
	for _, content := range []string{"a", "b", "c"} {
		ada.Must(http.StatusCreated, "POST", "/v1/conversations/"+convID+"/messages", map[string]any{"content": content})
	}

	type verifyAnswer struct {
		OK      bool               `json:"ok"`
		Streams int64              `json:"streams_checked"`
		Events  int64              `json:"events_checked"`
		Found   int64              `json:"breaks_found"`
		Breaks  []eventstore.Break `json:"breaks"`
	}
	var v verifyAnswer
	aud.Must(http.StatusOK, "GET", "/v1/audit/verify", nil).JSON(t, &v)
	if !v.OK || v.Found != 0 || v.Events < 10 || v.Streams < 6 {
		t.Fatalf("intact log: %+v", v)
	}
	out, errOut, code := engramCLI(t, inst, "", "audit", "verify")
	if code != 0 || !strings.Contains(out, "no breaks") {
		t.Fatalf("engram audit verify on an intact log: exit %d\n%s%s", code, out, errOut)
	}

	// Tamper as a database superuser would, with the immutability trigger off.
	wsStream, convStream := "workspace-"+wsID, "conversation-"+convID
	var deletedNext int64
	if err := db.QueryRow(`SELECT global_position FROM events WHERE stream_id = $1 AND stream_version = 4`, convStream).Scan(&deletedNext); err != nil {
		t.Fatal(err)
	}
	pgtest.AsSuperuser(t, db,
		`UPDATE events SET data = jsonb_set(data, '{name}', '"Forged"') WHERE stream_id = '`+wsStream+`' AND stream_version = 2`,
		`DELETE FROM events WHERE stream_id = '`+convStream+`' AND stream_version = 3`)

	v = verifyAnswer{}
	aud.Must(http.StatusOK, "GET", "/v1/audit/verify", nil).JSON(t, &v)
	want := []eventstore.Break{
		{StreamID: convStream, Version: 3, Position: deletedNext, Reason: "missing version"},
		{StreamID: convStream, Version: 4, Position: deletedNext, Reason: "prev_hash mismatch"},
		{StreamID: wsStream, Version: 2, Reason: "hash mismatch"},
	}
	byStreamVersion := func(a, b eventstore.Break) int {
		return strings.Compare(fmt.Sprintf("%s %09d", a.StreamID, a.Version), fmt.Sprintf("%s %09d", b.StreamID, b.Version))
	}
	slices.SortFunc(v.Breaks, byStreamVersion)
	slices.SortFunc(want, byStreamVersion)
	if v.OK || v.Found != 3 || len(v.Breaks) != 3 {
		t.Fatalf("tampered log: %+v", v)
	}
	for i, b := range v.Breaks {
		w := want[i]
		if b.StreamID != w.StreamID || b.Version != w.Version || b.Reason != w.Reason || (w.Position != 0 && b.Position != w.Position) || b.Position == 0 {
			t.Fatalf("break %d = %+v, want %+v", i, b, w)
		}
	}
	var one verifyAnswer
	aud.Must(http.StatusOK, "GET", "/v1/audit/verify?stream_id="+wsStream, nil).JSON(t, &one)
	if one.OK || one.Streams != 1 || len(one.Breaks) != 1 || one.Breaks[0].Version != 2 {
		t.Fatalf("one stream: %+v", one)
	}

	out, _, code = engramCLI(t, inst, "", "audit", "verify")
	if code == 0 || !strings.Contains(out, "stream="+wsStream+" version=2 ") || !strings.Contains(out, "stream="+convStream+" version=3 ") ||
		!strings.Contains(out, "3 breaks") {
		t.Fatalf("engram audit verify on a tampered log: exit %d\n%s", code, out)
	}
	out, _, code = engramCLI(t, inst, "", "audit", "verify", "--stream", "user-"+ada.UserID)
	if code != 0 || !strings.Contains(out, "checked 1 streams") {
		t.Fatalf("engram audit verify --stream on an intact stream: exit %d\n%s", code, out)
	}
	if _, _, code = engramCLI(t, inst, "", "audit", "verify", "--stream", convStream); code != 1 {
		t.Fatalf("engram audit verify --stream on a broken stream: exit %d", code)
	}
	// Each verification, API and CLI, was recorded.
	if n := auditReads(t, db, aud.UserID); n != 3 {
		t.Fatalf("API verifications recorded: %d", n)
	}
	var cliReads int
	if err := db.QueryRow(`SELECT count(*) FROM events WHERE stream_type = 'audit' AND data->>'via' = 'cli' AND data->>'operation' = 'verify'`).Scan(&cliReads); err != nil || cliReads != 4 {
		t.Fatalf("CLI verifications recorded: %d, %v", cliReads, err)
	}
}

// rss reads the server's resident memory from its metrics.
func rss(t *testing.T, inst *enginetest.Instance) float64 {
	t.Helper()
	r := inst.Client(t).Must(http.StatusOK, "GET", "/metrics", nil)
	for _, line := range strings.Split(string(r.Body), "\n") {
		if v, ok := strings.CutPrefix(line, "process_resident_memory_bytes "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatal("no process_resident_memory_bytes in /metrics")
	return 0
}

// An NDJSON export of 100,000 events streams: the client reads it line by
// line as it comes, and the server's memory stays bounded.
func TestAuditNDJSONExportStreamsInBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 100,000 events")
	}
	// The projectors have nothing to do with the probe events written
	// below, straight into the database (which notifies no one): with a long
	// poll interval they stay idle rather than compete for the CPU while the
	// export is measured. Nothing here reads a read model.
	inst := enginetest.Start(t, enginetest.Options{Env: map[string]string{"ENGRAM_PROJECTION_POLL_INTERVAL": "1h"}})
	aud := inst.Signup(t, "Aud")
	grant(t, inst, aud, "auditor")

	const total, streams = 100_000, 20
	db, err := sqlx.Open("postgres", inst.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	secret := "$argon2id$v=19$m=65536,t=1,p=2$bG9hZA$c2VjcmV0c2VjcmV0"
	// The events are written in one statement: what is measured is the
	// export, and hashing 100,000 events through Store.Append in a test
	// binary built with -race takes far longer than the export itself. Their
	// hashes are placeholders (this test verifies no chain).
	start := time.Now()
	if _, err := db.ExecContext(ctx, `INSERT INTO events (event_id, stream_id, stream_type, stream_version, type,
			schema_version, data, metadata, recorded_at, prev_hash, hash)
		SELECT gen_random_uuid(), 'probe-' || s, 'probe', v, 'probe.sampled', 1,
			jsonb_build_object('stream', s, 'n', v, 'reading', repeat('x', 64), 'password_hash', $1::text),
			'{"actor_id": "probe"}', clock_timestamp(),
			CASE WHEN v > 1 THEN sha256(convert_to(s || '/' || (v - 1), 'UTF8')) END,
			sha256(convert_to(s || '/' || v, 'UTF8'))
		FROM generate_series(1, $2::int) AS s, generate_series(1, $3::int) AS v
		ORDER BY v, s`, secret, streams, total/streams); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d events in %s", total, time.Since(start).Round(time.Millisecond))

	before := rss(t, inst)
	req, err := http.NewRequestWithContext(ctx, "GET", inst.URL+"/v1/audit/events?stream_type=probe", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+aud.Token)
	req.Header.Set("Accept", "application/x-ndjson")
	start = time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var (
		lines     int
		lastPos   int64
		peak      = before
		firstLine time.Duration
		bytesRead int64
	)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if lines == 0 {
			firstLine = time.Since(start)
		}
		line := sc.Bytes()
		bytesRead += int64(len(line)) + 1
		// Lines start with the position: read it without decoding the line.
		rest, ok := bytes.CutPrefix(line, []byte(`{"global_position":`))
		end := bytes.IndexByte(rest, ',')
		if !ok || end < 0 {
			t.Fatalf("line %d: %.80s", lines, line)
		}
		pos, err := strconv.ParseInt(string(rest[:end]), 10, 64)
		if err != nil || pos <= lastPos {
			t.Fatalf("line %d: position %s after %d", lines, rest[:end], lastPos)
		}
		if bytes.Contains(line, []byte(secret)) {
			t.Fatalf("line %d shows a secret", lines)
		}
		lastPos = pos
		lines++
		if lines%20_000 == 0 {
			peak = max(peak, rss(t, inst))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	peak = max(peak, rss(t, inst))
	t.Logf("streamed %d events (%.1f MB) in %s, first line after %s; server RSS %.1f MB before, peak %.1f MB",
		lines, float64(bytesRead)/1e6, elapsed.Round(time.Millisecond), firstLine.Round(time.Millisecond), before/1e6, peak/1e6)
	if lines != total {
		t.Fatalf("streamed %d events, want %d", lines, total)
	}
	// The export is ~35 MB of JSON; holding it, or its events, in memory
	// would grow the server by far more than this.
	if growth := peak - before; growth > 32<<20 {
		t.Fatalf("server RSS grew by %.1f MB during the export", growth/1e6)
	}
	if firstLine > elapsed/4 {
		t.Fatalf("the first line came after %s of %s: the answer is not streamed", firstLine, elapsed)
	}
	// The read was recorded, with its count.
	var count string
	if err := db.QueryRow(`SELECT data->>'result_count' FROM events WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1`,
		"audit-"+aud.UserID).Scan(&count); err != nil || count != strconv.Itoa(total) {
		t.Fatalf("recorded count %q, %v", count, err)
	}
}

// `engram audit export` writes the API's items, secrets removed, with a
// progress bar on standard error; every CLI read is recorded.
func TestAuditCLIExport(t *testing.T) {
	inst, db, ada, aud := auditScene(t)
	wsID := ada.Must(http.StatusCreated, "POST", "/v1/workspaces", map[string]any{"name": "Lab"}).Map(t)["id"].(string)
	last := ada.Must(http.StatusOK, "PATCH", "/v1/workspaces/"+wsID, map[string]any{"name": "Lab 2"}).Position()

	var page auditPage
	aud.Must(http.StatusOK, "GET", "/v1/audit/events?to_position="+last, nil).JSON(t, &page)
	out, errOut, code := engramCLI(t, inst, "", "audit", "export", "--from", "1", "--to", last)
	if code != 0 {
		t.Fatalf("engram audit export: exit %d\n%s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(page.Items) {
		t.Fatalf("exported %d lines, the API listed %d", len(lines), len(page.Items))
	}
	for i, line := range lines {
		var it audit.Item
		if err := json.Unmarshal([]byte(line), &it); err != nil || !reflect.DeepEqual(it, page.Items[i]) {
			t.Fatalf("line %d = %s (%v), want %+v", i, line, err, page.Items[i])
		}
		if strings.Contains(line, "$argon2id$") {
			t.Fatalf("line %d shows a password hash", i)
		}
	}
	if !strings.Contains(errOut, "exporting") || !strings.Contains(errOut, fmt.Sprintf("exported %d events", len(lines))) {
		t.Fatalf("standard error has no progress or summary:\n%s", errOut)
	}

	// Times, types and a file; bad flags are refused with every problem.
	file := t.TempDir() + "/grants.ndjson"
	from := page.Items[0].RecordedAt.Format(time.RFC3339Nano)
	if _, errOut, code := engramCLI(t, inst, "", "audit", "export", "--from", from, "--type", "user.role_granted", "-o", file, "--no-progress"); code != 0 {
		t.Fatalf("export to a file: exit %d\n%s", code, errOut)
	}
	written, err := os.ReadFile(file)
	if err != nil || bytes.Count(written, []byte("\n")) != 1 || !bytes.Contains(written, []byte(`"role":"auditor"`)) {
		t.Fatalf("export of the grants = %s, %v", written, err)
	}
	_, errOut, code = engramCLI(t, inst, "", "audit", "export", "--from", "yesterday", "--to", "0", "--stream-type", "a b")
	if code != 2 || !strings.Contains(errOut, "--from") || !strings.Contains(errOut, "--to") {
		t.Fatalf("bad flags: exit %d\n%s", code, errOut)
	}

	var (
		reads                     []string
		stream, op, count, filter string
	)
	eachRow(t, db, `SELECT stream_id, data->>'operation', data->>'result_count', data->>'filter' FROM events
		WHERE stream_type = 'audit' AND data->>'via' = 'cli' ORDER BY global_position`, nil, []any{&stream, &op, &count, &filter}, func() {
		if !strings.HasPrefix(stream, "audit-cli:") {
			t.Fatalf("CLI read recorded in %s", stream)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(filter), &m); err != nil {
			t.Fatal(err)
		}
		reads = append(reads, op+" "+count+" "+string(mustJSON(t, m)))
	})
	want := []string{
		fmt.Sprintf(`export %d {"from_position":1,"to_position":%s}`, len(lines), last),
		fmt.Sprintf(`export 1 {"from":"%s","type":["user.role_granted"]}`, page.Items[0].RecordedAt.Format(time.RFC3339Nano)),
	}
	if !slices.Equal(reads, want) {
		t.Fatalf("CLI reads recorded:\n%s\nwant:\n%s", strings.Join(reads, "\n"), strings.Join(want, "\n"))
	}
}
