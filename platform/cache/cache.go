package cache

import (
	"context"
	"errors"
	"time"
)

// Cache stores byte values under string keys, with optional expiry.
// Implementations are safe for concurrent use.
type Cache interface {
	// Get returns the value of key and true, or nil and false when key is
	// missing or expired.
	Get(ctx context.Context, key string) ([]byte, bool, error)
	// Set stores value under key, replacing any value and expiry. A ttl of 0
	// means no expiry; a negative ttl returns ErrNegativeTTL.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Take returns the value of key and deletes it, atomically: of several
	// concurrent Takes of one key, exactly one gets the value. It returns
	// nil and false when key is missing or expired.
	Take(ctx context.Context, key string) ([]byte, bool, error)
	// Delete removes the keys; missing keys are ignored.
	Delete(ctx context.Context, keys ...string) error
	// Expire sets the time to live of an existing key; a ttl of 0 removes
	// its expiry. A missing key is ignored; a negative ttl returns
	// ErrNegativeTTL.
	Expire(ctx context.Context, key string, ttl time.Duration) error
	// Incr adds one to the integer stored under key and returns the result.
	// A missing key counts from 0 and, when ttl > 0, expires after ttl:
	// the expiry is set only when Incr creates the key, which makes a
	// fixed-window counter for throttling. A value that is not an integer,
	// or an overflow, returns ErrNotInteger.
	Incr(ctx context.Context, key string, ttl time.Duration) (int64, error)
	// Backend names the store in use: BackendRedis or BackendMemory.
	Backend() string
}

// Names Backend returns.
const (
	// BackendRedis is Redis, shared by every instance.
	BackendRedis = "redis"
	// BackendMemory is this process's memory.
	BackendMemory = "memory"
)

var (
	// ErrNegativeTTL is returned for a negative time to live.
	ErrNegativeTTL = errors.New("cache: negative ttl")
	// ErrNotInteger is returned by Incr when the stored value is not an
	// integer or the increment would overflow.
	ErrNotInteger = errors.New("cache: value is not an integer or would overflow")
)

var (
	_ Cache = (*Memory)(nil)
	_ Cache = (*Redis)(nil)
	_ Cache = (*Fallback)(nil)
)
