package cache_test

import (
	"testing"

	"github.com/engramhq/engram/platform/cache"
	"github.com/engramhq/engram/platform/cache/cachetest"
)

func TestMemoryContract(t *testing.T) {
	cachetest.Run(t, func(t *testing.T) cache.Cache {
		m := cache.NewMemory()
		t.Cleanup(func() { _ = m.Close() })
		return m
	})
}

func TestMemoryClearAndClose(t *testing.T) {
	m := cache.NewMemory()
	ctx := t.Context()
	for _, k := range []string{"a", "b"} {
		if err := m.Set(ctx, k, []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Clear(ctx); err != nil || m.Len() != 0 {
		t.Fatalf("after Clear: Len = %d, err = %v", m.Len(), err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := m.Set(ctx, "after", []byte("v"), 0); err != nil {
		t.Fatalf("Set after Close: %v", err)
	}
	if _, ok, _ := m.Get(ctx, "after"); !ok {
		t.Fatal("Memory stopped working after Close")
	}
}
