package cache_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engramhq/engram/platform/cache"
	"github.com/engramhq/engram/platform/cache/cachetest"
	"github.com/engramhq/engram/test/redistest"
)

// unreachableRedis is a URL nothing listens on.
const unreachableRedis = "redis://127.0.0.1:1/0"

// newFallback returns a Fallback over the Redis at url, closed when t ends;
// it fails t unless the Fallback starts on backend.
func newFallback(t *testing.T, url, prefix string, logger *slog.Logger, backend string) *cache.Fallback {
	t.Helper()
	f, err := cache.NewFallback(t.Context(), url, prefix, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	if f.Backend() != backend {
		t.Fatalf("Backend() = %q, want %q", f.Backend(), backend)
	}
	return f
}

func TestFallbackContractOnRedis(t *testing.T) {
	redistest.Client(t, "") // skips or fails when the test Redis does not answer
	cachetest.Run(t, func(t *testing.T) cache.Cache {
		prefix := redistest.Prefix(t)
		return newFallback(t, redistest.URL(), prefix, nil, cache.BackendRedis)
	})
}

func TestFallbackContractWithRedisUnreachable(t *testing.T) {
	cachetest.Run(t, func(t *testing.T) cache.Cache {
		return newFallback(t, unreachableRedis, "engramtest:", nil, cache.BackendMemory)
	})
}

func TestFallbackWithoutRedis(t *testing.T) {
	logs := &records{}
	f := newFallback(t, "", "", slog.New(logs), cache.BackendMemory)
	if f.Client() != nil {
		t.Errorf("Client() = %v without Redis; want nil", f.Client())
	}
	if got := logs.messages(slog.LevelWarn); len(got) != 1 {
		t.Errorf("warnings = %q, want one", got)
	}
	if err := f.Set(t.Context(), "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := f.Get(t.Context(), "k"); string(v) != "v" || !ok || err != nil {
		t.Errorf("Get = %q, %v, %v", v, ok, err)
	}
}

func TestFallbackUnreachableAtStart(t *testing.T) {
	logs := &records{}
	f := newFallback(t, unreachableRedis, "engramtest:", slog.New(logs), cache.BackendMemory)
	if f.Client() == nil {
		t.Error("Client() is nil although a Redis URL was given")
	}
	ctx := t.Context()
	if n, err := f.Incr(ctx, "n", time.Minute); n != 1 || err != nil {
		t.Errorf("Incr = %d, %v", n, err)
	}
	if got := logs.messages(slog.LevelWarn); len(got) != 1 || !strings.Contains(got[0], "unreachable") {
		t.Errorf("warnings = %q, want one about Redis being unreachable", got)
	}
}

func TestNewFallbackRefuses(t *testing.T) {
	tests := map[string]struct{ url, prefix string }{
		"no prefix":    {"redis://127.0.0.1:6379/0", ""},
		"bad scheme":   {"http://127.0.0.1:6379", "p:"},
		"bad database": {"redis://127.0.0.1:6379/x", "p:"},
		"not a URL":    {"redis://:hunter2@[::1", "p:"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			f, err := cache.NewFallback(t.Context(), tt.url, tt.prefix, nil)
			if err == nil {
				_ = f.Close()
				t.Fatal("NewFallback accepted it")
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error reveals the password: %v", err)
			}
		})
	}
}

