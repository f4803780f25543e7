package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// serverSample is what the load generator reads from the server's /metrics:
// families summed over their labels.
type serverSample map[string]float64

// Names of the /metrics families the report uses.
const (
	famRSS          = "process_resident_memory_bytes"
	famCPU          = "process_cpu_seconds_total"
	famHeapInuse    = "go_memstats_heap_inuse_bytes"
	famStackInuse   = "go_memstats_stack_inuse_bytes"
	famGoroutines   = "go_goroutines"
	famFramesSent   = "engram_sse_frames_sent_total"
	famSlowDisc     = "engram_sse_slow_disconnects_total"
	famSSEConns     = "engram_sse_connections"
	famLagSeconds   = "engram_projection_lag_seconds"
	famLagEvents    = "engram_projection_lag_events"
	famAppendsTotal = "engram_events_appended_total"
)

// scrape reads base/metrics; an error means the server exposes none.
func scrape(ctx context.Context, client *http.Client, base string) (serverSample, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape /metrics: status %d", resp.StatusCode)
	}
	return parseMetrics(bufio.NewScanner(resp.Body))
}

// parseMetrics reads the Prometheus text format and sums each family's
// samples. Histogram and summary parts keep their suffixed names.
func parseMetrics(sc *bufio.Scanner) (serverSample, error) {
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	out := serverSample{}
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if strings.HasPrefix(rest, "{") {
			end := strings.LastIndexByte(rest, '}')
			if end < 0 {
				continue
			}
			rest = rest[end+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		out[name] += v
	}
	return out, sc.Err()
}

// get returns the value of a family and whether the server exported it.
func (s serverSample) get(name string) (float64, bool) {
	v, ok := s[name]
	return v, ok
}
