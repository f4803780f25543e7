package main

import (
	"math/bits"
	"time"
)

// histogram records durations in microseconds in log-linear buckets (the HDR
// histogram layout): 64 sub-buckets per power of two, so a percentile is off
// by at most 1/64 (1.6 %) of its value. It grows only as large as the largest
// value recorded; it is not safe for concurrent use.
type histogram struct {
	counts []uint64
	n      uint64
	sum    uint64
	max    uint64
}

const (
	subBits    = 6
	subBuckets = 1 << subBits
)

func bucketOf(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	return (shift+1)*subBuckets + int(v>>shift) - subBuckets
}

// bucketMiddle is the middle of the values bucket i holds.
func bucketMiddle(i int) uint64 {
	if i < subBuckets {
		return uint64(i)
	}
	shift := i/subBuckets - 1
	low := uint64(i%subBuckets+subBuckets) << shift
	return low + (uint64(1)<<shift)/2
}

// record adds one duration (negative counts as zero).
func (h *histogram) record(d time.Duration) {
	us := uint64(max(d.Microseconds(), 0))
	i := bucketOf(us)
	if i >= len(h.counts) {
		grown := make([]uint64, i+1+subBuckets)
		copy(grown, h.counts)
		h.counts = grown
	}
	h.counts[i]++
	h.n++
	h.sum += us
	h.max = max(h.max, us)
}

// merge adds every value of o.
func (h *histogram) merge(o *histogram) {
	if len(o.counts) > len(h.counts) {
		grown := make([]uint64, len(o.counts))
		copy(grown, h.counts)
		h.counts = grown
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// quantile returns the value below which a fraction q of the values lie.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(bucketMiddle(i), h.max)) * time.Microsecond
		}
	}
	return time.Duration(h.max) * time.Microsecond
}

// Summary is the distribution of a set of durations.
type Summary struct {
	Count int64         `json:"count"`
	Mean  time.Duration `json:"mean"`
	P50   time.Duration `json:"p50"`
	P95   time.Duration `json:"p95"`
	P99   time.Duration `json:"p99"`
	Max   time.Duration `json:"max"`
}

func (h *histogram) summary() Summary {
	if h.n == 0 {
		return Summary{}
	}
	return Summary{
		Count: int64(h.n),
		Mean:  time.Duration(h.sum/h.n) * time.Microsecond,
		P50:   h.quantile(0.50),
		P95:   h.quantile(0.95),
		P99:   h.quantile(0.99),
		Max:   time.Duration(h.max) * time.Microsecond,
	}
}