func TestFallbackKeepsCallerErrors(t *testing.T) {
	client := redistest.Client(t, "")
	prefix := redistest.Prefix(t)
	f := newFallback(t, redistest.URL(), prefix, nil, cache.BackendRedis)
	ctx := t.Context()
	if err := f.Set(ctx, "text", []byte("abc"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Incr(ctx, "text", 0); !errors.Is(err, cache.ErrNotInteger) {
		t.Errorf("Incr of text: err = %v, want ErrNotInteger", err)
	}
	// A reply error is not an outage.
	if err := client.HSet(ctx, prefix+"hash", "f", "v").Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Get(ctx, "hash"); err == nil {
		t.Error("Get of a hash returned no WRONGTYPE error")
	}
	if f.Backend() != cache.BackendRedis {
		t.Errorf("Backend() = %q after caller errors, want redis", f.Backend())
	}

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := f.Get(canceled, "text"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a canceled context: err = %v, want context.Canceled", err)
	}
	if f.Backend() != cache.BackendRedis {
		t.Errorf("Backend() = %q after a canceled request, want redis", f.Backend())
	}
}

// TestFallbackSwitchesAndRecovers runs Fallback through a TCP proxy to the
// test Redis and cuts it: down at start, up, down, up again.
func TestFallbackSwitchesAndRecovers(t *testing.T) {
	client := redistest.Client(t, "")
	prefix := redistest.Prefix(t)
	ctx := t.Context()
	p := newProxy(t, client.Options().Addr)

	// An entry from before this process started.
	if err := client.Set(ctx, prefix+"stale", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}

	logs := &records{}
	f, err := cache.NewFallbackEvery(ctx, "redis://"+p.addr+"/"+strconv.Itoa(client.Options().DB), prefix, slog.New(logs), 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Backend() != cache.BackendMemory {
		t.Fatalf("Backend() = %q with the proxy down, want memory", f.Backend())
	}
	mustSet(t, f, "gap1", "v")

	p.start()
	waitBackend(t, f, cache.BackendRedis)
	wantMiss(t, f, "stale") // deleted before switching
	wantMiss(t, f, "gap1")  // memory entries do not move to Redis
	mustSet(t, f, "old", "v")
	if got, err := client.Get(ctx, prefix+"old").Result(); err != nil || got != "v" {
		t.Fatalf("the write did not reach Redis: %q, %v", got, err)
	}

	p.stop()
	for range 3 { // requests keep working, and the switch is logged once
		if _, _, err := f.Get(ctx, "old"); err != nil {
			t.Fatalf("Get with Redis down: %v", err)
		}
	}
	if f.Backend() != cache.BackendMemory {
		t.Fatalf("Backend() = %q with Redis down, want memory", f.Backend())
	}
	mustSet(t, f, "gap2", "v")
	if n, err := f.Incr(ctx, "tries", time.Minute); n != 1 || err != nil {
		t.Errorf("Incr with Redis down = %d, %v", n, err)
	}

	p.start()
	waitBackend(t, f, cache.BackendRedis)
	wantMiss(t, f, "old") // written before the gap: possibly stale
	wantMiss(t, f, "gap2")
	if keys, err := client.Keys(ctx, prefix+"*").Result(); err != nil || len(keys) != 0 {
		t.Errorf("keys left under the prefix after recovery: %v, %v", keys, err)
	}

	warns := logs.messages(slog.LevelWarn)
	if len(warns) != 2 || !strings.Contains(warns[0], "unreachable") || !strings.Contains(warns[1], "failed") {
		t.Errorf("warnings = %q, want one for the start and one for the outage", warns)
	}
	if infos := logs.messages(slog.LevelInfo); len(infos) != 2 || infos[0] != "redis is back" || infos[1] != "redis is back" {
		t.Errorf("infos = %q, want two \"redis is back\"", infos)
	}
}

func mustSet(t *testing.T, c cache.Cache, key, value string) {
	t.Helper()
	if err := c.Set(t.Context(), key, []byte(value), 0); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func wantMiss(t *testing.T, c cache.Cache, key string) {
	t.Helper()
	if v, ok, err := c.Get(t.Context(), key); ok || err != nil {
		t.Errorf("Get(%q) = %q, %v, %v; want a miss", key, v, ok, err)
	}
}

func waitBackend(t *testing.T, c cache.Cache, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c.Backend() != want {
		if time.Now().After(deadline) {
			t.Fatalf("Backend() is still %q after 5s, want %q", c.Backend(), want)
		}
		time.Sleep(5 * time.Millisecond) // poll interval
	}
}

// records is a slog.Handler that keeps every record's level and message.
type records struct {
	mu   sync.Mutex
	list []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *records) WithGroup(string) slog.Handler            { return r }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, rec)
	return nil
}

func (r *records) messages(level slog.Level) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range r.list {
		if rec.Level == level {
			out = append(out, rec.Message)
		}
	}
	return out
}

// proxy forwards TCP connections from addr to target until stopped; it
// can be started again on the same address.
type proxy struct {
	t      *testing.T
	addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// newProxy reserves a free address and returns a stopped proxy on it.
func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, addr: ln.Addr().String(), target: target, conns: map[net.Conn]struct{}{}}
	_ = ln.Close()
	t.Cleanup(p.stop)
	return p
}

func (p *proxy) start() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy: %v", err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			down, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				_ = down.Close()
				continue
			}
			p.mu.Lock()
			p.conns[down], p.conns[up] = struct{}{}, struct{}{}
			p.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				_, _ = io.Copy(dst, src)
				_ = dst.Close()
				_ = src.Close()
			}
			p.wg.Go(func() { pipe(up, down) })
			p.wg.Go(func() { pipe(down, up) })
		}
	})
}

// stop closes the listener and every connection, as a dead Redis would.
func (p *proxy) stop() {
	p.mu.Lock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
	p.mu.Unlock()
	p.wg.Wait()
}

func TestFallbackLogsWhichRedisDatabase(t *testing.T) {
	logs := &records{}
	newFallback(t, "redis://:s3cret@127.0.0.1:1/5", "engramtest:", slog.New(logs), cache.BackendMemory)
	logs.mu.Lock()
	defer logs.mu.Unlock()
	var where []string
	for _, rec := range logs.list {
		rec.Attrs(func(a slog.Attr) bool {
			if strings.Contains(a.Value.String(), "s3cret") {
				t.Errorf("log %q shows the password in %s", rec.Message, a.Key)
			}
			if a.Key == "redis" {
				where = append(where, a.Value.String())
			}
			return true
		})
	}
	if len(where) != 1 || where[0] != "127.0.0.1:1/5" {
		t.Errorf("redis attributes = %q, want one host:port/db 127.0.0.1:1/5", where)
	}
}
