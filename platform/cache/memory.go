package cache

import (
	"context"
	"math"
	"strconv"
	"sync"
	"time"
)

// sweepInterval is how often Memory removes expired entries.
const sweepInterval = time.Minute

// Memory is a Cache in this process's memory. It is unbounded: it holds
// what read models and counters put in it, and expired entries are dropped
// on access and by a sweep every minute. Close stops the sweep; the cache
// still works afterwards, expiring lazily.
type Memory struct {
	mu    sync.RWMutex
	items map[string]memoryItem

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

type memoryItem struct {
	value   []byte
	expires time.Time // zero: never
}

func (it memoryItem) expired(now time.Time) bool {
	return !it.expires.IsZero() && !now.Before(it.expires)
}

// NewMemory returns an empty Memory cache and starts its sweep.
func NewMemory() *Memory {
	m := &Memory{
		items: map[string]memoryItem{},
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go m.sweep(sweepInterval)
	return m
}

func (m *Memory) sweep(every time.Duration) {
	defer close(m.done)
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-m.stop:
			return
		case now := <-ticker.C:
			m.mu.Lock()
			for k, it := range m.items {
				if it.expired(now) {
					delete(m.items, k)
				}
			}
			m.mu.Unlock()
		}
	}
}

// Close stops the sweep. It always returns nil.
func (m *Memory) Close() error {
	m.closeOnce.Do(func() {
		close(m.stop)
		<-m.done
	})
	return nil
}

// Get implements Cache. The returned slice is the caller's.
func (m *Memory) Get(_ context.Context, key string) ([]byte, bool, error) {
	m.mu.RLock()
	it, ok := m.items[key]
	m.mu.RUnlock()
	if !ok || it.expired(time.Now()) {
		return nil, false, nil
	}
	return clone(it.value), true, nil
}

// Set implements Cache. It keeps a copy of value.
func (m *Memory) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl < 0 {
		return ErrNegativeTTL
	}
	it := memoryItem{value: clone(value)}
	if ttl > 0 {
		it.expires = time.Now().Add(ttl)
	}
	m.mu.Lock()
	m.items[key] = it
	m.mu.Unlock()
	return nil
}

// Take implements Cache. The returned slice is the caller's.
func (m *Memory) Take(_ context.Context, key string) ([]byte, bool, error) {
	m.mu.Lock()
	it, ok := m.items[key]
	delete(m.items, key)
	m.mu.Unlock()
	if !ok || it.expired(time.Now()) {
		return nil, false, nil
	}
	return it.value, true, nil
}

// Delete implements Cache.
func (m *Memory) Delete(_ context.Context, keys ...string) error {
	m.mu.Lock()
	for _, k := range keys {
		delete(m.items, k)
	}
	m.mu.Unlock()
	return nil
}

// Expire implements Cache.
func (m *Memory) Expire(_ context.Context, key string, ttl time.Duration) error {
	if ttl < 0 {
		return ErrNegativeTTL
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.items[key]
	if !ok || it.expired(now) {
		return nil
	}
	it.expires = time.Time{}
	if ttl > 0 {
		it.expires = now.Add(ttl)
	}
	m.items[key] = it
	return nil
}

// Incr implements Cache. The counter is stored in decimal, as Redis does,
// so Get returns e.g. "3".
func (m *Memory) Incr(_ context.Context, key string, ttl time.Duration) (int64, error) {
	if ttl < 0 {
		return 0, ErrNegativeTTL
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.items[key]
	if !ok || it.expired(now) {
		it = memoryItem{value: []byte("1")}
		if ttl > 0 {
			it.expires = now.Add(ttl)
		}
		m.items[key] = it
		return 1, nil
	}
	n, err := strconv.ParseInt(string(it.value), 10, 64)
	if err != nil || n == math.MaxInt64 {
		return 0, ErrNotInteger
	}
	n++
	it.value = strconv.AppendInt(nil, n, 10)
	m.items[key] = it
	return n, nil
}

// Backend returns BackendMemory.
func (m *Memory) Backend() string { return BackendMemory }

// Clear removes every entry. It always returns nil.
func (m *Memory) Clear(context.Context) error {
	m.mu.Lock()
	clear(m.items)
	m.mu.Unlock()
	return nil
}

// Len returns the number of entries, expired ones not yet swept included.
func (m *Memory) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.items)
}

func clone(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return append(make([]byte, 0, len(b)), b...)
}
