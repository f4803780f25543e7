package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// PipelineBatches counts the batches the event pipeline's agents handle.
type PipelineBatches struct {
	events  *prometheus.HistogramVec
	seconds *prometheus.HistogramVec
}

// pipeline returns the pipeline's collectors, registered on first use.
func (m *Metrics) pipeline() *PipelineBatches {
	m.pipelineOnce.Do(func() {
		m.pipelineBatches = &PipelineBatches{
			events: prometheus.NewHistogramVec(prometheus.HistogramOpts{
				Name: "engram_pipeline_batch_events", Help: "Events per batch handled by each consumer of the event pipeline.",
				Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024},
			}, []string{"consumer"}),
			seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
				Name: "engram_pipeline_batch_duration_seconds", Help: "Time to handle one batch, by consumer of the event pipeline.",
				Buckets: latencyBuckets,
			}, []string{"consumer"}),
		}
		m.registry.MustRegister(m.pipelineBatches.events, m.pipelineBatches.seconds)
	})
	return m.pipelineBatches
}

// ObservePipelineBatch records a batch of n events handled by consumer in d.
func (m *Metrics) ObservePipelineBatch(consumer string, n int, d time.Duration) {
	p := m.pipeline()
	p.events.WithLabelValues(consumer).Observe(float64(n))
	p.seconds.WithLabelValues(consumer).Observe(d.Seconds())
}
