package session

import (
	"encoding/json"
	"github.com/engramhq/engram/domain/domaintest"
	"strings"
	"testing"
	"time"

	"github.com/engramhq/engram/domain"
)

const (
	sid = "s-1"
	uid = "u-1"
	h1  = "hash-1"
	h2  = "hash-2"
	h3  = "hash-3"
)

var (
	t0  = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	exp = t0.Add(24 * time.Hour)
)

func started() Started {
	return Started{SessionID: sid, UserID: uid, RefreshTokenHash: h1, UserAgent: "curl/8", IP: "192.0.2.1", ExpiresAt: exp}
}

func load(events ...domain.Event) *Session { return domaintest.Load(&Session{}, events...) }

func TestStart(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	long := strings.Repeat("a", 511) + "é" // 513 bytes: the cut must not split é
	tests := []struct {
		name               string
		id, user, hash, ua string
		ip                 string
		expires            time.Time
		then               []domain.Event
		code               string
		fields             []string
	}{
		{name: "ok", id: sid, user: uid, hash: h1, ua: " curl/8 ", ip: "192.0.2.1", expires: exp,
			then: []domain.Event{started()}},
		{name: "expiry stored in UTC", id: sid, user: uid, hash: h1, expires: exp.In(paris),
			then: []domain.Event{Started{SessionID: sid, UserID: uid, RefreshTokenHash: h1, ExpiresAt: exp}}},
		{name: "IPv6 canonical and IPv4-mapped unmapped", id: sid, user: uid, hash: h1, ip: "::ffff:192.0.2.1", expires: exp,
			then: []domain.Event{Started{SessionID: sid, UserID: uid, RefreshTokenHash: h1, IP: "192.0.2.1", ExpiresAt: exp}}},
		{name: "IPv6", id: sid, user: uid, hash: h1, ip: "2001:DB8:0:0::1", expires: exp,
			then: []domain.Event{Started{SessionID: sid, UserID: uid, RefreshTokenHash: h1, IP: "2001:db8::1", ExpiresAt: exp}}},
		{name: "user agent cut at a rune boundary", id: sid, user: uid, hash: h1, ua: long, expires: exp,
			then: []domain.Event{Started{SessionID: sid, UserID: uid, RefreshTokenHash: h1, UserAgent: strings.Repeat("a", 511), ExpiresAt: exp}}},
		{name: "user agent of 512 bytes kept", id: sid, user: uid, hash: h1, ua: strings.Repeat("é", 256), expires: exp,
			then: []domain.Event{Started{SessionID: sid, UserID: uid, RefreshTokenHash: h1, UserAgent: strings.Repeat("é", 256), ExpiresAt: exp}}},
		{name: "user agent cleaned", id: sid, user: uid, hash: h1, ua: "Moz\x00illa\xff\r\n", expires: exp,
			then: []domain.Event{Started{SessionID: sid, UserID: uid, RefreshTokenHash: h1, UserAgent: "Mozilla\uFFFD", ExpiresAt: exp}}},
		{name: "everything invalid", ip: "not-an-ip",
			code: domain.CodeInvalid, fields: []string{"session_id", "user_id", "refresh_token_hash", "ip", "expires_at"}},
		{name: "ip with port", id: sid, user: uid, hash: h1, ip: "192.0.2.1:443", expires: exp,
			code: domain.CodeInvalid, fields: []string{"ip"}},
		{name: "hash with NUL", id: sid, user: uid, hash: "h\x00", expires: exp,
			code: domain.CodeInvalid, fields: []string{"refresh_token_hash"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Start(tt.id, tt.user, tt.hash, tt.ua, tt.ip, tt.expires)
			var got []domain.Event
			if s != nil {
				got = s.Pending()
				if s.Version() != 1 || s.ID() != tt.id || s.Revoked() || !s.Active(t0) {
					t.Fatalf("version %d id %q", s.Version(), s.ID())
				}
				if ua := s.UserAgent(); len(ua) > MaxUserAgentBytes || domain.TextProblem(ua) != "" {
					t.Fatalf("user agent not storable: %q", ua)
				}
			} else if err == nil {
				t.Fatal("nil session without error")
			}
			domaintest.CheckOutcome(t, err, tt.code, tt.fields, got, tt.then)
		})
	}
}

