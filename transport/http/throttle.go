package http

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/app"
	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/transport/request"
)

// loginThrottle limits failed logins per account and per client address:
// at most max failures of each in a fixed window. Once either is reached,
// every login for that account, or from that address, is answered 429 with
// Retry-After until the window ends — whether the account exists or not,
// and whether the password is right or not.
//
// An attempt is counted when it starts, before the password is checked, and
// released when it ends other than with a wrong password: the attempts in
// flight count against the limit, so that a burst of concurrent attempts
// cannot overshoot it. Each key has two counters in the shared cache,
// attempts and releases; their difference is the failures plus the attempts
// in flight.
type loginThrottle struct {
	counters app.Counters
	max      int64
	window   time.Duration
	now      func() time.Time
}

// throttleKeys names the counters of one login attempt in the current
// window: the e-mail address is hashed (the cache holds no addresses), and
// an IPv6 client is counted by its /64, which one client usually holds
// whole. The attempts counter of a key is the key itself; its releases
// counter is the key with releasedSuffix.
func (t *loginThrottle) throttleKeys(email, ip string) (keys []string, retryAfter time.Duration) {
	now := t.now()
	window := now.UnixNano() / int64(t.window)
	retryAfter = time.Unix(0, (window+1)*int64(t.window)).Sub(now)
	sum := sha256.Sum256([]byte(commands.AccountName(email)))
	suffix := ":" + strconv.FormatInt(window, 10)
	return []string{
		"login:attempts:account:" + hex.EncodeToString(sum[:]) + suffix,
		"login:attempts:ip:" + clientNetwork(ip) + suffix,
	}, retryAfter
}

const releasedSuffix = ":released"

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

// loginAttempt is one admitted login attempt; end must be called once its
// outcome is known.
type loginAttempt struct {
	t    *loginThrottle
	keys []string
}

// begin counts an attempt against the account and the address, and refuses
// it with a 429 problem when either has used up its failures in this window
// (counting the attempts in flight).
func (t *loginThrottle) begin(c echo.Context, email, ip string) (*loginAttempt, error) {
	ctx := c.Request().Context()
	keys, retryAfter := t.throttleKeys(email, ip)
	a := &loginAttempt{t: t}
	for _, key := range keys {
		// The counters outlive their window a little, so that a clock step
		// between instances does not reopen it early.
		n, err := t.counters.Incr(ctx, key, t.window+time.Minute)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("login throttle: %w", err), a.release(ctx))
		}
		a.keys = append(a.keys, key)
		released, err := t.counter(ctx, key+releasedSuffix)
		if err != nil {
			return nil, errors.Join(err, a.release(ctx))
		}
		if n-released > t.max {
			// A refused attempt stays counted: were it given back, an
			// attempt counted before it but checked after it would find
			// one failure fewer and get through.
			return nil, tooManyLogins(c, retryAfter)
		}
	}
	return a, nil
}

// counter reads a counter; a missing one is 0.
func (t *loginThrottle) counter(ctx context.Context, key string) (int64, error) {
	v, ok, err := t.counters.Get(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("login throttle: %w", err)
	}
	if !ok {
		return 0, nil
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("login throttle: counter %s: %w", key, err)
	}
	return n, nil
}

// end records the attempt's outcome: a wrong password stays counted as a
// failure; any other outcome (success, or an error that checked nothing)
// gives the attempt back.
func (a *loginAttempt) end(ctx context.Context, wrongPassword bool) error {
	if wrongPassword {
		return nil
	}
	return a.release(ctx)
}

// release gives back the attempt on every key it was counted against. It
// runs even after the request is canceled: a lost release would count as a
// failure.
func (a *loginAttempt) release(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx)
	var errs []error
	for _, key := range a.keys {
		if _, err := a.t.counters.Incr(ctx, key+releasedSuffix, a.t.window+time.Minute); err != nil {
			errs = append(errs, fmt.Errorf("login throttle: release: %w", err))
		}
	}
	a.keys = nil
	return errors.Join(errs...)
}

// tooManyLogins is the 429 answer, with Retry-After in whole seconds
// (rounded up).
func tooManyLogins(c echo.Context, retryAfter time.Duration) error {
	secs := int64((retryAfter + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	c.Response().Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	return domain.Errorf(request.CodeTooManyRequests, "too many failed logins for this account or from this address; try again in %d seconds", secs)
}
