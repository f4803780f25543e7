package http

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/user"
)

// Counters count events in fixed windows. The program passes the cache,
// shared by every instance, so that a limit holds across all of them.
type Counters interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	// Incr adds one to key and returns the result; a new key expires after
	// ttl.
	Incr(ctx context.Context, key string, ttl time.Duration) (int64, error)
}

// loginThrottle limits failed logins per account and per client address:
// at most max failures of each in a fixed window. Once either is reached,
// every login for that account, or from that address, is answered 429 with
// Retry-After until the window ends — whether the account exists or not,
// and whether the password is right or not.
//
// Failures are counted after the password is checked, so a burst of
// concurrent attempts can overshoot the limit by the attempts in flight;
// argon2id makes each of them costly.
type loginThrottle struct {
	counters Counters
	max      int64
	window   time.Duration
	now      func() time.Time
}

// throttleKeys names the counters of one login attempt in the current
// window: the e-mail address is hashed (the cache holds no addresses), and
// an IPv6 client is counted by its /64, which one client usually holds
// whole.
func (t *loginThrottle) throttleKeys(email, ip string) (keys []string, retryAfter time.Duration) {
	now := t.now()
	window := now.UnixNano() / int64(t.window)
	retryAfter = time.Unix(0, (window+1)*int64(t.window)).Sub(now)
	sum := sha256.Sum256([]byte(user.NormalizeEmail(email)))
	suffix := ":" + strconv.FormatInt(window, 10)
	return []string{
		"login:failed:account:" + hex.EncodeToString(sum[:]) + suffix,
		"login:failed:ip:" + clientNetwork(ip) + suffix,
	}, retryAfter
}

// clientNetwork is the unit an address is counted by: the address itself
// for IPv4, its /64 for IPv6.
func clientNetwork(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return "unknown"
	}
	addr = addr.Unmap()
	if addr.Is4() {
		return addr.String()
	}
	return netip.PrefixFrom(addr, 64).Masked().String()
}

// check refuses the attempt with a 429 problem when the account or the
// address has used up its failures in this window.
func (t *loginThrottle) check(c echo.Context, email, ip string) error {
	keys, retryAfter := t.throttleKeys(email, ip)
	for _, key := range keys {
		v, ok, err := t.counters.Get(c.Request().Context(), key)
		if err != nil {
			return fmt.Errorf("login throttle: %w", err)
		}
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(string(v), 10, 64); err == nil && n >= t.max {
			return tooManyLogins(c, retryAfter)
		}
	}
	return nil
}

// failed counts a failed attempt against the account and the address.
func (t *loginThrottle) failed(ctx context.Context, email, ip string) error {
	keys, _ := t.throttleKeys(email, ip)
	for _, key := range keys {
		// The counter outlives its window a little, so that a clock step
		// between instances does not reopen it early.
		if _, err := t.counters.Incr(ctx, key, t.window+time.Minute); err != nil {
			return fmt.Errorf("login throttle: %w", err)
		}
	}
	return nil
}

// tooManyLogins is the 429 answer, with Retry-After in whole seconds
// (rounded up).
func tooManyLogins(c echo.Context, retryAfter time.Duration) error {
	secs := int64((retryAfter + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	c.Response().Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	return domain.Errorf(codeTooManyRequests, "too many failed logins for this account or from this address; try again in %d seconds", secs)
}