func TestCommands(t *testing.T) {
	later := exp.Add(24 * time.Hour)
	rotated := []domain.Event{started(), Refreshed{RefreshTokenHash: h2, ExpiresAt: later}}
	tests := []domaintest.Case[*Session]{
		{Name: "refresh", Given: []domain.Event{started()},
			When: func(s *Session) error { return s.Refresh(h1, h2, later, t0) },
			Then: []domain.Event{Refreshed{RefreshTokenHash: h2, ExpiresAt: later}}},
		{Name: "refresh twice in a row", Given: []domain.Event{started()},
			When: func(s *Session) error {
				if err := s.Refresh(h1, h2, later, t0); err != nil {
					return err
				}
				return s.Refresh(h2, h3, later.Add(time.Hour), t0.Add(time.Minute))
			},
			Then: []domain.Event{Refreshed{RefreshTokenHash: h2, ExpiresAt: later},
				Refreshed{RefreshTokenHash: h3, ExpiresAt: later.Add(time.Hour)}}},
		{Name: "refresh stores expiry in UTC", Given: []domain.Event{started()},
			When: func(s *Session) error { return s.Refresh(h1, h2, later.In(time.FixedZone("X", -7200)), t0) },
			Then: []domain.Event{Refreshed{RefreshTokenHash: h2, ExpiresAt: later}}},
		{Name: "refresh after previous rotation", Given: rotated,
			When: func(s *Session) error { return s.Refresh(h2, h3, later, exp.Add(time.Hour)) },
			Then: []domain.Event{Refreshed{RefreshTokenHash: h3, ExpiresAt: later}}},
		{Name: "refresh with reused token revokes", Given: rotated,
			When: func(s *Session) error { return s.Refresh(h1, h3, later, t0) },
			Then: []domain.Event{Revoked{Reason: ReasonRefreshTokenReuse}},
			Code: domain.CodeUnauthorized},
		{Name: "refresh with unknown token", Given: rotated,
			When: func(s *Session) error { return s.Refresh("forged", h3, later, t0) },
			Code: domain.CodeUnauthorized},
		{Name: "refresh with empty token", Given: []domain.Event{started()},
			When: func(s *Session) error { return s.Refresh("", h3, later, t0) },
			Code: domain.CodeUnauthorized},
		{Name: "refresh revoked session", Given: []domain.Event{started(), Revoked{Reason: ReasonLogout}},
			When: func(s *Session) error { return s.Refresh(h1, h2, later, t0) },
			Code: domain.CodeUnauthorized},
		{Name: "refresh reused token of revoked session records nothing", Given: append(rotated, Revoked{Reason: ReasonRefreshTokenReuse}),
			When: func(s *Session) error { return s.Refresh(h1, h3, later, t0) },
			Code: domain.CodeUnauthorized},
		{Name: "refresh at expiry", Given: []domain.Event{started()},
			When: func(s *Session) error { return s.Refresh(h1, h2, later, exp) },
			Code: domain.CodeUnauthorized},
		{Name: "refresh just before expiry", Given: []domain.Event{started()},
			When: func(s *Session) error { return s.Refresh(h1, h2, later, exp.Add(-time.Nanosecond)) },
			Then: []domain.Event{Refreshed{RefreshTokenHash: h2, ExpiresAt: later}}},
		{Name: "refresh with invalid successor", Given: []domain.Event{started()},
			When: func(s *Session) error { return s.Refresh(h1, "", t0, t0) },
			Code: domain.CodeInvalid, Fields: []string{"refresh_token_hash", "expires_at"}},
		{Name: "refresh to the current hash", Given: []domain.Event{started()},
			When: func(s *Session) error { return s.Refresh(h1, h1, later, t0) },
			Code: domain.CodeInvalid, Fields: []string{"refresh_token_hash"}},
		{Name: "refresh to a spent hash", Given: rotated,
			When: func(s *Session) error { return s.Refresh(h2, h1, later, t0) },
			Code: domain.CodeInvalid, Fields: []string{"refresh_token_hash"}},
		{Name: "revoke", Given: []domain.Event{started()},
			When: func(s *Session) error { return s.Revoke(" logout ") },
			Then: []domain.Event{Revoked{Reason: ReasonLogout}}},
		{Name: "revoke without reason", Given: rotated,
			When: func(s *Session) error { return s.Revoke("") },
			Then: []domain.Event{Revoked{Reason: ReasonRevoked}}},
		{Name: "revoke twice records nothing", Given: []domain.Event{started(), Revoked{Reason: ReasonLogout}},
			When: func(s *Session) error { return s.Revoke(ReasonLogout) }},
		{Name: "revoke with invalid reason", Given: []domain.Event{started()},
			When: func(s *Session) error { return s.Revoke(strings.Repeat("r", 201)) },
			Code: domain.CodeInvalid, Fields: []string{"reason"}},
	}
	domaintest.Run(t, func() *Session { return &Session{} }, tests)
}

