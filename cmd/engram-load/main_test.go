package main

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

func TestCheckTargetRefusesRemoteByDefault(t *testing.T) {
	for _, tt := range []struct {
		url    string
		remote bool
		ok     bool
	}{
		{"http://127.0.0.1:8080", false, true},
		{"http://localhost:8080", false, true},
		{"http://[::1]:8080", false, true},
		{"https://127.0.0.2", false, true},
		{"http://10.0.0.5:8080", false, false},
		{"http://engram.example.com", false, false},
		{"http://engram.example.com", true, true},
		{"ftp://127.0.0.1", true, false},
		{"127.0.0.1:8080", false, false},
	} {
		err := checkTarget(tt.url, tt.remote)
		if (err == nil) != tt.ok {
			t.Errorf("checkTarget(%q, allowRemote=%v) = %v, want ok=%v", tt.url, tt.remote, err, tt.ok)
		}
	}
}

func TestRunRefusesRemoteTargetsAndBadFlags(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"-url", "http://192.0.2.1:8080"}, &stdout, &stderr); code != 2 {
		t.Errorf("remote target: exit %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), "-allow-remote") {
		t.Errorf("remote target: stderr %q does not name -allow-remote", stderr.String())
	}
	stderr.Reset()
	code := run(t.Context(), []string{"-scenario", "nap", "-rate", "-1", "-lag-sample", "2"}, &stdout, &stderr)
	if code != 2 {
		t.Errorf("bad flags: exit %d, want 2", code)
	}
	for _, want := range []string{"-scenario", "-rate", "-lag-sample"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("bad flags: stderr does not name %s:\n%s", want, stderr.String())
		}
	}
}

func TestOptionsValidateListsEveryProblem(t *testing.T) {
	o := Options{Scenario: "get", Path: "echo", Scope: "room", Read: "all", Rate: -1, LagSample: -0.5, Subscribers: -1}.withDefaults()
	err := o.validate()
	if !errors.Is(err, errInvalidOptions) {
		t.Fatalf("validate = %v, want errInvalidOptions", err)
	}
	for _, want := range []string{"-path", "-scope", "-read", "-rate", "-lag-sample"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, err)
		}
	}
	if err := (Options{Scenario: scenarioSSE, Subscribers: -1}).withDefaults().validate(); err != nil {
		t.Errorf("defaults of the sse scenario: %v", err)
	}
}

func TestParseMetricsSumsFamilies(t *testing.T) {
	text := `# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 2.5e+07
engram_sse_frames_sent_total 12
engram_projection_lag_seconds{projector="users"} 0.5
engram_projection_lag_seconds{projector="conversations"} 1.25
engram_http_requests_total{method="GET",route="/v1/{odd} route",status="200"} 3 1700000000000
`
	s, err := parseMetrics(bufio.NewScanner(strings.NewReader(text)))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{
		famRSS: 25e6, famFramesSent: 12, famLagSeconds: 1.75, "engram_http_requests_total": 3,
	} {
		if got, ok := s.get(name); !ok || got != want {
			t.Errorf("%s = %v (%v), want %v", name, got, ok, want)
		}
	}
	if _, ok := s.get(famCPU); ok {
		t.Error("a family that is not there was found")
	}
}

func TestProcReadsThisProcess(t *testing.T) {
	rss, err := procRSS(os.Getpid())
	if err != nil || rss <= 0 {
		t.Errorf("procRSS = %v, %v", rss, err)
	}
	if _, err := procCPU(os.Getpid()); err != nil {
		t.Errorf("procCPU: %v", err)
	}
	if _, err := procCPU(-1); err == nil {
		t.Error("procCPU of no process did not fail")
	}
}

func TestPgbenchOutputParsing(t *testing.T) {
	out := `transaction type: insert.sql
number of clients: 32
latency average = 2.437 ms
initial connection time = 41.200 ms
tps = 13131.853790 (without initial connection time)
`
	m := tpsLine.FindStringSubmatch(out)
	l := latencyLine.FindStringSubmatch(out)
	if m == nil || m[1] != "13131.853790" || l == nil || l[1] != "2.437" {
		t.Fatalf("tps %q, latency %q", m, l)
	}
}

// httptestServer serves h on loopback for the test and returns its URL.
func httptestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
