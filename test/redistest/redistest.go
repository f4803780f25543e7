// Package redistest gives each test a Redis key prefix of its own on the
// test Redis and removes every key under it when the test ends, whoever
// wrote them (the test, or an engram process it started), with or without
// an expiry. A test fails if keys are still there after the removal, and
// Main fails the test binary if any prefix it handed out was left with keys.
//
// The server is taken from ENGRAM_TEST_REDIS_URL (default
// redis://127.0.0.1:6379/0). When it does not answer, the tests that need
// it fail, or skip when ENGRAM_TEST_SKIP_REDIS=1.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/engramhq/engram/platform/cache"
)

// KeyPrefix starts every prefix this package hands out.
const KeyPrefix = "engramtest:"

// URL returns the URL of the test Redis.
func URL() string {
	if u := os.Getenv("ENGRAM_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// Client returns a client of the Redis at rawURL (URL() when empty),
// closed when t ends. It fails t when the server does not answer, or skips
// it when ENGRAM_TEST_SKIP_REDIS=1.
func Client(t testing.TB, rawURL string) *redis.Client {
	t.Helper()
	if rawURL == "" {
		rawURL = URL()
	}
	client, err := open(rawURL)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(func() { _ = client.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		if os.Getenv("ENGRAM_TEST_SKIP_REDIS") == "1" {
			t.Skipf("Redis at %s is unreachable (%v) and ENGRAM_TEST_SKIP_REDIS=1", redact(rawURL), err)
		}
		t.Fatalf("Redis at %s is unreachable: %v (set ENGRAM_TEST_SKIP_REDIS=1 to skip the Redis tests)", redact(rawURL), err)
	}
	return client
}

// NewPrefix returns a prefix no other test uses, "engramtest:<hex>:",
// without arranging its removal: pair it with Clean. Main checks it.
func NewPrefix() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	prefix := KeyPrefix + hex.EncodeToString(b) + ":"
	handedOut.Lock()
	handedOut.prefixes = append(handedOut.prefixes, prefix)
	handedOut.Unlock()
	return prefix
}

// Prefix returns a new prefix whose keys are removed from the test Redis
// when t ends (after the cleanups registered later, such as stopping a
// process that writes under it).
func Prefix(t testing.TB) string {
	t.Helper()
	prefix := NewPrefix()
	Clean(t, URL(), prefix)
	return prefix
}

// Clean removes every key under prefix from the Redis at rawURL (URL()
// when empty) when t ends, then fails t if any key is left. Register it
// before starting anything that writes under prefix, so that it runs after
// that has stopped. A server that no longer answers (a test's private
// one, stopped) holds nothing to clean.
func Clean(t testing.TB, rawURL, prefix string) {
	t.Helper()
	if !strings.HasPrefix(prefix, KeyPrefix) || len(prefix) <= len(KeyPrefix) {
		t.Fatalf("redistest: refusing to clean %q: test prefixes start with %q", prefix, KeyPrefix)
	}
	if rawURL == "" {
		rawURL = URL()
	}
	t.Cleanup(func() {
		client, err := open(rawURL)
		if err != nil {
			t.Errorf("redistest: %v", err)
			return
		}
		defer client.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if client.Ping(ctx).Err() != nil {
			return
		}
		if _, err := Delete(ctx, client, prefix); err != nil {
			t.Errorf("redistest: %v", err)
			return
		}
		if left, err := Keys(ctx, client, prefix); err != nil {
			t.Errorf("redistest: %v", err)
		} else if len(left) > 0 {
			t.Errorf("redistest: %d keys are still under %s after its removal (is a process still writing?): %s",
				len(left), prefix, sample(left))
		}
	})
}

// Delete removes every key under prefix and returns how many it removed.
func Delete(ctx context.Context, client redis.UniversalClient, prefix string) (int, error) {
	return cache.UnlinkUnder(ctx, client, prefix, nil)
}

// Keys returns every key under prefix, sorted.
func Keys(ctx context.Context, client redis.UniversalClient, prefix string) ([]string, error) {
	var keys []string
	iter := client.Scan(ctx, 0, cache.EscapeGlob(prefix)+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("scan keys under %s: %w", prefix, err)
	}
	sort.Strings(keys)
	return keys, nil
}

// Main runs the tests of a package, as its TestMain, then checks that no
// prefix handed out by NewPrefix or Prefix in this process still holds keys
// on the test Redis; if one does, it removes them and the run fails.
//
//	func TestMain(m *testing.M) { redistest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if leftover := checkHandedOut(); leftover != "" {
		fmt.Fprintln(os.Stderr, "redistest:", leftover)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

var handedOut struct {
	sync.Mutex
	prefixes []string
}

// checkHandedOut removes what is left under the prefixes handed out and
// describes it; "" when nothing was left or the test Redis does not answer.
func checkHandedOut() string {
	handedOut.Lock()
	prefixes := append([]string(nil), handedOut.prefixes...)
	handedOut.Unlock()
	if len(prefixes) == 0 {
		return ""
	}
	client, err := open(URL())
	if err != nil {
		return err.Error()
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if client.Ping(ctx).Err() != nil {
		return ""
	}
	var report []string
	for _, prefix := range prefixes {
		n, err := Delete(ctx, client, prefix)
		if err != nil {
			report = append(report, err.Error())
		} else if n > 0 {
			report = append(report, fmt.Sprintf("%d keys under %s", n, prefix))
		}
	}
	if len(report) == 0 {
		return ""
	}
	return "keys were left on the test Redis (a test did not clean its prefix; they are removed now): " + strings.Join(report, "; ")
}

func open(rawURL string) (*redis.Client, error) {
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis URL %s: %w", redact(rawURL), err)
	}
	return redis.NewClient(opts), nil
}

func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func sample(keys []string) string {
	if len(keys) > 5 {
		return strings.Join(keys[:5], ", ") + ", …"
	}
	return strings.Join(keys, ", ")
}
