package http

import (
	"context"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/platform/cache"
	"github.com/engramhq/engram/transport/request"
)

func TestClientNetwork(t *testing.T) {
	tests := map[string]string{
		"192.0.2.7":            "192.0.2.7",
		"::ffff:192.0.2.7":     "192.0.2.7",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2::ffff":   "2001:db8:1:2::/64",
		"2001:db8:1:3::1":      "2001:db8:1:3::/64",
		"":                     "unknown",
		"not an address":       "unknown",
	}
	for in, want := range tests {
		if got := clientNetwork(in); got != want {
			t.Errorf("clientNetwork(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoginThrottle(t *testing.T) {
	mem := cache.NewMemory()
	defer mem.Close()
	clock := time.Unix(1_800_000_000, 0) // a multiple of the window below
	th := &loginThrottle{counters: mem, max: 2, window: time.Minute, now: func() time.Time { return clock }}
	e := echo.New()
	ctx := context.Background()
	// try starts an attempt and, when admitted, ends it with the given
	// outcome; it returns 0 when admitted, or 429 and Retry-After.
	try := func(email, ip string, wrongPassword bool) (int, string) {
		t.Helper()
		c := e.NewContext(httptest.NewRequest("POST", "/v1/auth/login", nil), httptest.NewRecorder())
		a, err := th.begin(c, email, ip)
		if err != nil {
			if domain.ErrorCode(err) != request.CodeTooManyRequests {
				t.Fatalf("begin: %v", err)
			}
			return 429, c.Response().Header().Get("Retry-After")
		}
		if err := a.end(ctx, wrongPassword); err != nil {
			t.Fatal(err)
		}
		return 0, ""
	}

	if status, _ := try("Ada@Example.com", "192.0.2.1", true); status != 0 {
		t.Fatal("first attempt refused")
	}
	// Successes are given back: they never use up the limit.
	for range 5 {
		if status, _ := try("ada@example.com", "192.0.2.9", false); status != 0 {
			t.Fatal("throttled by successful logins")
		}
	}
	clock = clock.Add(15 * time.Second)
	if status, _ := try(" ada@example.com ", "192.0.2.2", true); status != 0 {
		t.Fatal("second failure refused")
	}
	// The account has used its two failures: refused from anywhere, with
	// the rest of the window (45s) as Retry-After, even with the right
	// password.
	if status, retry := try("ADA@example.com", "198.51.100.1", false); status != 429 || retry != "45" {
		t.Fatalf("account: %d, Retry-After %q", status, retry)
	}
	if status, _ := try("bob@example.com", "198.51.100.1", false); status != 0 {
		t.Fatal("another account throttled (or the refused attempt was counted)")
	}
	// The address 192.0.2.1 failed once; one more failure on another account
	// uses up its share too.
	if status, _ := try("carol@example.com", "192.0.2.1", true); status != 0 {
		t.Fatal("carol refused")
	}
	if status, _ := try("bob@example.com", "192.0.2.1", false); status != 429 {
		t.Fatal("address not throttled")
	}
	// A fresh window forgets everything; Retry-After is never below 1.
	clock = clock.Add(45 * time.Second)
	if status, _ := try("ada@example.com", "192.0.2.1", false); status != 0 {
		t.Fatal("still throttled in the next window")
	}
	if keys, _ := th.throttleKeys("ada@example.com", "192.0.2.1"); strings.Contains(keys[0], "ada") {
		t.Fatalf("the counter key holds the e-mail address: %s", keys[0])
	}
	c := e.NewContext(httptest.NewRequest("POST", "/", nil), httptest.NewRecorder())
	_ = tooManyLogins(c, 10*time.Millisecond)
	if got := c.Response().Header().Get("Retry-After"); got != "1" {
		t.Fatalf("Retry-After for 10ms = %q", got)
	}
}

// TestLoginThrottleCountsAttemptsInFlight: 30 concurrent attempts against
// one account with a limit of 10 — at most 10 are admitted (their password
// checked), the rest are refused with 429, before any of them ends.
func TestLoginThrottleCountsAttemptsInFlight(t *testing.T) {
	mem := cache.NewMemory()
	defer mem.Close()
	th := &loginThrottle{counters: mem, max: 10, window: time.Minute, now: time.Now}
	e := echo.New()
	var admitted []*loginAttempt
	var mu sync.Mutex
	var refused atomic.Int32
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			c := e.NewContext(httptest.NewRequest("POST", "/v1/auth/login", nil), httptest.NewRecorder())
			a, err := th.begin(c, "ada@example.com", "192.0.2."+strconv.Itoa(i))
			if err != nil {
				if domain.ErrorCode(err) != request.CodeTooManyRequests || c.Response().Header().Get("Retry-After") == "" {
					t.Errorf("begin: %v", err)
				}
				refused.Add(1)
				return
			}
			mu.Lock()
			admitted = append(admitted, a)
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(admitted) != 10 || refused.Load() != 20 {
		t.Fatalf("admitted %d, refused %d; want 10 and 20", len(admitted), refused.Load())
	}
	// The ten fail: the account stays refused for the window.
	for _, a := range admitted {
		if err := a.end(context.Background(), true); err != nil {
			t.Fatal(err)
		}
	}
	c := e.NewContext(httptest.NewRequest("POST", "/v1/auth/login", nil), httptest.NewRecorder())
	if _, err := th.begin(c, "ada@example.com", "198.51.100.1"); domain.ErrorCode(err) != request.CodeTooManyRequests {
		t.Fatalf("after ten failures: %v, want 429", err)
	}
}
