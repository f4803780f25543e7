package test

import (
	"bufio"
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/engramhq/engram/test/enginetest"
)

// scrapeMetrics reads /metrics: the families declared (# TYPE) and the
// samples, keyed by the whole series ("name{labels}").
func scrapeMetrics(t *testing.T, c *enginetest.Client) (families map[string]bool, samples map[string]float64, body string) {
	t.Helper()
	r := c.Must(http.StatusOK, "GET", "/metrics", nil)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics Content-Type = %q, want the Prometheus text format", ct)
	}
	families, samples = map[string]bool{}, map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			families[strings.Fields(rest)[0]] = true
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("unparsable sample %q", line)
		}
		samples[line[:i]] = v
	}
	return families, samples, string(r.Body)
}

// The metrics of a running instance: every family of the proof issue is
// there, counts follow the traffic, labels hold route patterns and
// projector names, never ids.
func TestMetricsExposeEngramFamilies(t *testing.T) {
	inst := enginetest.Start(t, enginetest.Options{})
	ada := inst.Signup(t, "Ada")
	wsID := ada.Must(http.StatusCreated, "POST", "/v1/workspaces", map[string]any{"name": "Metrics"}).Map(t)["id"].(string)
	convID := ada.Must(http.StatusCreated, "POST", "/v1/workspaces/"+wsID+"/conversations", map[string]any{"title": "Counted"}).Map(t)["id"].(string)
	posted := ada.Must(http.StatusCreated, "POST", "/v1/conversations/"+convID+"/messages", map[string]any{"content": "hello"})
	ada.Must(http.StatusOK, "GET", "/v1/conversations/"+convID+"/messages", nil, "Engram-Min-Position: "+posted.Position())

	families, samples, body := scrapeMetrics(t, inst.Client(t))
	for _, name := range []string{
		"engram_http_requests_total", "engram_http_request_duration_seconds",
		"engram_event_appends_total", "engram_events_appended_total", "engram_event_append_duration_seconds",
		"engram_projection_status_up", "engram_projection_position", "engram_projection_lag_events",
		"engram_projection_lag_seconds", "engram_projection_parked_events",
		"engram_sse_connections", "engram_sse_frames_sent_total", "engram_sse_slow_disconnects_total",
		"engram_cache_requests_total", "engram_cache_backend",
		"go_goroutines", "go_memstats_heap_inuse_bytes", "process_resident_memory_bytes", "process_cpu_seconds_total",
	} {
		if !families[name] {
			t.Errorf("family %s is missing from /metrics", name)
		}
	}

	for series, least := range map[string]float64{
		`engram_http_requests_total{method="POST",route="/v1/conversations/:id/messages",status="201"}`: 1,
		`engram_events_appended_total`:                             5, // registered, session started, workspace, conversation, message
		`engram_event_append_duration_seconds_count{outcome="ok"}`: 5,
		`engram_projection_status_up`:                              1,
	} {
		if samples[series] < least {
			t.Errorf("%s = %v, want at least %v", series, samples[series], least)
		}
	}
	if _, ok := samples[`engram_projection_lag_events{projector="conversations"}`]; !ok {
		t.Error("no lag of the conversations projector")
	}
	backends := samples[`engram_cache_backend{backend="redis"}`] + samples[`engram_cache_backend{backend="memory"}`]
	if backends != 1 {
		t.Errorf("cache backends in use = %v, want exactly one", backends)
	}
	for _, id := range []string{ada.UserID, wsID, convID} {
		if strings.Contains(body, id) {
			t.Errorf("/metrics holds the id %s", id)
		}
	}
}

// The projection gauges, read from the checkpoints when scraped, follow the
// log: a projector's position reaches that of a new event.
func TestMetricsProjectionPositionFollowsTheLog(t *testing.T) {
	inst := enginetest.Start(t, enginetest.Options{})
	ada := inst.Signup(t, "Ada")
	anon := inst.Client(t)
	ws := ada.Must(http.StatusCreated, "POST", "/v1/workspaces", map[string]any{"name": "Lag"})
	pos, err := strconv.ParseFloat(ws.Position(), 64)
	if err != nil {
		t.Fatalf("Engram-Position %q: %v", ws.Position(), err)
	}
	const series = `engram_projection_position{projector="workspaces"}`
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, samples, _ := scrapeMetrics(t, anon)
		if samples[series] >= pos {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v within 15s", series, samples[series], pos)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
