package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	// healthInterval is how often Fallback pings Redis while on memory.
	healthInterval = 2 * time.Second
	// pingTimeout bounds one PING.
	pingTimeout = time.Second
	// clearTimeout bounds deleting the stale keys when Redis is back.
	clearTimeout = 30 * time.Second
	// defaultIOTimeout bounds dialling, reading and writing when the Redis
	// URL does not say (go-redis waits 5s, too long for a cache).
	defaultIOTimeout = time.Second
)

// Fallback is the Cache the program uses: Redis when it can, Memory when
// it must (see the package documentation). Operations never fail because
// Redis does; they still return the caller's mistakes (ErrNegativeTTL,
// ErrNotInteger) and, when the caller's context is done, its error.
type Fallback struct {
	redis   *Redis // nil when no Redis is configured
	network string // of Redis: "tcp" or "unix"
	addr    string // of Redis
	memory  *Memory
	logger  *slog.Logger

	usingRedis atomic.Bool
	switching  sync.Mutex // serialises switches between the backends

	stopWatch context.CancelFunc // nil when no Redis is configured
	watchDone chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// NewFallback returns a Fallback over the Redis at redisURL, its keys
// prefixed with prefix (which must not be empty, since a recovery deletes
// every key under it). An empty redisURL means memory only. Redis being
// unreachable (PING, 1s timeout) is not an error: the cache starts on
// memory and switches to Redis when it answers. Each change is logged
// once. Close the Fallback to stop its health loop and close the client.
//
// Unless the URL sets them (dial_timeout, read_timeout, write_timeout,
// max_retries), dial, read and write timeouts are 1s and a failed command
// is retried once, so that an outage costs the requests that meet it
// little time.
func NewFallback(ctx context.Context, redisURL, prefix string, logger *slog.Logger) (*Fallback, error) {
	return newFallback(ctx, redisURL, prefix, logger, healthInterval)
}

func newFallback(ctx context.Context, redisURL, prefix string, logger *slog.Logger, every time.Duration) (*Fallback, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if redisURL == "" {
		logger.Warn("redis disabled; using in-memory cache, not shared between instances")
		return &Fallback{memory: NewMemory(), logger: logger}, nil
	}
	if prefix == "" {
		return nil, errors.New("new cache: a Redis key prefix is required")
	}
	opts, err := parseRedisURL(redisURL)
	if err != nil {
		return nil, err
	}

	f := &Fallback{
		redis:     NewRedis(redis.NewClient(opts), prefix),
		network:   opts.Network,
		addr:      opts.Addr,
		memory:    NewMemory(),
		logger:    logger,
		watchDone: make(chan struct{}),
	}
	// host:port/db says which Redis database is in use; the password, if
	// any, is never logged.
	where := fmt.Sprintf("%s/%d", opts.Addr, opts.DB)
	if err := f.ping(ctx); err != nil {
		logger.Warn("redis unreachable; using in-memory cache until it is back", "redis", where, "error", err)
	} else {
		f.usingRedis.Store(true)
		logger.Info("redis connected", "redis", where, "prefix", prefix)
	}

	// The loop outlives the constructor's context; Close stops it.
	watchCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	f.stopWatch = stop
	go f.watch(watchCtx, every)
	return f, nil
}

func parseRedisURL(raw string) (*redis.Options, error) {
	if _, err := url.Parse(raw); err != nil {
		// url.Parse quotes the whole URL, password included.
		return nil, errors.New("new cache: invalid Redis URL")
	}
	opts, err := redis.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("new cache: invalid Redis URL: %w", err)
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = defaultIOTimeout
	}
	if opts.ReadTimeout == 0 {
		opts.ReadTimeout = defaultIOTimeout
	}
	if opts.WriteTimeout == 0 {
		opts.WriteTimeout = defaultIOTimeout
	}
	if opts.MaxRetries == 0 {
		opts.MaxRetries = 1
	}
	if opts.DialerRetries == 0 {
		opts.DialerRetries = 1
	}
	return opts, nil
}

// Backend returns BackendRedis or BackendMemory, whichever is in use now.
func (f *Fallback) Backend() string {
	if f.usingRedis.Load() {
		return BackendRedis
	}
	return BackendMemory
}

// Client returns the Redis client, or nil when no Redis is configured.
// It exists while Redis is down too: check Backend first.
func (f *Fallback) Client() *redis.Client {
	if f.redis == nil {
		return nil
	}
	return f.redis.client
}

// Close stops the health loop and closes the Redis client. Afterwards the
// cache works on memory only.
func (f *Fallback) Close() error {
	f.closeOnce.Do(func() {
		if f.stopWatch != nil {
			f.stopWatch()
			<-f.watchDone
		}
		f.usingRedis.Store(false)
		if f.redis != nil {
			f.closeErr = f.redis.client.Close()
		}
		_ = f.memory.Close()
	})
	return f.closeErr
}

// Get implements Cache.
func (f *Fallback) Get(ctx context.Context, key string) ([]byte, bool, error) {
	return lookup(ctx, f, func(c Cache) ([]byte, bool, error) { return c.Get(ctx, key) })
}

