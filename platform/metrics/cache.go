package metrics

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/engramhq/engram/platform/cache"
)

// Results of a cache read, the label values of engram_cache_requests_total.
const (
	cacheHit   = "hit"
	cacheMiss  = "miss"
	cacheError = "error"
)

// InstrumentCache returns c counting its reads (Get and Take) as hits,
// misses and errors, and exports which backend c uses (redis or memory) as
// engram_cache_backend. The process has one cache: call it once.
func (m *Metrics) InstrumentCache(c cache.Cache) cache.Cache {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "engram_cache_requests_total", Help: "Cache reads by operation (get, take) and result (hit, miss, error).",
	}, []string{"op", "result"})
	backend := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "engram_cache_backend", Help: "1 for the cache backend in use (redis or memory), 0 for the other.",
	}, []string{"backend"})
	m.registry.MustRegister(requests, backendCollector{GaugeVec: backend, cache: c})
	for _, op := range []string{"get", "take"} {
		for _, result := range []string{cacheHit, cacheMiss, cacheError} {
			requests.WithLabelValues(op, result)
		}
	}
	return &instrumentedCache{
		Cache: c,
		get:   [3]prometheus.Counter{requests.WithLabelValues("get", cacheHit), requests.WithLabelValues("get", cacheMiss), requests.WithLabelValues("get", cacheError)},
		take:  [3]prometheus.Counter{requests.WithLabelValues("take", cacheHit), requests.WithLabelValues("take", cacheMiss), requests.WithLabelValues("take", cacheError)},
	}
}

// instrumentedCache counts the reads of the Cache it embeds; every other
// method goes straight through.
type instrumentedCache struct {
	cache.Cache
	get, take [3]prometheus.Counter // hit, miss, error
}

var _ cache.Cache = (*instrumentedCache)(nil)

// Get reads key and counts a hit, a miss or an error.
func (c *instrumentedCache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	v, ok, err := c.Cache.Get(ctx, key)
	count(c.get, ok, err)
	return v, ok, err
}

// Take reads and deletes key and counts a hit, a miss or an error.
func (c *instrumentedCache) Take(ctx context.Context, key string) ([]byte, bool, error) {
	v, ok, err := c.Cache.Take(ctx, key)
	count(c.take, ok, err)
	return v, ok, err
}

func count(counters [3]prometheus.Counter, ok bool, err error) {
	switch {
	case err != nil:
		counters[2].Inc()
	case ok:
		counters[0].Inc()
	default:
		counters[1].Inc()
	}
}

// backendCollector sets the backend gauge from the cache when scraped: the
// fallback cache switches between Redis and memory at run time.
type backendCollector struct {
	*prometheus.GaugeVec
	cache cache.Cache
}

// Collect refreshes the backend gauge and sends it.
func (b backendCollector) Collect(ch chan<- prometheus.Metric) {
	inUse := b.cache.Backend()
	for _, name := range []string{cache.BackendRedis, cache.BackendMemory} {
		v := 0.0
		if name == inUse {
			v = 1
		}
		b.WithLabelValues(name).Set(v)
	}
	b.GaugeVec.Collect(ch)
}
