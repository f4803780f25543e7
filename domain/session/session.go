// Package session is the session aggregate: one login of a user, kept alive
// by rotating refresh tokens. Its stream is "session-<id>".
//
// Only hashes of refresh tokens are recorded. Each refresh spends the
// presented token and records the hash of its successor. Presenting a spent
// token again means the token was copied, so the session is revoked at once
// (refresh-token reuse detection).
package session

import (
	"cmp"
	"crypto/subtle"
	"net/netip"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/engramhq/engram/domain"
)

// StreamType is the stream type of session streams.
const StreamType = "session"

// StreamID returns the stream identifier of the session with the given id.
func StreamID(id string) string { return domain.StreamID(StreamType, id) }

// Reasons for revoking a session.
const (
	ReasonRevoked           = "revoked"             // the default when no reason is given
	ReasonLogout            = "logout"              // the user logged out
	ReasonRefreshTokenReuse = "refresh_token_reuse" // a spent refresh token was presented again
)

// Rule limits.
const (
	MaxUserAgentBytes = 512
	MaxReasonRunes    = 200
)

// Session is the session aggregate. The zero value is an empty aggregate
// ready to have stored events applied.
type Session struct {
	domain.Root

	id           string
	userID       string
	tokenHash    string
	spentHashes  []string
	userAgent    string
	ip           string
	expiresAt    time.Time
	revoked      bool
	revokeReason string
}

// Start validates a new session and records session.started. The user agent
// is cleaned rather than rejected (invalid UTF-8 replaced, control characters
// dropped, white space trimmed) and cut to 512 bytes at a character
// boundary; ip is empty or an IP address, stored in its canonical form;
// expiresAt is stored in UTC.
func Start(id, userID, refreshTokenHash, userAgent, ip string, expiresAt time.Time) (*Session, error) {
	var v domain.Validation
	v.ID("session_id", id)
	v.ID("user_id", userID)
	v.Secret("refresh_token_hash", refreshTokenHash)
	if ip = strings.TrimSpace(ip); ip != "" {
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			v.Add("ip", "must be an IP address")
		} else {
			ip = addr.Unmap().String()
		}
	}
	v.Check(!expiresAt.IsZero(), "expires_at", "is required")
	if err := v.Err(); err != nil {
		return nil, err
	}
	s := &Session{}
	s.Record(s.Apply, Started{
		SessionID:        id,
		UserID:           userID,
		RefreshTokenHash: refreshTokenHash,
		UserAgent:        cleanUserAgent(userAgent),
		IP:               ip,
		ExpiresAt:        expiresAt.UTC(),
	})
	return s, nil
}

// cleanUserAgent makes a User-Agent header storable (see Start).
func cleanUserAgent(ua string) string {
	ua = strings.ToValidUTF8(ua, "\uFFFD")
	ua = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, ua)
	ua = strings.TrimSpace(ua)
	if len(ua) > MaxUserAgentBytes {
		cut := MaxUserAgentBytes
		for cut > 0 && !utf8.RuneStart(ua[cut]) {
			cut--
		}
		ua = strings.TrimSpace(ua[:cut])
	}
	return ua
}