// Set implements Cache.
func (f *Fallback) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	_, err := call(ctx, f, func(c Cache) (struct{}, error) {
		return struct{}{}, c.Set(ctx, key, value, ttl)
	})
	return err
}

// Take implements Cache.
func (f *Fallback) Take(ctx context.Context, key string) ([]byte, bool, error) {
	return lookup(ctx, f, func(c Cache) ([]byte, bool, error) { return c.Take(ctx, key) })
}

// lookup runs through call a read that finds a value or not (Get, Take).
func lookup(ctx context.Context, f *Fallback, read func(Cache) ([]byte, bool, error)) ([]byte, bool, error) {
	type hit struct {
		value []byte
		ok    bool
	}
	h, err := call(ctx, f, func(c Cache) (hit, error) {
		v, ok, err := read(c)
		return hit{v, ok}, err
	})
	return h.value, h.ok, err
}

// Delete implements Cache.
func (f *Fallback) Delete(ctx context.Context, keys ...string) error {
	_, err := call(ctx, f, func(c Cache) (struct{}, error) {
		return struct{}{}, c.Delete(ctx, keys...)
	})
	return err
}

// Expire implements Cache.
func (f *Fallback) Expire(ctx context.Context, key string, ttl time.Duration) error {
	_, err := call(ctx, f, func(c Cache) (struct{}, error) {
		return struct{}{}, c.Expire(ctx, key, ttl)
	})
	return err
}

// Incr implements Cache.
func (f *Fallback) Incr(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	return call(ctx, f, func(c Cache) (int64, error) {
		return c.Incr(ctx, key, ttl)
	})
}

// call runs op on Redis when it is in use and, if Redis fails, switches to
// memory and runs op there.
func call[T any](ctx context.Context, f *Fallback, op func(Cache) (T, error)) (T, error) {
	if f.usingRedis.Load() {
		v, err := op(f.redis)
		if err == nil || ctx.Err() != nil || !redisUnavailable(err) {
			return v, err
		}
		f.toMemory(ctx, err)
	}
	return op(f.memory)
}

// redisUnavailable tells a Redis failure (network, timeout, closed client,
// a server that cannot serve) from the caller's mistake.
func redisUnavailable(err error) bool {
	if errors.Is(err, ErrNegativeTTL) || errors.Is(err, ErrNotInteger) {
		return false
	}
	var reply redis.Error
	if !errors.As(err, &reply) {
		return true
	}
	// A reply: Redis is up. Only these say it cannot serve.
	for _, code := range []string{
		"LOADING", "BUSY", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN",
		"NOAUTH", "WRONGPASS", "NOPERM", "OOM", "MISCONF",
	} {
		if strings.HasPrefix(reply.Error(), code) {
			return true
		}
	}
	return false
}

// Failed tells the Fallback that a command sent through Client (by the
// Redis read models) failed with err. When err means that Redis is
// unavailable, the Fallback switches to memory as if one of its own
// operations had failed, and deletes every key under its prefix when Redis
// answers again. A caller's mistake, or ctx ending, changes nothing. It
// reports whether err meant that Redis is unavailable.
func (f *Fallback) Failed(ctx context.Context, err error) bool {
	if err == nil || f.redis == nil || ctx.Err() != nil || !redisUnavailable(err) {
		return false
	}
	f.toMemory(ctx, err)
	return true
}

// toMemory switches to an empty memory cache (entries left from an
// earlier gap may be stale) and logs it, once per outage.
func (f *Fallback) toMemory(ctx context.Context, err error) {
	f.switching.Lock()
	defer f.switching.Unlock()
	if !f.usingRedis.Load() {
		return
	}
	_ = f.memory.Clear(ctx)
	f.usingRedis.Store(false)
	f.logger.Warn("redis failed; using in-memory cache until it is back", "error", err)
}

// ping checks that Redis answers, within pingTimeout. It first connects
// by itself: while Redis is down this keeps the client's pool from
// dialling, which logs a line to stderr every time.
func (f *Fallback) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, f.network, f.addr)
	if err != nil {
		return err
	}
	_ = conn.Close()
	return f.redis.client.Ping(ctx).Err()
}

// watch pings Redis every interval while the cache is on memory and
// switches back when Redis answers.
func (f *Fallback) watch(ctx context.Context, every time.Duration) {
	defer close(f.watchDone)
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	warned := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if f.usingRedis.Load() {
			warned = false
			continue
		}
		if err := f.tryRedis(ctx); err != nil && !warned && ctx.Err() == nil {
			f.logger.Warn("redis answers again but deleting stale keys failed; staying on the in-memory cache", "error", err)
			warned = true
		}
	}
}

// tryRedis switches back to Redis if it answers, after deleting every key
// under the prefix. It returns an error only when Redis answers but the
// deletion fails.
func (f *Fallback) tryRedis(ctx context.Context) error {
	if f.ping(ctx) != nil {
		return nil // Still down.
	}
	clearCtx, cancel := context.WithTimeout(ctx, clearTimeout)
	defer cancel()
	if err := f.redis.Clear(clearCtx); err != nil {
		return err
	}
	f.switching.Lock()
	f.usingRedis.Store(true)
	_ = f.memory.Clear(ctx)
	f.switching.Unlock()
	f.logger.Info("redis is back")
	return nil
}
