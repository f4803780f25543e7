package security_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/engramhq/engram/platform/security"
)

func TestHashSlotsBoundConcurrency(t *testing.T) {
	slots := security.NewHashSlots(3, 0)
	if slots.Size() != 3 {
		t.Fatalf("Size = %d", slots.Size())
	}
	ctx := context.Background()
	var held []func()
	for range 3 {
		release, err := slots.Acquire(ctx)
		if err != nil {
			t.Fatalf("Acquire with free slots: %v", err)
		}
		held = append(held, release)
	}
	if _, err := slots.Acquire(ctx); !errors.Is(err, security.ErrBusy) {
		t.Fatalf("Acquire with every slot taken = %v, want ErrBusy", err)
	}
	held[0]()
	release, err := slots.Acquire(ctx)
	if err != nil {
		t.Fatalf("Acquire after a release: %v", err)
	}
	release()

	// Many hashers at once: never more than the slots run together.
	slots = security.NewHashSlots(2, time.Minute)
	var running, peak atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			release, err := slots.Acquire(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			defer release()
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			h := &security.PasswordHasher{Params: cheap}
			_, _ = h.Hash("correct horse battery")
			running.Add(-1)
		})
	}
	wg.Wait()
	if p := peak.Load(); p > 2 || p < 1 {
		t.Fatalf("peak concurrency = %d, want 1..2", p)
	}
}

func TestHashSlotsWaitIsBounded(t *testing.T) {
	slots := security.NewHashSlots(1, 20*time.Millisecond)
	ctx := context.Background()
	release, err := slots.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := slots.Acquire(ctx); !errors.Is(err, security.ErrBusy) {
		t.Fatalf("Acquire = %v, want ErrBusy after the wait", err)
	}
	if waited := time.Since(start); waited < 20*time.Millisecond {
		t.Fatalf("gave up after %v, before the wait", waited)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := security.NewHashSlots(1, time.Hour).Acquire(canceled); err != nil {
		t.Fatalf("a free slot is taken even with a done context: %v", err)
	}
	if _, err := slots.Acquire(canceled); !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire with a canceled context = %v", err)
	}
	release()
	if security.DefaultHashSlots() < 2 || security.NewHashSlots(0, 0).Size() != security.DefaultHashSlots() {
		t.Fatal("default slots")
	}
}
