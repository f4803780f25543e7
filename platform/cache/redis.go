package cache

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Cache in Redis, shared by every instance. Every key is
// prefixed, so several deployments or tests can share one database.
type Redis struct {
	client *redis.Client
	prefix string
}

// NewRedis returns a Cache storing key as prefix+key through client. The
// caller owns client and closes it.
func NewRedis(client *redis.Client, prefix string) *Redis {
	return &Redis{client: client, prefix: prefix}
}

// Client returns the underlying client, e.g. for read models that run
// scripts. Keys written through it should start with Prefix.
func (r *Redis) Client() *redis.Client { return r.client }

// Prefix returns the prefix of every key.
func (r *Redis) Prefix() string { return r.prefix }

// Get implements Cache.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, bool, error) {
	return found("get", r.client.Get(ctx, r.prefix+key))
}

// Set implements Cache.
func (r *Redis) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl < 0 {
		return ErrNegativeTTL // go-redis would read -1 as KEEPTTL.
	}
	if err := r.client.Set(ctx, r.prefix+key, value, ttl).Err(); err != nil {
		return fmt.Errorf("redis set: %w", err)
	}
	return nil
}

// Take implements Cache with GETDEL (Redis 6.2 or later).
func (r *Redis) Take(ctx context.Context, key string) ([]byte, bool, error) {
	return found("getdel", r.client.GetDel(ctx, r.prefix+key))
}

// found reads the answer of a command that returns a value or nothing: a
// missing key is not an error.
func found(op string, cmd *redis.StringCmd) ([]byte, bool, error) {
	v, err := cmd.Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("redis %s: %w", op, err)
	}
	return v, true, nil
}

// Delete implements Cache.
func (r *Redis) Delete(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	prefixed := make([]string, len(keys))
	for i, k := range keys {
		prefixed[i] = r.prefix + k
	}
	if err := r.client.Unlink(ctx, prefixed...).Err(); err != nil {
		return fmt.Errorf("redis unlink: %w", err)
	}
	return nil
}

// Expire implements Cache.
func (r *Redis) Expire(ctx context.Context, key string, ttl time.Duration) error {
	var err error
	switch {
	case ttl < 0:
		return ErrNegativeTTL
	case ttl == 0:
		err = r.client.Persist(ctx, r.prefix+key).Err()
	default:
		err = r.client.PExpire(ctx, r.prefix+key, ttl).Err()
	}
	if err != nil {
		return fmt.Errorf("redis expire: %w", err)
	}
	return nil
}

// incrLua increments a counter and sets its expiry when it creates it
// (see incr.lua).
//
//go:embed incr.lua
var incrLua string

var incrScript = redis.NewScript(incrLua)

// Incr implements Cache.
func (r *Redis) Incr(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	if ttl < 0 {
		return 0, ErrNegativeTTL
	}
	ms := ttl.Milliseconds()
	if ttl > 0 && ms == 0 {
		ms = 1
	}
	n, err := incrScript.Run(ctx, r.client, []string{r.prefix + key}, ms).Int64()
	if err != nil {
		var rerr redis.Error
		if errors.As(err, &rerr) && (strings.Contains(err.Error(), "not an integer") || strings.Contains(err.Error(), "overflow")) {
			return 0, ErrNotInteger
		}
		return 0, fmt.Errorf("redis incr: %w", err)
	}
	return n, nil
}

// Backend returns BackendRedis.
func (r *Redis) Backend() string { return BackendRedis }

// Clear deletes every key under the prefix (SCAN + UNLINK), including
// keys written through Client. It refuses to run without a prefix, which
// would empty the whole database.
func (r *Redis) Clear(ctx context.Context) error {
	if r.prefix == "" {
		return errors.New("redis clear: refusing to delete every key: the cache has no prefix")
	}
	if _, err := UnlinkUnder(ctx, r.client, r.prefix, nil); err != nil {
		return fmt.Errorf("redis clear: %w", err)
	}
	return nil
}

// UnlinkUnder deletes the keys under prefix for which drop reports true
// (every one when drop is nil), found with SCAN and deleted with UNLINK in
// batches, and returns how many it deleted.
func UnlinkUnder(ctx context.Context, client redis.UniversalClient, prefix string, drop func(key string) bool) (int, error) {
	const batchSize = 1000
	iter := client.Scan(ctx, 0, EscapeGlob(prefix)+"*", batchSize).Iterator()
	batch := make([]string, 0, batchSize)
	deleted := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		n, err := client.Unlink(ctx, batch...).Result()
		deleted += int(n)
		batch = batch[:0]
		if err != nil {
			return fmt.Errorf("unlink keys under %s: %w", prefix, err)
		}
		return nil
	}
	for iter.Next(ctx) {
		if drop != nil && !drop(iter.Val()) {
			continue
		}
		batch = append(batch, iter.Val())
		if len(batch) == batchSize {
			if err := flush(); err != nil {
				return deleted, err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return deleted, fmt.Errorf("scan keys under %s: %w", prefix, err)
	}
	return deleted, flush()
}

// EscapeGlob escapes the characters special to Redis's MATCH patterns, so
// that EscapeGlob(prefix)+"*" matches the keys under prefix and no others.
func EscapeGlob(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}
