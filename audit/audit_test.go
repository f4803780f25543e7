package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/engramhq/engram/audit"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/auditlog"
	"github.com/engramhq/engram/domain/domaintest"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/test/pgtest"
)

// clock is a settable clock for recorded_at.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

type fixture struct {
	store *eventstore.Store
	svc   *audit.Service
	clock *clock
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	c := &clock{t: t0}
	db, store := pgtest.NewStore(t, eventstore.WithClock(c.now))
	svc, err := audit.New(db, store)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{store: store, svc: svc, clock: c}
}

func (f *fixture) append(t *testing.T, streamType, id string, expected int, actor string, events ...[2]string) []eventstore.Event {
	t.Helper()
	var batch []eventstore.NewEvent
	for _, e := range events {
		batch = append(batch, eventstore.NewEvent{ID: uuid.NewString(), Type: e[0], Data: json.RawMessage(e[1])})
	}
	res, err := f.store.Append(context.Background(), eventstore.Stream{ID: streamType + "-" + id, Type: streamType}, expected, batch,
		eventstore.Metadata{ActorID: actor, RequestID: "req-" + actor})
	if err != nil {
		t.Fatalf("append %s-%s: %v", streamType, id, err)
	}
	return res.Events
}

var auditor = audit.Reader{ActorID: "auditor-1", Via: auditlog.ViaAPI, SessionID: "s-1", RequestID: "r-1"}

// reads returns the audit.log_read events recorded for actor, in order.
func (f *fixture) reads(t *testing.T, actor string) []auditlog.LogRead {
	t.Helper()
	events, err := f.store.ReadStream(context.Background(), auditlog.StreamID(actor), 0)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]auditlog.LogRead, len(events))
	for i, e := range events {
		d, err := auditlog.Decode(e.Type, e.SchemaVersion, e.Data)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = d.(auditlog.LogRead)
		if e.Metadata.ActorID != actor {
			t.Fatalf("record metadata = %+v", e.Metadata)
		}
	}
	return out
}

const (
	uid         = "0190a000-0000-7000-8000-000000000001"
	pwHash      = "$argon2id$v=19$m=65536,t=1,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
	refreshHash = "f00dfeedf00dfeedf00dfeedf00dfeed"
	keyHash     = "beefbeefbeefbeefbeefbeefbeefbeef"
)

// seed writes a small history: a user (registered, granted auditor), a
// session, an API key, a workspace and an event of a type no aggregate
// knows, at distinct times.
func (f *fixture) seed(t *testing.T) {
	t.Helper()
	f.append(t, "user", uid, 0, uid, [2]string{"user.registered",
		`{"user_id":"` + uid + `","email":"ada@example.com","display_name":"Ada","password_hash":"` + pwHash + `","role":"user"}`})
	f.clock.set(t0.Add(time.Minute))
	f.append(t, "session", "s1", 0, uid, [2]string{"session.started",
		`{"session_id":"s1","user_id":"` + uid + `","refresh_token_hash":"` + refreshHash + `","user_agent":"curl","ip":"127.0.0.1","expires_at":"2026-04-01T00:00:00Z"}`})
	f.clock.set(t0.Add(2 * time.Minute))
	f.append(t, "user", uid, 1, "admin-1", [2]string{"user.role_granted", `{"role":"auditor"}`})
	f.clock.set(t0.Add(3 * time.Minute))
	f.append(t, "apikey", "k1", 0, uid, [2]string{"apikey.issued",
		`{"key_id":"k1","user_id":"` + uid + `","name":"ci","scopes":["audit"],"key_hash":"` + keyHash + `","prefix":"sk-ab","expires_at":null}`})
	f.clock.set(t0.Add(4 * time.Minute))
	f.append(t, "workspace", "w1", 0, uid,
		[2]string{"workspace.created", `{"workspace_id":"w1","owner_id":"` + uid + `","name":"Lab","description":"","config":{}}`},
		[2]string{"workspace.member_added", `{"user_id":"u2","role":"viewer"}`})
	f.clock.set(t0.Add(5 * time.Minute))
	f.append(t, "gadget", "g1", 0, uid, [2]string{"gadget.tuned", `{"dial":11,"nested":{"secret":"s3cr3t","password_hash":"` + pwHash + `"}}`})
}

