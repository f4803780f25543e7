// Package metrics holds Engram's Prometheus metrics. Labels never carry user
// ids or other unbounded values: routes are route patterns, projectors are
// projector names, outcomes and backends are fixed words.
//
// The recording methods are safe for concurrent use and do nothing on a nil
// *Metrics, so that a component built without metrics (in a test) needs no
// special case.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the registry and the instruments of one Engram process.
type Metrics struct {
	registry *prometheus.Registry

	httpRequests   *prometheus.CounterVec
	httpDuration   *prometheus.HistogramVec
	appends        prometheus.Counter
	appendEvents   prometheus.Counter
	appendDuration *prometheus.HistogramVec

	sseConnections    prometheus.Gauge
	sseFrames         prometheus.Counter
	sseSlowDisconnect prometheus.Counter

	pipelineOnce    sync.Once
	pipelineBatches *PipelineBatches
}

// latencyBuckets suit requests and appends on loopback: 0.5 ms to 5 s.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// New returns a registry with the Go runtime and process collectors and
// Engram's own instruments.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		registry: r,
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "engram_http_requests_total", Help: "HTTP requests by method, route pattern and status.",
		}, []string{"method", "route", "status"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "engram_http_request_duration_seconds", Help: "HTTP request latency by method and route pattern.",
			Buckets: latencyBuckets,
		}, []string{"method", "route"}),
		appends: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "engram_event_appends_total", Help: "Successful appends to the event store (transactions).",
		}),
		appendEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "engram_events_appended_total", Help: "Events appended to the event store.",
		}),
		appendDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "engram_event_append_duration_seconds",
			Help:    "Latency of event store appends made by command handlers, by outcome (ok, conflict, error).",
			Buckets: latencyBuckets,
		}, []string{"outcome"}),
		sseConnections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "engram_sse_connections", Help: "Open live event streams (SSE).",
		}),
		sseFrames: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "engram_sse_frames_sent_total", Help: "Frames written to live streams (SSE): events and signals, heartbeats excluded.",
		}),
		sseSlowDisconnect: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "engram_sse_slow_disconnects_total", Help: "Live streams closed because the client fell too far behind.",
		}),
	}
	r.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.httpRequests, m.httpDuration, m.appends, m.appendEvents, m.appendDuration,
		m.sseConnections, m.sseFrames, m.sseSlowDisconnect,
	)
	for _, outcome := range []string{AppendOK, AppendConflict, AppendFailed} {
		m.appendDuration.WithLabelValues(outcome) // export every outcome from the start
	}
	return m
}

// Registry returns the registry, for other packages to register their
// collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// ObserveHTTP records one HTTP request.
func (m *Metrics) ObserveHTTP(method, route string, status int, d time.Duration) {
	if m == nil {
		return
	}
	m.httpRequests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(method, route).Observe(d.Seconds())
}

// ObserveAppend records one successful append of n events.
func (m *Metrics) ObserveAppend(n int) {
	if m == nil {
		return
	}
	m.appends.Inc()
	m.appendEvents.Add(float64(n))
}

// Outcomes of an append, the label values of ObserveAppendDuration.
const (
	// AppendOK is an append that committed.
	AppendOK = "ok"
	// AppendConflict is an append refused because the stream had moved on
	// (expected version) or a unique value was claimed.
	AppendConflict = "conflict"
	// AppendFailed is any other failure (database down, cancelled request).
	AppendFailed = "error"
)

// ObserveAppendDuration records how long one append took and how it ended
// (AppendOK, AppendConflict or AppendFailed).
func (m *Metrics) ObserveAppendDuration(outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.appendDuration.WithLabelValues(outcome).Observe(d.Seconds())
}

// GaugeFunc registers a gauge whose value is read when scraped.
func (m *Metrics) GaugeFunc(name, help string, labels prometheus.Labels, fn func() float64) {
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels}, fn))
}
