// Package cachetest is the contract every cache.Cache implementation must
// honour, written once and run against each of them.
package cachetest

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/engramhq/engram/platform/cache"
)

// expiryDeadline bounds how long a test waits for a key to expire.
const expiryDeadline = 5 * time.Second

// Run runs the contract against the caches newCache returns. Each call of
// newCache must return a cache that shares no keys with any other (a fresh
// instance, or a fresh key prefix) and register its own cleanup.
func Run(t *testing.T, newCache func(t *testing.T) cache.Cache) {
	t.Helper()
	tests := []struct {
		name string
		test func(t *testing.T, c cache.Cache)
	}{
		{"GetSetMiss", testGetSetMiss},
		{"ValuesAreCopied", testValuesAreCopied},
		{"TTLExpires", testTTLExpires},
		{"SetReplacesTTL", testSetReplacesTTL},
		{"NegativeTTL", testNegativeTTL},
		{"DeleteMany", testDeleteMany},
		{"TakeOnce", testTakeOnce},
		{"Expire", testExpire},
		{"Incr", testIncr},
		{"IncrTTLSetOnCreate", testIncrTTLSetOnCreate},
		{"IncrConcurrent", testIncrConcurrent},
		{"Backend", testBackend},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.test(t, newCache(t))
		})
	}
	t.Run("Isolation", func(t *testing.T) {
		t.Parallel()
		testIsolation(t, newCache(t), newCache(t))
	})
}

func testGetSetMiss(t *testing.T, c cache.Cache) {
	ctx := t.Context()
	if v, ok, err := c.Get(ctx, "missing"); v != nil || ok || err != nil {
		t.Fatalf("Get(missing) = %q, %v, %v; want nil, false, nil", v, ok, err)
	}
	mustSet(t, c, "k", "v1", 0)
	wantValue(t, c, "k", "v1")
	mustSet(t, c, "k", "v2", 0)
	wantValue(t, c, "k", "v2")
	mustSet(t, c, "empty", "", 0)
	wantValue(t, c, "empty", "")
	mustSet(t, c, "binary", "\x00\xff\n", time.Hour)
	wantValue(t, c, "binary", "\x00\xff\n")
}

func testValuesAreCopied(t *testing.T, c cache.Cache) {
	ctx := t.Context()
	value := []byte("abc")
	if err := c.Set(ctx, "k", value, 0); err != nil {
		t.Fatal(err)
	}
	value[0] = 'X'
	got, _, _ := c.Get(ctx, "k")
	if string(got) != "abc" {
		t.Fatalf("Get = %q after the caller changed the slice it set; want abc", got)
	}
	got[0] = 'Y'
	wantValue(t, c, "k", "abc")
}

func testTTLExpires(t *testing.T, c cache.Cache) {
	mustSet(t, c, "long", "v", time.Hour)
	mustSet(t, c, "forever", "v", 0)
	mustSet(t, c, "short", "v", 50*time.Millisecond)
	waitMissing(t, c, "short")
	wantValue(t, c, "long", "v")
	wantValue(t, c, "forever", "v")
}

func testSetReplacesTTL(t *testing.T, c cache.Cache) {
	mustSet(t, c, "k", "old", 50*time.Millisecond)
	mustSet(t, c, "k", "new", 0)
	mustSet(t, c, "probe", "v", 50*time.Millisecond)
	waitMissing(t, c, "probe")
	wantValue(t, c, "k", "new")
}

func testNegativeTTL(t *testing.T, c cache.Cache) {
	ctx := t.Context()
	mustSet(t, c, "k", "v", 0)
	if err := c.Set(ctx, "k", []byte("x"), -time.Second); !errors.Is(err, cache.ErrNegativeTTL) {
		t.Errorf("Set with a negative ttl: err = %v, want ErrNegativeTTL", err)
	}
	if err := c.Expire(ctx, "k", -time.Second); !errors.Is(err, cache.ErrNegativeTTL) {
		t.Errorf("Expire with a negative ttl: err = %v, want ErrNegativeTTL", err)
	}
	if _, err := c.Incr(ctx, "n", -time.Second); !errors.Is(err, cache.ErrNegativeTTL) {
		t.Errorf("Incr with a negative ttl: err = %v, want ErrNegativeTTL", err)
	}
	wantValue(t, c, "k", "v")
}