func positions(items []audit.Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.StreamID + "@" + fmt.Sprint(it.StreamVersion)
	}
	return out
}

func TestEventsFilters(t *testing.T) {
	f := newFixture(t)
	f.seed(t)
	ctx := context.Background()
	all := []string{"user-" + uid + "@1", "session-s1@1", "user-" + uid + "@2", "apikey-k1@1", "workspace-w1@1", "workspace-w1@2", "gadget-g1@1"}
	cases := []struct {
		name   string
		filter audit.Filter
		want   []string
	}{
		{"everything", audit.Filter{}, all},
		{"positions", audit.Filter{FromPosition: 2, ToPosition: 4}, all[1:4]},
		{"stream", audit.Filter{StreamID: "user-" + uid}, []string{all[0], all[2]}},
		{"stream type", audit.Filter{StreamType: "workspace"}, all[4:6]},
		{"one type", audit.Filter{Types: []string{"user.role_granted"}}, all[2:3]},
		{"types", audit.Filter{Types: []string{"session.started", "gadget.tuned"}}, []string{all[1], all[6]}},
		{"actor", audit.Filter{ActorID: "admin-1"}, all[2:3]},
		{"time range", audit.Filter{From: t0.Add(time.Minute), To: t0.Add(3 * time.Minute)}, all[1:3]},
		{"everything at once", audit.Filter{FromPosition: 1, ToPosition: 7, StreamType: "user", Types: []string{"user.role_granted"},
			ActorID: "admin-1", From: t0, To: t0.Add(time.Hour)}, all[2:3]},
		{"nothing", audit.Filter{StreamType: "conversation"}, []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			page, err := f.svc.Events(ctx, auditor, audit.Query{Filter: tc.filter})
			if err != nil {
				t.Fatal(err)
			}
			if got := positions(page.Items); !slices.Equal(got, tc.want) || page.NextCursor != "" {
				t.Fatalf("items = %v (next %q), want %v", got, page.NextCursor, tc.want)
			}
		})
	}
	if n := len(f.reads(t, auditor.ActorID)); n != len(cases) {
		t.Fatalf("%d reads recorded, want %d", n, len(cases))
	}
}

func TestEventsPagination(t *testing.T) {
	f := newFixture(t)
	f.seed(t)
	ctx := context.Background()
	// Reads add audit events to the log: bound the filters to the seed.
	for _, filter := range []audit.Filter{{ToPosition: 7}, {StreamID: "workspace-w1"}, {FromPosition: 2, ToPosition: 7}} {
		var got []string
		q := audit.Query{Filter: filter, Limit: 2}
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("pagination does not end")
			}
			page, err := f.svc.Events(ctx, auditor, q)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, positions(page.Items)...)
			if page.NextCursor == "" {
				break
			}
			if len(page.Items) != 2 {
				t.Fatalf("a page with a next cursor has %d items", len(page.Items))
			}
			q.Cursor = page.NextCursor
		}
		whole, err := f.svc.Events(ctx, auditor, audit.Query{Filter: filter})
		if err != nil {
			t.Fatal(err)
		}
		if want := positions(whole.Items); !slices.Equal(got, want) {
			t.Fatalf("filter %+v: pages %v, whole %v", filter, got, want)
		}
	}
}

func TestEventsValidationListsEveryBadField(t *testing.T) {
	f := newFixture(t)
	_, err := f.svc.Events(context.Background(), auditor, audit.Query{
		Filter: audit.Filter{FromPosition: 9, ToPosition: 3, StreamID: "a b", StreamType: strings.Repeat("x", 300),
			Types: []string{""}, ActorID: "a\x00", From: t0, To: t0},
		Cursor: "not-a-cursor", Limit: 5000,
	})
	fields := domaintest.InvalidFields(t, err)
	want := []string{"to_position", "stream_id", "stream_type", "actor_id", "type", "to", "cursor", "limit"}
	if !slices.Equal(fields, want) {
		t.Fatalf("fields = %v, want %v", fields, want)
	}
	if n := len(f.reads(t, auditor.ActorID)); n != 0 {
		t.Fatalf("a refused read was recorded %d times", n)
	}
}

