package cache_test

import (
	"testing"
	"time"

	"github.com/engramhq/engram/platform/cache"
	"github.com/engramhq/engram/platform/cache/cachetest"
	"github.com/engramhq/engram/test/redistest"
)

func TestRedisContract(t *testing.T) {
	client := redistest.Client(t, "")
	cachetest.Run(t, func(t *testing.T) cache.Cache {
		prefix := redistest.Prefix(t)
		return cache.NewRedis(client, prefix)
	})
}

func TestRedisPrefixesKeys(t *testing.T) {
	client := redistest.Client(t, "")
	prefix := redistest.Prefix(t)
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
	client := redistest.Client(t, "")
	base := redistest.Prefix(t)
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