func testDeleteMany(t *testing.T, c cache.Cache) {
	ctx := t.Context()
	for _, k := range []string{"a", "b", "c"} {
		mustSet(t, c, k, k, 0)
	}
	if err := c.Delete(ctx, "a", "b", "never-set"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantMissing(t, c, "a")
	wantMissing(t, c, "b")
	wantValue(t, c, "c", "c")
	if err := c.Delete(ctx); err != nil {
		t.Errorf("Delete with no keys: %v", err)
	}
	if err := c.Delete(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	wantMissing(t, c, "c")
}

func testTakeOnce(t *testing.T, c cache.Cache) {
	ctx := t.Context()
	if v, ok, err := c.Take(ctx, "missing"); v != nil || ok || err != nil {
		t.Fatalf("Take(missing) = %q, %v, %v; want nil, false, nil", v, ok, err)
	}
	mustSet(t, c, "expiring", "v", 50*time.Millisecond)
	waitMissing(t, c, "expiring")
	if _, ok, err := c.Take(ctx, "expiring"); ok || err != nil {
		t.Fatalf("Take of an expired key = %v, %v; want a miss", ok, err)
	}

	// Of many concurrent Takes of one key, exactly one gets the value.
	const takers = 8
	for round := range 5 {
		mustSet(t, c, "ticket", "secret", time.Minute)
		var wg sync.WaitGroup
		got := make(chan string, takers)
		for range takers {
			wg.Go(func() {
				v, ok, err := c.Take(ctx, "ticket")
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					got <- string(v)
				}
			})
		}
		wg.Wait()
		close(got)
		var values []string
		for v := range got {
			values = append(values, v)
		}
		if len(values) != 1 || values[0] != "secret" {
			t.Fatalf("round %d: concurrent Takes got %q; want exactly one \"secret\"", round, values)
		}
		wantMissing(t, c, "ticket")
	}
}

func testExpire(t *testing.T, c cache.Cache) {
	ctx := t.Context()
	if err := c.Expire(ctx, "missing", time.Hour); err != nil {
		t.Errorf("Expire(missing) = %v, want nil", err)
	}
	wantMissing(t, c, "missing")

	mustSet(t, c, "doomed", "v", 0)
	if err := c.Expire(ctx, "doomed", 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	mustSet(t, c, "saved", "v", 50*time.Millisecond)
	if err := c.Expire(ctx, "saved", 0); err != nil {
		t.Fatal(err)
	}
	mustSet(t, c, "extended", "v", 50*time.Millisecond)
	if err := c.Expire(ctx, "extended", time.Hour); err != nil {
		t.Fatal(err)
	}
	waitMissing(t, c, "doomed")
	wantValue(t, c, "saved", "v")
	wantValue(t, c, "extended", "v")
}

func testIncr(t *testing.T, c cache.Cache) {
	ctx := t.Context()
	for want := int64(1); want <= 3; want++ {
		n, err := c.Incr(ctx, "n", 0)
		if err != nil || n != want {
			t.Fatalf("Incr = %d, %v; want %d", n, err, want)
		}
	}
	wantValue(t, c, "n", "3")

	mustSet(t, c, "set", "41", 0)
	if n, err := c.Incr(ctx, "set", time.Hour); err != nil || n != 42 {
		t.Errorf("Incr after Set(41) = %d, %v; want 42", n, err)
	}

	mustSet(t, c, "text", "abc", 0)
	if _, err := c.Incr(ctx, "text", 0); !errors.Is(err, cache.ErrNotInteger) {
		t.Errorf("Incr of a non-integer: err = %v, want ErrNotInteger", err)
	}
	wantValue(t, c, "text", "abc")

	mustSet(t, c, "max", "9223372036854775807", 0)
	if _, err := c.Incr(ctx, "max", 0); !errors.Is(err, cache.ErrNotInteger) {
		t.Errorf("Incr past the largest int64: err = %v, want ErrNotInteger", err)
	}
}

func testIncrTTLSetOnCreate(t *testing.T, c cache.Cache) {
	ctx := t.Context()
	if n, err := c.Incr(ctx, "window", 100*time.Millisecond); err != nil || n != 1 {
		t.Fatalf("Incr = %d, %v; want 1", n, err)
	}
	// A later Incr with another ttl must not move the window's end.
	if n, err := c.Incr(ctx, "window", time.Hour); err != nil || n != 2 {
		t.Fatalf("Incr = %d, %v; want 2", n, err)
	}
	if _, err := c.Incr(ctx, "forever", 0); err != nil {
		t.Fatal(err)
	}
	waitMissing(t, c, "window")
	if n, err := c.Incr(ctx, "window", time.Hour); err != nil || n != 1 {
		t.Errorf("Incr after the window expired = %d, %v; want 1", n, err)
	}
	wantValue(t, c, "forever", "1")
}

func testIncrConcurrent(t *testing.T, c cache.Cache) {
	const workers, each = 8, 25
	ctx := t.Context()
	var wg sync.WaitGroup
	results := make(chan int64, workers*each)
	for range workers {
		wg.Go(func() {
			for range each {
				n, err := c.Incr(ctx, "counter", time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				results <- n
			}
		})
	}
	wg.Wait()
	close(results)
	var got []int64
	for n := range results {
		got = append(got, n)
	}
	slices.Sort(got)
	for i, n := range got {
		if n != int64(i+1) {
			t.Fatalf("concurrent Incr results are not 1..%d: %v", workers*each, got)
		}
	}
}

func testBackend(t *testing.T, c cache.Cache) {
	if b := c.Backend(); b != cache.BackendRedis && b != cache.BackendMemory {
		t.Errorf("Backend() = %q, want %q or %q", b, cache.BackendRedis, cache.BackendMemory)
	}
}

func testIsolation(t *testing.T, a, b cache.Cache) {
	ctx := t.Context()
	mustSet(t, a, "shared-name", "a", 0)
	wantMissing(t, b, "shared-name")
	mustSet(t, b, "shared-name", "b", 0)
	wantValue(t, a, "shared-name", "a")
	if err := b.Delete(ctx, "shared-name"); err != nil {
		t.Fatal(err)
	}
	wantValue(t, a, "shared-name", "a")
	if _, err := b.Incr(ctx, "shared-name", 0); err != nil {
		t.Fatal(err)
	}
	wantValue(t, a, "shared-name", "a")
}

func mustSet(t *testing.T, c cache.Cache, key, value string, ttl time.Duration) {
	t.Helper()
	if err := c.Set(t.Context(), key, []byte(value), ttl); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func wantValue(t *testing.T, c cache.Cache, key, want string) {
	t.Helper()
	got, ok, err := c.Get(t.Context(), key)
	if err != nil || !ok || string(got) != want {
		t.Fatalf("Get(%q) = %q, %v, %v; want %q", key, got, ok, err, want)
	}
}

func wantMissing(t *testing.T, c cache.Cache, key string) {
	t.Helper()
	if got, ok, err := c.Get(t.Context(), key); err != nil || ok {
		t.Fatalf("Get(%q) = %q, %v, %v; want a miss", key, got, ok, err)
	}
}

// waitMissing polls until key is gone, failing after expiryDeadline.
func waitMissing(t *testing.T, c cache.Cache, key string) {
	t.Helper()
	deadline := time.Now().Add(expiryDeadline)
	for {
		_, ok, err := c.Get(t.Context(), key)
		if err != nil {
			t.Fatalf("Get(%q): %v", key, err)
		}
		if !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q did not expire within %v", key, expiryDeadline)
		}
		time.Sleep(10 * time.Millisecond) // a poll interval, not a wait for a result
	}
}