func TestEventsLeaveNoSecret(t *testing.T) {
	f := newFixture(t)
	f.seed(t)
	ctx := context.Background()
	page, err := f.svc.Events(ctx, auditor, audit.Query{})
	if err != nil {
		t.Fatal(err)
	}
	var exported strings.Builder
	if _, err := f.svc.Export(ctx, auditor, audit.Query{}, func(it audit.Item) error {
		return json.NewEncoder(&exported).Encode(it)
	}); err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(page.Items)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{string(raw), exported.String()} {
		for _, secret := range []string{pwHash, refreshHash, keyHash, "s3cr3t"} {
			if strings.Contains(out, secret) {
				t.Fatalf("a secret left the server: %s", secret)
			}
		}
	}
	byType := map[string]map[string]any{}
	for _, it := range page.Items {
		var m map[string]any
		if err := json.Unmarshal(it.Data, &m); err != nil {
			t.Fatal(err)
		}
		byType[it.Type] = m
		if len(it.Hash) != 64 || (it.StreamVersion == 1) != (it.PrevHash == nil) {
			t.Fatalf("hashes of %s: %q, %v", it.Type, it.Hash, it.PrevHash)
		}
	}
	if m := byType["user.registered"]; m["email"] != "ada@example.com" || m["password_hash"] != "" {
		t.Fatalf("user.registered = %v", m)
	}
	if m := byType["gadget.tuned"]; m["dial"] != float64(11) || m["nested"].(map[string]any)["secret"] != "" {
		t.Fatalf("unknown event = %v", m)
	}
}

func TestExportPagesThroughTheLogAndIsRecorded(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const n = 2500
	batch := make([][2]string, 0, n)
	for i := range n {
		batch = append(batch, [2]string{"gadget.counted", fmt.Sprintf(`{"i":%d}`, i)})
	}
	f.append(t, "gadget", "many", 0, "loader", batch...)

	var got []int
	count, err := f.svc.Export(ctx, auditor, audit.Query{}, func(it audit.Item) error {
		got = append(got, it.StreamVersion)
		return nil
	})
	if err != nil || count != n || len(got) != n || !slices.IsSorted(got) {
		t.Fatalf("export: %d events (%d written), sorted %v, %v", count, len(got), slices.IsSorted(got), err)
	}
	count, err = f.svc.ExportStream(ctx, auditor, "gadget-many", audit.Query{Limit: 1200}, func(audit.Item) error { return nil })
	if err != nil || count != 1200 {
		t.Fatalf("limited export: %d, %v", count, err)
	}
	total, err := f.svc.Count(ctx, audit.Query{Filter: audit.Filter{FromPosition: 101, StreamType: "gadget"}})
	if err != nil || total != n-100 {
		t.Fatalf("count = %d, %v", total, err)
	}
	broken := errors.New("client went away")
	count, err = f.svc.Export(ctx, auditor, audit.Query{Filter: audit.Filter{StreamType: "gadget"}}, func(it audit.Item) error {
		if it.StreamVersion == 1500 {
			return broken
		}
		return nil
	})
	if !errors.Is(err, broken) || count != 1499 {
		t.Fatalf("interrupted export: %d, %v", count, err)
	}
	if _, err := f.svc.ExportStream(ctx, auditor, "gadget-none", audit.Query{}, func(audit.Item) error { return nil }); domain.ErrorCode(err) != domain.CodeNotFound {
		t.Fatalf("unknown stream: %v", err)
	}

	reads := f.reads(t, auditor.ActorID)
	want := []struct {
		count    int64
		complete bool
		filter   string
	}{
		{n, true, `{}`},
		{1200, true, `{"limit":1200,"stream_id":"gadget-many"}`},
		{1499, false, `{"stream_type":"gadget"}`},
	}
	if len(reads) != len(want) {
		t.Fatalf("reads = %+v", reads)
	}
	for i, w := range want {
		r := reads[i]
		if r.Operation != auditlog.OperationExport || r.Format != auditlog.FormatNDJSON || r.ResultCount != w.count ||
			r.Complete != w.complete || string(r.Filter) != w.filter || r.SessionID != "s-1" || r.Via != auditlog.ViaAPI {
			t.Fatalf("read %d = %+v, want %+v", i, r, w)
		}
	}
}

