package http

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/platform/cache"
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
	check := func(email, ip string) (int, string) {
		t.Helper()
		c := e.NewContext(httptest.NewRequest("POST", "/v1/auth/login", nil), httptest.NewRecorder())
		err := th.check(c, email, ip)
		if err == nil {
			return 0, ""
		}
		if domain.ErrorCode(err) != codeTooManyRequests {
			t.Fatalf("check: %v", err)
		}
		return 429, c.Response().Header().Get("Retry-After")
	}
	ctx := context.Background()
	fail := func(email, ip string) {
		t.Helper()
		if err := th.failed(ctx, email, ip); err != nil {
			t.Fatal(err)
		}
	}

	fail("Ada@Example.com", "192.0.2.1")
	if status, _ := check("ada@example.com", "192.0.2.9"); status != 0 {
		t.Fatal("throttled after one failure")
	}
	clock = clock.Add(15 * time.Second)
	fail(" ada@example.com ", "192.0.2.2")
	// The account has used its two failures: refused from anywhere, with
	// the rest of the window (45s) as Retry-After.
	if status, retry := check("ADA@example.com", "198.51.100.1"); status != 429 || retry != "45" {
		t.Fatalf("account: %d, Retry-After %q", status, retry)
	}
	if status, _ := check("bob@example.com", "198.51.100.1"); status != 0 {
		t.Fatal("another account throttled")
	}
	// The address 192.0.2.1 failed once; one more failure on another account
	// uses up its share too.
	fail("carol@example.com", "192.0.2.1")
	if status, _ := check("bob@example.com", "192.0.2.1"); status != 429 {
		t.Fatal("address not throttled")
	}
	// A fresh window forgets everything; Retry-After is never below 1.
	clock = clock.Add(45 * time.Second)
	if status, _ := check("ada@example.com", "192.0.2.1"); status != 0 {
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
