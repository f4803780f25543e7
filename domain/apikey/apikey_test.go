package apikey

import (
	"encoding/json"
	"github.com/engramhq/engram/domain/domaintest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/engramhq/engram/domain"
)

const (
	kid    = "k-1"
	uid    = "u-1"
	khash  = "sha256:abcdef"
	prefix = "sk-AbCd"
)

var exp = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)

func issued() Issued {
	return Issued{KeyID: kid, UserID: uid, Name: "CI", Scopes: []string{ScopeRead, ScopeWrite}, KeyHash: khash, Prefix: prefix}
}

func timePtr(t time.Time) *time.Time { return &t }

func load(events ...domain.Event) *APIKey { return domaintest.Load(&APIKey{}, events...) }

func TestIssue(t *testing.T) {
	withExpiry := issued()
	withExpiry.ExpiresAt = timePtr(exp)
	all := issued()
	all.Scopes = []string{ScopeAudit, ScopeRead, ScopeWrite}
	tests := []struct {
		name              string
		id, user, keyName string
		scopes            []string
		hash, prefix      string
		expires           *time.Time
		then              []domain.Event
		code              string
		fields            []string
	}{
		{name: "ok", id: kid, user: uid, keyName: " CI ", scopes: []string{ScopeWrite, ScopeRead}, hash: khash, prefix: prefix,
			then: []domain.Event{issued()}},
		{name: "scopes de-duplicated and sorted", id: kid, user: uid, keyName: "CI", scopes: []string{"write", "audit", "read", "write", "audit"}, hash: khash, prefix: prefix,
			then: []domain.Event{all}},
		{name: "expiry stored in UTC", id: kid, user: uid, keyName: "CI", scopes: []string{"read", "write"}, hash: khash, prefix: prefix,
			expires: timePtr(exp.In(time.FixedZone("X", 5*3600))),
			then:    []domain.Event{withExpiry}},
		{name: "everything invalid", scopes: nil, expires: timePtr(time.Time{}),
			code: domain.CodeInvalid, fields: []string{"key_id", "user_id", "name", "scopes", "key_hash", "prefix", "expires_at"}},
		{name: "unknown scope", id: kid, user: uid, keyName: "CI", scopes: []string{"read", "admin"}, hash: khash, prefix: prefix,
			code: domain.CodeInvalid, fields: []string{"scopes"}},
		{name: "empty scopes", id: kid, user: uid, keyName: "CI", scopes: []string{}, hash: khash, prefix: prefix,
			code: domain.CodeInvalid, fields: []string{"scopes"}},
		{name: "name too long", id: kid, user: uid, keyName: strings.Repeat("n", 101), scopes: []string{"read"}, hash: khash, prefix: prefix,
			code: domain.CodeInvalid, fields: []string{"name"}},
		{name: "name with NUL", id: kid, user: uid, keyName: "C\x00I", scopes: []string{"read"}, hash: khash, prefix: prefix,
			code: domain.CodeInvalid, fields: []string{"name"}},
		{name: "prefix too long", id: kid, user: uid, keyName: "CI", scopes: []string{"read"}, hash: khash, prefix: strings.Repeat("p", 33),
			code: domain.CodeInvalid, fields: []string{"prefix"}},
		{name: "prefix with space", id: kid, user: uid, keyName: "CI", scopes: []string{"read"}, hash: khash, prefix: "sk- x",
			code: domain.CodeInvalid, fields: []string{"prefix"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.scopes)
			k, err := Issue(tt.id, tt.user, tt.keyName, tt.scopes, tt.hash, tt.prefix, tt.expires)
			var got []domain.Event
			if k != nil {
				got = k.Pending()
				if k.Version() != 1 || k.ID() != tt.id || k.Revoked() {
					t.Fatalf("version %d id %q", k.Version(), k.ID())
				}
			} else if err == nil {
				t.Fatal("nil key without error")
			}
			if !slices.Equal(in, tt.scopes) {
				t.Fatalf("Issue modified the caller's scopes: %v", tt.scopes)
			}
			domaintest.CheckOutcome(t, err, tt.code, tt.fields, got, tt.then)
		})
	}
}

func TestCommands(t *testing.T) {
	tests := []domaintest.Case[*APIKey]{
		{Name: "revoke", Given: []domain.Event{issued()},
			When: func(k *APIKey) error { return k.Revoke() },
			Then: []domain.Event{Revoked{}}},
		{Name: "revoke twice records nothing", Given: []domain.Event{issued(), Revoked{}},
			When: func(k *APIKey) error { return k.Revoke() }},
	}
	domaintest.Run(t, func() *APIKey { return &APIKey{} }, tests)
}

func TestState(t *testing.T) {
	e := issued()
	e.ExpiresAt = timePtr(exp)
	k := load(e)
	if k.ID() != kid || k.UserID() != uid || k.Name() != "CI" || k.KeyHash() != khash || k.Prefix() != prefix ||
		!k.ExpiresAt().Equal(exp) || k.Revoked() || k.Version() != 1 {
		t.Fatalf("state: %+v", k)
	}
	if !slices.Equal(k.Scopes(), []string{ScopeRead, ScopeWrite}) || !k.HasScope(ScopeWrite) || k.HasScope(ScopeAudit) {
		t.Fatalf("scopes: %v", k.Scopes())
	}
	k.Scopes()[0] = ScopeAudit
	*k.ExpiresAt() = time.Time{}
	if k.HasScope(ScopeAudit) || !k.ExpiresAt().Equal(exp) {
		t.Fatal("accessors must return copies")
	}
	if !k.Active(exp.Add(-time.Second)) || k.Active(exp) {
		t.Fatal("Active with expiry")
	}
	forever := load(issued())
	if forever.ExpiresAt() != nil || !forever.Active(exp.AddDate(100, 0, 0)) {
		t.Fatal("a key without expiry never expires")
	}
	forever.Apply(Revoked{})
	if forever.Active(exp) {
		t.Fatal("a revoked key is not active")
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	withExpiry := issued()
	withExpiry.ExpiresAt = timePtr(exp)
	events := []domain.Event{issued(), withExpiry, Revoked{}}
	domaintest.RoundTrip(t, Decode, events...)
	data, _ := json.Marshal(issued())
	if !strings.Contains(string(data), `"expires_at":null`) {
		t.Fatalf("expires_at must be null when absent: %s", data)
	}
	domaintest.Unknown(t, Decode, EventIssued)
	if _, err := Decode(EventIssued, 1, []byte(`{"scopes":"read"}`)); err == nil {
		t.Fatal("bad JSON decoded")
	}
}

func TestRedacted(t *testing.T) {
	data, _ := json.Marshal(domain.Redact(issued()))
	if strings.Contains(string(data), khash) || !strings.Contains(string(data), prefix) {
		t.Fatalf("redaction: %s", data)
	}
}

func TestLoadFromStoredEvents(t *testing.T) {
	k, err := Issue(kid, uid, "CI", []string{"audit", "read"}, khash, prefix, timePtr(exp))
	domaintest.Must(t, err)
	domaintest.Must(t, k.Revoke())
	loaded := domaintest.Reload(t, k, &APIKey{}, Decode)
	if loaded.Version() != 2 {
		t.Fatalf("loaded version %d, want 2", loaded.Version())
	}
	if !loaded.Revoked() || !slices.Equal(loaded.Scopes(), []string{ScopeAudit, ScopeRead}) {
		t.Fatal("accessors differ")
	}
}

func TestStreamID(t *testing.T) { domaintest.StreamID(t, StreamID, StreamType) }
