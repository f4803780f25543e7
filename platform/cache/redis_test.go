package cache_test

import (
	"context"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/engramhq/engram/platform/cache"
	"github.com/engramhq/engram/platform/cache/cachetest"
	"github.com/engramhq/engram/test/redistest"
)

// testRedisURL is the Redis the tests use: ENGRAM_TEST_REDIS_URL or the
// local default.
func testRedisURL() string {
	if u := os.Getenv("ENGRAM_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// redisClient connects to the test Redis. Unreachable, it fails the test,
// unless ENGRAM_TEST_SKIP_REDIS=1 says to skip.
func redisClient(t *testing.T) *redis.Client {
	t.Helper()
	raw := testRedisURL()
	shown := "ENGRAM_TEST_REDIS_URL"
	if u, err := url.Parse(raw); err == nil {
		shown = u.Redacted()
	}
	opts, err := redis.ParseURL(raw)
	if err != nil {
		t.Fatalf("ENGRAM_TEST_REDIS_URL: %v", err)
	}
	client := redis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		if os.Getenv("ENGRAM_TEST_SKIP_REDIS") == "1" {
			t.Skipf("Redis at %s is unreachable (%v) and ENGRAM_TEST_SKIP_REDIS=1", shown, err)
		}
		t.Fatalf("Redis at %s is unreachable: %v (set ENGRAM_TEST_SKIP_REDIS=1 to skip the Redis tests)", shown, err)
	}
	return client
}

// testPrefix returns a key prefix no other test uses.
func testPrefix() string { return redistest.NewPrefix() }

// cleanPrefix deletes every key under prefix when the test ends, and fails
// the test if any is left.
func cleanPrefix(t *testing.T, _ *redis.Client, prefix string) {
	t.Helper()
	redistest.Clean(t, testRedisURL(), prefix)
}

func TestRedisContract(t *testing.T) {
	client := redisClient(t)
	cachetest.Run(t, func(t *testing.T) cache.Cache {
		prefix := testPrefix()
		cleanPrefix(t, client, prefix)
		return cache.NewRedis(client, prefix)
	})
}

func TestRedisPrefixesKeys(t *testing.T) {
	client := redisClient(t)
	prefix := testPrefix()
	cleanPrefix(t, client, prefix)
	c := cache.NewRedis(client, prefix)
	ctx := t.Context()

	if err := c.Set(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if got, err := client.Get(ctx, prefix+"k").Result(); err != nil || got != "v" {
		t.Errorf("GET %sk = %q, %v; want v", prefix, got, err)
	}
	if _, err := c.Incr(ctx, "n", time.Minute); err != nil {
		t.Fatal(err)
	}
	if ttl, err := client.PTTL(ctx, prefix+"n").Result(); err != nil || ttl <= 0 || ttl > time.Minute {
		t.Errorf("PTTL of a counter = %v, %v; want within a minute", ttl, err)
	}
	if c.Client() != client || c.Prefix() != prefix {
		t.Error("Client or Prefix do not return what NewRedis got")
	}
}

func TestRedisClear(t *testing.T) {
	client := redisClient(t)
	base := testPrefix()
	cleanPrefix(t, client, base)
	ctx := t.Context()

	// A glob character in the prefix must not widen what Clear deletes.
	mine := cache.NewRedis(client, base+"a*")
	other := cache.NewRedis(client, base+"ab")
	for _, c := range []*cache.Redis{mine, other} {
		for _, k := range []string{"x", "y"} {
			if err := c.Set(ctx, k, []byte("v"), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := mine.Clear(ctx); err != nil {
		t.Fatalf("Clear: %v", err)
	}
	if n, err := client.Exists(ctx, base+"a*x", base+"a*y").Result(); err != nil || n != 0 {
		t.Errorf("%d of the cleared keys remain (err %v)", n, err)
	}
	if n, err := client.Exists(ctx, base+"abx", base+"aby").Result(); err != nil || n != 2 {
		t.Errorf("Clear deleted keys of another prefix: %d of 2 remain (err %v)", n, err)
	}
	if err := cache.NewRedis(client, "").Clear(ctx); err == nil {
		t.Error("Clear without a prefix did not refuse")
	}
}
