package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// ReadModelReads counts the reads of the hot read models (the Redis copies
// of the busiest queries) by where they were answered from: redis, or sql
// when Redis could not answer exactly as SQL would.
type ReadModelReads struct {
	reads *prometheus.CounterVec
}

// Sources of a hot read, the label values of engram_read_model_reads_total.
const (
	ReadFromRedis = "redis"
	ReadFromSQL   = "sql"
)

// ReadModelReads registers engram_read_model_reads_total and returns its
// recorder. Call it once.
func (m *Metrics) ReadModelReads() *ReadModelReads {
	if m == nil {
		return nil
	}
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "engram_read_model_reads_total",
		Help: "Reads of the hot read models by model and by where they were answered from (redis or sql).",
	}, []string{"model", "source"})
	m.registry.MustRegister(vec)
	return &ReadModelReads{reads: vec}
}

// Observe records one read of model, answered from Redis or not.
func (r *ReadModelReads) Observe(model string, fromRedis bool) {
	if r == nil {
		return
	}
	source := ReadFromSQL
	if fromRedis {
		source = ReadFromRedis
	}
	r.reads.WithLabelValues(model, source).Inc()
}

// RedisReadModelState is the state of one Redis read model when scraped.
type RedisReadModelState struct {
	// Name is the consumer group feeding the model.
	Name string
	// Live reports whether queries may read it.
	Live bool
	// Position is the position of the last event it applied.
	Position int64
}

// WatchRedisReadModels exports engram_redis_read_model_live and
// engram_redis_read_model_position, read through read when scraped (read
// should be quick and bound its own time).
func (m *Metrics) WatchRedisReadModels(read func() []RedisReadModelState) {
	if m == nil {
		return
	}
	m.registry.MustRegister(&redisReadModelCollector{
		read: read,
		live: prometheus.NewDesc("engram_redis_read_model_live",
			"1 when the Redis read model may be read, 0 while it is rebuilt, stale or Redis is out (queries then use SQL).",
			[]string{"projector"}, nil),
		position: prometheus.NewDesc("engram_redis_read_model_position",
			"Global position of the last event the live Redis read model applied.", []string{"projector"}, nil),
	})
}

type redisReadModelCollector struct {
	read           func() []RedisReadModelState
	live, position *prometheus.Desc
}

// Describe sends the descriptors of the Redis read model gauges.
func (c *redisReadModelCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.live
	ch <- c.position
}

// Collect reads the states and sends the gauges.
func (c *redisReadModelCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.read() {
		live := 0.0
		if s.Live {
			live = 1
		}
		ch <- prometheus.MustNewConstMetric(c.live, prometheus.GaugeValue, live, s.Name)
		ch <- prometheus.MustNewConstMetric(c.position, prometheus.GaugeValue, float64(s.Position), s.Name)
	}
}

// ReadCacheState is what an instance's in-memory read cache reports when
// scraped.
type ReadCacheState struct {
	Hits, Misses, Behind int64
	Entries, Bytes       int
	Leased               bool // the instance trusts the read lease
}

// WatchReadCache exports engram_read_cache_lookups_total (by result: hit,
// miss, or behind when the cache had not applied the head of the log in
// time), engram_read_cache_entries, engram_read_cache_bytes and
// engram_read_lease_held, read through read when scraped.
func (m *Metrics) WatchReadCache(read func() ReadCacheState) {
	if m == nil {
		return
	}
	lookups := func(result string, pick func(ReadCacheState) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "engram_read_cache_lookups_total",
			Help:        "Lookups of the in-memory read cache by result: hit, miss, or behind (it had not applied the head of the log in time).",
			ConstLabels: prometheus.Labels{"result": result},
		}, func() float64 { return float64(pick(read())) })
	}
	m.registry.MustRegister(
		lookups("hit", func(s ReadCacheState) int64 { return s.Hits }),
		lookups("miss", func(s ReadCacheState) int64 { return s.Misses }),
		lookups("behind", func(s ReadCacheState) int64 { return s.Behind }),
	)
	m.GaugeFunc("engram_read_cache_entries", "Answers held by the in-memory read cache.", nil,
		func() float64 { return float64(read().Entries) })
	m.GaugeFunc("engram_read_cache_bytes", "Estimated bytes of the answers held by the in-memory read cache.", nil,
		func() float64 { return float64(read().Bytes) })
	m.GaugeFunc("engram_read_lease_held", "1 while this instance holds the read lease (it runs alone: cached reads need no round trip), else 0.", nil,
		func() float64 {
			if read().Leased {
				return 1
			}
			return 0
		})
}