func TestStateAsItWas(t *testing.T) {
	f := newFixture(t)
	f.seed(t)
	ctx := context.Background()
	state := func(streamID string, p audit.Point) (audit.State, map[string]any) {
		t.Helper()
		s, err := f.svc.State(ctx, auditor, streamID, p)
		if err != nil {
			t.Fatalf("state of %s at %+v: %v", streamID, p, err)
		}
		var m map[string]any
		if err := json.Unmarshal(s.State, &m); err != nil {
			t.Fatal(err)
		}
		return s, m
	}
	user := "user-" + uid
	s, m := state(user, audit.Point{Version: 1})
	if s.Version != 1 || s.StreamType != "user" || !s.RecordedAt.Equal(t0) || fmt.Sprint(m["roles"]) != "[user]" {
		t.Fatalf("v1 = %+v %v", s, m)
	}
	s, m = state(user, audit.Point{})
	if s.Version != 2 || fmt.Sprint(m["roles"]) != "[auditor user]" || m["email"] != "ada@example.com" {
		t.Fatalf("latest = %+v %v", s, m)
	}
	// At a time between the two events, and exactly at the second.
	if s, _ = state(user, audit.Point{At: t0.Add(90 * time.Second)}); s.Version != 1 {
		t.Fatalf("at +90s: version %d", s.Version)
	}
	if s, _ = state(user, audit.Point{At: t0.Add(2 * time.Minute)}); s.Version != 2 {
		t.Fatalf("at +2m: version %d", s.Version)
	}
	_, m = state("workspace-w1", audit.Point{})
	if fmt.Sprint(m["members"]) != "[map[role:owner user_id:"+uid+"] map[role:viewer user_id:u2]]" || m["name"] != "Lab" {
		t.Fatalf("workspace = %v", m)
	}
	for _, id := range []string{user, "session-s1", "apikey-k1"} {
		s, _ := state(id, audit.Point{})
		for _, secret := range []string{pwHash, refreshHash, keyHash} {
			if strings.Contains(string(s.State), secret) {
				t.Fatalf("state of %s shows a secret: %s", id, s.State)
			}
		}
	}

	refusals := []struct {
		stream string
		p      audit.Point
		code   string
		field  string
	}{
		{"user-nobody", audit.Point{}, domain.CodeNotFound, ""},
		{"not a stream", audit.Point{}, domain.CodeNotFound, ""},
		{user, audit.Point{At: t0.Add(-time.Second)}, domain.CodeNotFound, ""},
		{user, audit.Point{Version: 3}, domain.CodeInvalid, "version"},
		{user, audit.Point{Version: -1}, domain.CodeInvalid, "version"},
		{user, audit.Point{Version: 1, At: t0}, domain.CodeInvalid, "at"},
		{"gadget-g1", audit.Point{}, domain.CodeInvalid, "stream_id"},
	}
	before := len(f.reads(t, auditor.ActorID))
	for _, r := range refusals {
		_, err := f.svc.State(ctx, auditor, r.stream, r.p)
		var de *domain.Error
		if !errors.As(err, &de) || de.Code != r.code || (r.field != "" && (len(de.Fields) != 1 || de.Fields[0].Field != r.field)) {
			t.Fatalf("state of %s at %+v: %v, want %s %s", r.stream, r.p, err, r.code, r.field)
		}
	}
	reads := f.reads(t, auditor.ActorID)
	if len(reads) != before {
		t.Fatalf("refused state reads were recorded")
	}
	if last := reads[len(reads)-1]; last.Operation != auditlog.OperationState || string(last.Filter) != `{"stream_id":"apikey-k1"}` {
		t.Fatalf("last read = %+v", last)
	}
}

