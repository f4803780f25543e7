// Package metrics holds Engram's Prometheus metrics. Labels never carry user
// ids or other unbounded values: routes are route patterns.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the registry and the instruments of one Engram process.
type Metrics struct {
	registry *prometheus.Registry

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	appends      prometheus.Counter
	appendEvents prometheus.Counter
}

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
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"method", "route"}),
		appends: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "engram_event_appends_total", Help: "Successful appends to the event store (transactions).",
		}),
		appendEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "engram_events_appended_total", Help: "Events appended to the event store.",
		}),
	}
	r.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.httpRequests, m.httpDuration, m.appends, m.appendEvents,
	)
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
	m.httpRequests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(method, route).Observe(d.Seconds())
}

// ObserveAppend records one successful append of n events.
func (m *Metrics) ObserveAppend(n int) {
	m.appends.Inc()
	m.appendEvents.Add(float64(n))
}

// GaugeFunc registers a gauge whose value is read when scraped.
func (m *Metrics) GaugeFunc(name, help string, labels prometheus.Labels, fn func() float64) {
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels}, fn))
}