func TestState(t *testing.T) {
	later := exp.Add(time.Hour)
	s := load(started(), Refreshed{RefreshTokenHash: h2, ExpiresAt: later})
	if s.ID() != sid || s.UserID() != uid || s.RefreshTokenHash() != h2 || !s.ExpiresAt().Equal(later) ||
		s.UserAgent() != "curl/8" || s.IP() != "192.0.2.1" || s.Revoked() || s.RevokeReason() != "" || s.Version() != 2 {
		t.Fatalf("state: %+v", s)
	}
	if !s.Active(exp) || s.Active(later) {
		t.Fatal("Active")
	}
	s.Apply(Revoked{Reason: ReasonLogout})
	if !s.Revoked() || s.RevokeReason() != ReasonLogout || s.Active(t0) {
		t.Fatal("revoked state")
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	events := []domain.Event{
		started(),
		Refreshed{RefreshTokenHash: h2, ExpiresAt: exp.Add(time.Nanosecond)},
		Revoked{Reason: ReasonRefreshTokenReuse},
	}
	domaintest.RoundTrip(t, Decode, events...)
	got, err := Decode(EventRefreshed, 1, []byte(`{"refresh_token_hash":"h","expires_at":"2026-03-02T14:00:00+02:00"}`))
	if err != nil {
		t.Fatal(err)
	}
	if r := got.(Refreshed); r.ExpiresAt != time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC) {
		t.Fatalf("expires_at not UTC: %v", r.ExpiresAt)
	}
	domaintest.Unknown(t, Decode, EventRevoked)
	if _, err := Decode(EventStarted, 1, []byte(`{"expires_at":"tomorrow"}`)); err == nil {
		t.Fatal("bad time decoded")
	}
}

func TestRedacted(t *testing.T) {
	for _, e := range []domain.Event{started(), Refreshed{RefreshTokenHash: h1, ExpiresAt: exp}} {
		data, _ := json.Marshal(domain.Redact(e))
		if strings.Contains(string(data), h1) {
			t.Fatalf("%s leaks the hash: %s", e.EventType(), data)
		}
	}
}

func TestLoadFromStoredEvents(t *testing.T) {
	s, err := Start(sid, uid, h1, "curl/8", "2001:db8::1", exp)
	domaintest.Must(t, err)
	domaintest.Must(t, s.Refresh(h1, h2, exp.Add(time.Hour), t0))
	domaintest.Must(t, s.Refresh(h2, h3, exp.Add(2*time.Hour), t0))
	if err := s.Refresh(h1, "hash-4", exp.Add(3*time.Hour), t0); domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Fatalf("reuse: %v", err)
	}

	loaded := domaintest.Reload(t, s, &Session{}, Decode)
	if loaded.Version() != 4 {
		t.Fatalf("loaded version %d, want 4", loaded.Version())
	}
	if !loaded.Revoked() || loaded.RevokeReason() != ReasonRefreshTokenReuse || loaded.RefreshTokenHash() != h3 {
		t.Fatalf("accessors: %v %q %q", loaded.Revoked(), loaded.RevokeReason(), loaded.RefreshTokenHash())
	}
}

func TestStreamID(t *testing.T) { domaintest.StreamID(t, StreamID, StreamType) }