// Refresh rotates the refresh token: presentedHash must be the hash of the
// current token; newHash (a hash never used in this session) replaces it and
// the session then expires at newExpiresAt, which must be after now.
//
// It fails with CodeUnauthorized, recording nothing, when the session is
// revoked, when it has expired (now ≥ ExpiresAt), or when presentedHash is
// unknown. When presentedHash is a hash already rotated away, the token has
// been reused — probably stolen: Refresh records session.revoked with the
// reason "refresh_token_reuse" AND returns CodeUnauthorized. The caller must
// still append the pending events when Refresh fails, or the revocation is
// lost.
func (s *Session) Refresh(presentedHash, newHash string, newExpiresAt, now time.Time) error {
	switch {
	case s.revoked:
		return domain.Errorf(domain.CodeUnauthorized, "session is revoked")
	case !now.Before(s.expiresAt):
		return domain.Errorf(domain.CodeUnauthorized, "session has expired")
	case s.spent(presentedHash):
		s.Record(s.Apply, Revoked{Reason: ReasonRefreshTokenReuse})
		return domain.Errorf(domain.CodeUnauthorized, "refresh token was already used; session revoked")
	case !equal(presentedHash, s.tokenHash):
		return domain.Errorf(domain.CodeUnauthorized, "unknown refresh token")
	}
	var v domain.Validation
	if v.Secret("refresh_token_hash", newHash) {
		v.Check(!equal(newHash, s.tokenHash) && !s.spent(newHash), "refresh_token_hash", "must not have been used before")
	}
	v.Check(newExpiresAt.After(now), "expires_at", "must be after now")
	if err := v.Err(); err != nil {
		return err
	}
	s.Record(s.Apply, Refreshed{RefreshTokenHash: newHash, ExpiresAt: newExpiresAt.UTC()})
	return nil
}

// spent reports whether hash is a refresh token hash already rotated away.
func (s *Session) spent(hash string) bool {
	found := false
	for _, h := range s.spentHashes {
		if equal(hash, h) {
			found = true
		}
	}
	return found
}

// equal compares two hashes in constant time; an empty hash matches nothing.
func equal(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// Revoke ends the session; reason (at most 200 characters) defaults to
// "revoked". Revoking a revoked session records nothing and succeeds.
func (s *Session) Revoke(reason string) error {
	var v domain.Validation
	reason = v.Text("reason", reason, 0, MaxReasonRunes)
	if err := v.Err(); err != nil {
		return err
	}
	if s.revoked {
		return nil
	}
	reason = cmp.Or(reason, ReasonRevoked)
	s.Record(s.Apply, Revoked{Reason: reason})
	return nil
}

// Apply changes the state by one event; it is used both when recording new
// events and when loading stored ones, and it never fails.
func (s *Session) Apply(e domain.Event) {
	s.Applied()
	switch e := e.(type) {
	case Started:
		s.id = e.SessionID
		s.userID = e.UserID
		s.tokenHash = e.RefreshTokenHash
		s.userAgent = e.UserAgent
		s.ip = e.IP
		s.expiresAt = e.ExpiresAt
	case Refreshed:
		s.spentHashes = append(s.spentHashes, s.tokenHash)
		s.tokenHash = e.RefreshTokenHash
		s.expiresAt = e.ExpiresAt
	case Revoked:
		s.revoked = true
		s.revokeReason = e.Reason
	}
}

// ID returns the session's identifier.
func (s *Session) ID() string { return s.id }

// UserID returns the user the session belongs to.
func (s *Session) UserID() string { return s.userID }

// Revoked reports whether the session was revoked.
func (s *Session) Revoked() bool { return s.revoked }

// RevokeReason returns why the session was revoked, or "" when it was not.
func (s *Session) RevokeReason() string { return s.revokeReason }

// ExpiresAt returns when the current refresh token expires, in UTC.
func (s *Session) ExpiresAt() time.Time { return s.expiresAt }

// RefreshTokenHash returns the hash of the current refresh token.
func (s *Session) RefreshTokenHash() string { return s.tokenHash }

// PreviousRefreshTokenHash returns the hash of the refresh token that the
// latest refresh spent, or "" when the session was never refreshed. A
// client that retries a refresh presents that token again: the caller may
// grant it a short grace before calling Refresh, which treats it as reuse.
func (s *Session) PreviousRefreshTokenHash() string {
	if len(s.spentHashes) == 0 {
		return ""
	}
	return s.spentHashes[len(s.spentHashes)-1]
}

// UserAgent returns the cleaned User-Agent the session was started with.
func (s *Session) UserAgent() string { return s.userAgent }

// IP returns the IP address the session was started from, or "".
func (s *Session) IP() string { return s.ip }

// Active reports whether the session may be used at now: not revoked and
// not expired.
func (s *Session) Active(now time.Time) bool {
	return !s.revoked && now.Before(s.expiresAt)
}
