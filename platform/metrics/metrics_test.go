package metrics

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/engramhq/engram/platform/cache"
)

// value returns the value of the sample of family name whose labels include
// labels, and whether there is one.
func value(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			if !hasLabels(s, labels) {
				continue
			}
			switch {
			case s.Counter != nil:
				return s.Counter.GetValue(), true
			case s.Gauge != nil:
				return s.Gauge.GetValue(), true
			case s.Histogram != nil:
				return float64(s.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func hasLabels(s *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range s.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func mustValue(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string, want float64) {
	t.Helper()
	got, ok := value(t, reg, name, labels)
	if !ok {
		t.Fatalf("%s%v: not exported", name, labels)
	}
	if got != want {
		t.Fatalf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func TestRecordersCount(t *testing.T) {
	m := New()
	m.ObserveHTTP("GET", "/v1/conversations/:id", 200, 3*time.Millisecond)
	m.ObserveAppend(3)
	m.ObserveAppendDuration(AppendOK, 2*time.Millisecond)
	m.ObserveAppendDuration(AppendConflict, time.Millisecond)
	m.SSEConnected(1)
	m.SSEConnected(1)
	m.SSEConnected(-1)
	m.SSEFramesSent(5)
	m.SSEFramesSent(0)
	m.SSESlowDisconnect()

	reg := m.Registry()
	mustValue(t, reg, "engram_http_requests_total", map[string]string{"method": "GET", "route": "/v1/conversations/:id", "status": "200"}, 1)
	mustValue(t, reg, "engram_http_request_duration_seconds", map[string]string{"route": "/v1/conversations/:id"}, 1)
	mustValue(t, reg, "engram_event_appends_total", nil, 1)
	mustValue(t, reg, "engram_events_appended_total", nil, 3)
	mustValue(t, reg, "engram_event_append_duration_seconds", map[string]string{"outcome": AppendOK}, 1)
	mustValue(t, reg, "engram_event_append_duration_seconds", map[string]string{"outcome": AppendConflict}, 1)
	mustValue(t, reg, "engram_event_append_duration_seconds", map[string]string{"outcome": AppendFailed}, 0)
	mustValue(t, reg, "engram_sse_connections", nil, 1)
	mustValue(t, reg, "engram_sse_frames_sent_total", nil, 5)
	mustValue(t, reg, "engram_sse_slow_disconnects_total", nil, 1)
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := value(t, reg, name, nil); !ok {
			t.Errorf("%s: not exported", name)
		}
	}
}

func TestNilMetricsRecordsNothing(t *testing.T) {
	var m *Metrics
	calls := map[string]func(){
		"ObserveHTTP":           func() { m.ObserveHTTP("GET", "/healthz", 200, time.Millisecond) },
		"ObserveAppend":         func() { m.ObserveAppend(1) },
		"ObserveAppendDuration": func() { m.ObserveAppendDuration(AppendOK, time.Millisecond) },
		"SSEConnected":          func() { m.SSEConnected(1) },
		"SSEFramesSent":         func() { m.SSEFramesSent(1) },
		"SSESlowDisconnect":     func() { m.SSESlowDisconnect() },
	}
	for name, call := range calls {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s on a nil *Metrics panicked: %v", name, r)
				}
			}()
			call()
		}()
	}
}

func TestWatchProjectionsReadsAtMostOncePerRefresh(t *testing.T) {
	now := time.Unix(1000, 0)
	reads := 0
	var fail error
	read := func() ([]ProjectionStatus, error) {
		reads++
		if fail != nil {
			return nil, fail
		}
		return []ProjectionStatus{
			{Name: "conversations", Position: 40, LagEvents: 2, LagSeconds: 0.5, Parked: 1},
			{Name: "users", Position: 42},
		}, nil
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(newProjectionCollector(time.Second, read, func() time.Time { return now }))

	conv := map[string]string{"projector": "conversations"}
	mustValue(t, reg, "engram_projection_status_up", nil, 1)
	mustValue(t, reg, "engram_projection_lag_events", conv, 2)
	mustValue(t, reg, "engram_projection_lag_seconds", conv, 0.5)
	mustValue(t, reg, "engram_projection_parked_events", conv, 1)
	mustValue(t, reg, "engram_projection_position", map[string]string{"projector": "users"}, 42)
	if reads != 1 {
		t.Fatalf("reads = %d within one refresh interval, want 1", reads)
	}

	fail = errors.New("database unreachable")
	now = now.Add(time.Second)
	mustValue(t, reg, "engram_projection_status_up", nil, 0)
	if _, ok := value(t, reg, "engram_projection_lag_events", conv); ok {
		t.Fatal("lag exported although the status could not be read")
	}
	if reads != 2 {
		t.Fatalf("reads = %d after the refresh interval, want 2", reads)
	}
}

func TestWatchProjectionsRefreshIsAtLeastASecond(t *testing.T) {
	m := New()
	reads := 0
	m.WatchProjections(time.Millisecond, func() ([]ProjectionStatus, error) {
		reads++
		return []ProjectionStatus{{Name: "users"}}, nil
	})
	for range 3 {
		if _, err := m.Registry().Gather(); err != nil {
			t.Fatal(err)
		}
	}
	if reads != 1 {
		t.Fatalf("reads = %d for three quick scrapes, want 1", reads)
	}
}

func TestInstrumentCacheCountsReads(t *testing.T) {
	ctx := context.Background()
	m := New()
	mem := cache.NewMemory()
	defer mem.Close()
	c := m.InstrumentCache(mem)

	if err := c.Set(ctx, "a", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := c.Get(ctx, "a"); err != nil || !ok || string(v) != "1" {
		t.Fatalf("Get(a) = %q, %v, %v", v, ok, err)
	}
	if _, ok, err := c.Get(ctx, "missing"); err != nil || ok {
		t.Fatalf("Get(missing) = %v, %v", ok, err)
	}
	if _, ok, err := c.Take(ctx, "a"); err != nil || !ok {
		t.Fatalf("Take(a) = %v, %v", ok, err)
	}
	if _, ok, err := c.Take(ctx, "a"); err != nil || ok {
		t.Fatalf("second Take(a) = %v, %v", ok, err)
	}
	if _, err := c.Incr(ctx, "n", 0); err != nil {
		t.Fatal(err)
	}

	reg := m.Registry()
	mustValue(t, reg, "engram_cache_requests_total", map[string]string{"op": "get", "result": "hit"}, 1)
	mustValue(t, reg, "engram_cache_requests_total", map[string]string{"op": "get", "result": "miss"}, 1)
	mustValue(t, reg, "engram_cache_requests_total", map[string]string{"op": "take", "result": "hit"}, 1)
	mustValue(t, reg, "engram_cache_requests_total", map[string]string{"op": "take", "result": "miss"}, 1)
	mustValue(t, reg, "engram_cache_requests_total", map[string]string{"op": "get", "result": "error"}, 0)
	mustValue(t, reg, "engram_cache_backend", map[string]string{"backend": "memory"}, 1)
	mustValue(t, reg, "engram_cache_backend", map[string]string{"backend": "redis"}, 0)
}

func TestHandlerServesTextFormat(t *testing.T) {
	m := New()
	m.SSEFramesSent(2)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 || !strings.Contains(string(body), "engram_sse_frames_sent_total 2") {
		t.Fatalf("GET /metrics = %d:\n%.500s", rec.Code, body)
	}
}
