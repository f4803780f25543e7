package main

import (
	"math"
	"testing"
	"time"
)

func TestHistogramQuantilesWithinPrecision(t *testing.T) {
	var h histogram
	for us := 1; us <= 100_000; us++ {
		h.record(time.Duration(us) * time.Microsecond)
	}
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.95, 95 * time.Millisecond}, {0.99, 99 * time.Millisecond}} {
		got := h.quantile(tt.q)
		if rel := math.Abs(float64(got-tt.want)) / float64(tt.want); rel > 1.0/subBuckets {
			t.Errorf("quantile(%v) = %v, want %v within %.1f %%", tt.q, got, tt.want, 100.0/subBuckets)
		}
	}
	s := h.summary()
	if s.Count != 100_000 || s.Max != 100*time.Millisecond || s.Mean < 49*time.Millisecond || s.Mean > 51*time.Millisecond {
		t.Errorf("summary = %+v", s)
	}
}

func TestHistogramMergeAndEdges(t *testing.T) {
	var a, b, empty histogram
	a.record(-time.Second) // clock skew counts as zero
	a.record(10 * time.Microsecond)
	b.record(3 * time.Second)
	a.merge(&b)
	a.merge(&empty)
	if s := a.summary(); s.Count != 3 || s.Max != 3*time.Second || a.quantile(0) != 0 {
		t.Errorf("merged summary = %+v, quantile(0) = %v", s, a.quantile(0))
	}
	if (empty.summary() != Summary{}) {
		t.Errorf("empty summary = %+v", empty.summary())
	}
	for _, v := range []uint64{0, 63, 64, 65, 127, 128, 1000, 1 << 40} {
		i := bucketOf(v)
		if mid := bucketMiddle(i); bucketOf(mid) != i {
			t.Errorf("middle %d of bucket %d (of %d) is in bucket %d", mid, i, v, bucketOf(mid))
		}
	}
}