func TestVerifyIsRecorded(t *testing.T) {
	f := newFixture(t)
	f.seed(t)
	ctx := context.Background()
	report, err := f.svc.Verify(ctx, auditor, "", func(b eventstore.Break) error { return fmt.Errorf("break %+v", b) })
	if err != nil || report.Streams != 5 || report.Events != 7 || report.Breaks != 0 {
		t.Fatalf("verify = %+v, %v", report, err)
	}
	if _, err := f.svc.Verify(ctx, auditor, "user-nobody", nil); domain.ErrorCode(err) != domain.CodeNotFound {
		t.Fatalf("unknown stream: %v", err)
	}
	reads := f.reads(t, auditor.ActorID)
	if len(reads) != 1 || reads[0].Operation != auditlog.OperationVerify || reads[0].ResultCount != 0 {
		t.Fatalf("reads = %+v", reads)
	}
	// The record is itself an event: the next verification sees its stream.
	report, err = f.svc.Verify(ctx, auditor, auditlog.StreamID(auditor.ActorID), nil)
	if err != nil || report.Streams != 1 || report.Events != 1 {
		t.Fatalf("verify of the audit stream = %+v, %v", report, err)
	}
}

func TestConcurrentReadsOfOneActorAreAllRecorded(t *testing.T) {
	f := newFixture(t)
	f.seed(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := f.svc.Events(context.Background(), auditor, audit.Query{Limit: 1})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.reads(t, auditor.ActorID)); n != 8 {
		t.Fatalf("%d reads recorded, want 8", n)
	}
}

func TestStateOfATask(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.append(t, "task", "t1", 0, "router",
		[2]string{"task.submitted", `{"task_id":"t1","workspace_id":"w1","conversation_id":"c1","message_id":"m1","requested_by":"u1","expert":"math","input":"2+2","priority":3}`},
		[2]string{"task.started", `{"worker":"w-1","attempt":1,"deadline":"2026-03-01T12:05:00Z"}`},
		[2]string{"task.completed", `{"output":"4","reply_message_id":"m2"}`})
	for version, want := range map[int]string{1: "submitted", 2: "running", 3: "completed"} {
		s, err := f.svc.State(ctx, auditor, "task-t1", audit.Point{Version: version})
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(s.State, &m); err != nil {
			t.Fatal(err)
		}
		if m["status"] != want || m["expert"] != "math" || (version == 3) != (m["output"] == "4") {
			t.Fatalf("task at v%d = %v", version, m)
		}
	}
}

func TestStateOfAStreamLongerThanAPage(t *testing.T) {
	f := newFixture(t)
	events := [][2]string{{"workspace.created", `{"workspace_id":"w9","owner_id":"o","name":"Big","description":"","config":{}}`}}
	for i := range 2100 {
		events = append(events, [2]string{"workspace.member_added", fmt.Sprintf(`{"user_id":"u%d","role":"viewer"}`, i)})
	}
	f.append(t, "workspace", "w9", 0, "o", events...)
	for asked, want := range map[int]struct{ version, members int }{0: {2101, 2101}, 1500: {1500, 1500}, 2101: {2101, 2101}} {
		s, err := f.svc.State(context.Background(), auditor, "workspace-w9", audit.Point{Version: asked})
		if err != nil {
			t.Fatal(err)
		}
		var st struct {
			Members []any `json:"members"`
		}
		if err := json.Unmarshal(s.State, &st); err != nil {
			t.Fatal(err)
		}
		if s.Version != want.version || len(st.Members) != want.members {
			t.Fatalf("asked v%d: state at v%d with %d members, want %+v", asked, s.Version, len(st.Members), want)
		}
	}
}
