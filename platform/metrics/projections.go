package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ProjectionStatus is how far one projector trails the event log.
type ProjectionStatus struct {
	// Name is the projector's name (its consumer group).
	Name string
	// Position is the global position of the last event it applied.
	Position int64
	// LagEvents is the number of committed events it has not applied yet.
	LagEvents int64
	// LagSeconds is the age of the oldest event it has not applied yet.
	LagSeconds float64
	// Parked is the number of events it failed on and set aside.
	Parked int64
}

// MinProjectionRefresh is the shortest interval between two reads of the
// projection status: scrapes in between are answered from the last read.
const MinProjectionRefresh = time.Second

// WatchProjections exports the lag, position and parked events of every
// projector, read through read when scraped and at most once per refresh
// (at least MinProjectionRefresh). read should bound its own time; when it
// fails, engram_projection_status_up is 0 and the per-projector gauges are
// absent for that scrape.
func (m *Metrics) WatchProjections(refresh time.Duration, read func() ([]ProjectionStatus, error)) {
	m.registry.MustRegister(newProjectionCollector(max(refresh, MinProjectionRefresh), read, time.Now))
}

type projectionCollector struct {
	refresh time.Duration
	read    func() ([]ProjectionStatus, error)
	now     func() time.Time

	up, position, lagEvents, lagSeconds, parked *prometheus.Desc

	mu       sync.Mutex
	readAt   time.Time
	statuses []ProjectionStatus
	err      error
}

func newProjectionCollector(refresh time.Duration, read func() ([]ProjectionStatus, error), now func() time.Time) *projectionCollector {
	label := []string{"projector"}
	return &projectionCollector{
		refresh: refresh, read: read, now: now,
		up: prometheus.NewDesc("engram_projection_status_up",
			"1 when the projection status could be read at the last refresh, 0 otherwise.", nil, nil),
		position: prometheus.NewDesc("engram_projection_position",
			"Global position of the last event the projector applied.", label, nil),
		lagEvents: prometheus.NewDesc("engram_projection_lag_events",
			"Committed events the projector has not applied yet.", label, nil),
		lagSeconds: prometheus.NewDesc("engram_projection_lag_seconds",
			"Age of the oldest event the projector has not applied yet (0 when caught up).", label, nil),
		parked: prometheus.NewDesc("engram_projection_parked_events",
			"Events the projector failed to apply after its retries and parked.", label, nil),
	}
}

// Describe sends the descriptors of the projection gauges.
func (c *projectionCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.position, c.lagEvents, c.lagSeconds, c.parked} {
		ch <- d
	}
}

// Collect reads the status (or reuses a recent read) and sends the gauges.
func (c *projectionCollector) Collect(ch chan<- prometheus.Metric) {
	statuses, err := c.current()
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	for _, s := range statuses {
		ch <- prometheus.MustNewConstMetric(c.position, prometheus.GaugeValue, float64(s.Position), s.Name)
		ch <- prometheus.MustNewConstMetric(c.lagEvents, prometheus.GaugeValue, float64(s.LagEvents), s.Name)
		ch <- prometheus.MustNewConstMetric(c.lagSeconds, prometheus.GaugeValue, s.LagSeconds, s.Name)
		ch <- prometheus.MustNewConstMetric(c.parked, prometheus.GaugeValue, float64(s.Parked), s.Name)
	}
}

func (c *projectionCollector) current() ([]ProjectionStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); c.readAt.IsZero() || now.Sub(c.readAt) >= c.refresh {
		c.statuses, c.err = c.read()
		c.readAt = now
	}
	return c.statuses, c.err
}
