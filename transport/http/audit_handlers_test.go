package http

import (
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/domaintest"
)

func auditContext(target, accept string) echo.Context {
	req := httptest.NewRequest("GET", target, nil)
	if accept != "" {
		req.Header.Set(echo.HeaderAccept, accept)
	}
	return echo.New().NewContext(req, httptest.NewRecorder())
}

func TestWantsNDJSON(t *testing.T) {
	for accept, want := range map[string]bool{
		"":                                       false,
		"*/*":                                    false,
		"application/json":                       false,
		"application/x-ndjson":                   true,
		"Application/X-NDJSON; charset=utf-8":    true,
		"application/x-ndjson;q=0":               false,
		"application/x-ndjson, application/json": true,
		"application/json, application/x-ndjson;q=0.5": false,
		"application/x-ndjson;q=0.9, */*;q=0.1":        true,
	} {
		if got := wantsNDJSON(auditContext("/", accept)); got != want {
			t.Errorf("Accept %q: NDJSON %v, want %v", accept, got, want)
		}
	}
}

func TestAuditQueryParsing(t *testing.T) {
	q, err := auditQuery(auditContext("/?from_position=3&to_position=9&stream_type=user&type=a.b,c.d&type=e.f"+
		"&actor_id=u1&from=2026-01-02T03:04:05Z&to=2026-01-03T00:00:00%2B02:00&limit=10&cursor=", ""), true, false)
	if err != nil {
		t.Fatal(err)
	}
	f := q.Filter
	if f.FromPosition != 3 || f.ToPosition != 9 || f.StreamType != "user" || !slices.Equal(f.Types, []string{"a.b", "c.d", "e.f"}) ||
		f.ActorID != "u1" || !f.From.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) ||
		!f.To.Equal(time.Date(2026, 1, 2, 22, 0, 0, 0, time.UTC)) || q.Limit != 10 || q.Cursor != "" {
		t.Fatalf("query = %+v", q)
	}
	// An unencoded '+' of an offset arrives as a space.
	q, err = auditQuery(auditContext("/?from=2026-01-02T03:04:05+01:00", ""), true, false)
	if err != nil || !q.Filter.From.Equal(time.Date(2026, 1, 2, 2, 4, 5, 0, time.UTC)) {
		t.Fatalf("from = %v, %v", q.Filter.From, err)
	}
	// A stream's limit is not a page size.
	if q, err = auditQuery(auditContext("/?limit=50000", ""), true, true); err != nil || q.Limit != 50000 {
		t.Fatalf("streamed limit = %d, %v", q.Limit, err)
	}

	_, err = auditQuery(auditContext("/?from_position=-1&to_position=x&stream_id=a&stream_id=b&type=&from=soon&to=2026&limit=0&cursor=abc&colour=red", ""), true, false)
	fields := domaintest.InvalidFields(t, err)
	slices.Sort(fields)
	want := []string{"colour", "cursor", "from", "from_position", "limit", "stream_id", "to", "to_position", "type"}
	if !slices.Equal(fields, want) {
		t.Fatalf("fields = %v, want %v", fields, want)
	}
	// The stream route has no stream_id parameter.
	if _, err := auditQuery(auditContext("/?stream_id=x", ""), false, false); domain.ErrorCode(err) != domain.CodeInvalid {
		t.Fatalf("stream_id on the stream route: %v", err)
	}
}
