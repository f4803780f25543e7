package security_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/golang-jwt/jwt/v5"

	"github.com/engramhq/engram/platform/security"
)

// cheap keeps the tests fast; production uses security.DefaultParams.
var cheap = argon2id.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

func TestPasswordHasher(t *testing.T) {
	h := &security.PasswordHasher{Params: cheap}
	hash, err := h.Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("hash = %q, want an argon2id hash with the given parameters", hash)
	}
	if again, _ := h.Hash("correct horse"); again == hash {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	if ok, err := h.Verify("correct horse", hash); !ok || err != nil {
		t.Errorf("Verify(right password) = %v, %v", ok, err)
	}
	if ok, err := h.Verify("battery staple", hash); ok || err != nil {
		t.Errorf("Verify(wrong password) = %v, %v", ok, err)
	}
	if ok, err := h.Verify("correct horse", "not-a-hash"); ok || err == nil {
		t.Errorf("Verify(malformed hash) = %v, %v; want false and an error", ok, err)
	}
	h.VerifyDummy("anything")

	if h.NeedsRehash(hash) {
		t.Error("NeedsRehash is true for a hash with the current parameters")
	}
	if !security.NewPasswordHasher().NeedsRehash(hash) {
		t.Error("NeedsRehash is false for a hash with other parameters")
	}
}

func TestDefaultParamsAreOWASPs(t *testing.T) {
	want := argon2id.Params{Memory: 19456, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}
	if security.DefaultParams != want {
		t.Errorf("DefaultParams = %+v, want %+v", security.DefaultParams, want)
	}
	var zero security.PasswordHasher
	hash, err := zero.Hash("pw")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("the zero PasswordHasher made %q, want DefaultParams", hash)
	}
}

var (
	secret = []byte("0123456789abcdef0123456789abcdef")
	start  = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTokens(t *testing.T, c *clock) *security.Tokens {
	t.Helper()
	tokens, err := security.NewTokens(secret, "engram", "engram-api", 15*time.Minute, c.now)
	if err != nil {
		t.Fatal(err)
	}
	return tokens
}

func TestTokensRoundTrip(t *testing.T) {
	c := &clock{start.Add(400 * time.Millisecond)}
	tokens := newTokens(t, c)
	token, expiresAt, err := tokens.Issue("user-1", "session-1", []string{"admin", "user"})
	if err != nil {
		t.Fatal(err)
	}
	if want := start.Add(15 * time.Minute); !expiresAt.Equal(want) {
		t.Errorf("expiresAt = %v, want %v", expiresAt, want)
	}
	c.t = start.Add(10 * time.Minute)
	claims, err := tokens.Parse(token)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if claims.Subject != "user-1" || claims.SessionID != "session-1" || !claims.IssuedAt.Equal(start) ||
		!claims.ExpiresAt.Equal(expiresAt) || !slices.Equal(claims.Roles, []string{"admin", "user"}) {
		t.Errorf("claims = %+v", claims)
	}
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(claims.ID) {
		t.Errorf("jti = %q, want a random UUID", claims.ID)
	}
	other, _, _ := tokens.Issue("user-1", "session-1", nil)
	if otherClaims, _ := tokens.Parse(other); otherClaims.ID == claims.ID {
		t.Error("two tokens share a jti")
	}
}

func TestNewTokensRefusesBadArguments(t *testing.T) {
	for name, f := range map[string]func() (*security.Tokens, error){
		"empty secret":   func() (*security.Tokens, error) { return security.NewTokens(nil, "i", "a", time.Minute, nil) },
		"empty issuer":   func() (*security.Tokens, error) { return security.NewTokens(secret, "", "a", time.Minute, nil) },
		"empty audience": func() (*security.Tokens, error) { return security.NewTokens(secret, "i", "", time.Minute, nil) },
		"zero ttl":       func() (*security.Tokens, error) { return security.NewTokens(secret, "i", "a", 0, nil) },
	} {
		if _, err := f(); err == nil {
			t.Errorf("%s: NewTokens accepted it", name)
		}
	}
}

func TestTokensRejects(t *testing.T) {
	c := &clock{start}
	tokens := newTokens(t, c)
	valid, _, err := tokens.Issue("user-1", "session-1", []string{"user"})
	if err != nil {
		t.Fatal(err)
	}
	claims := func(mutate func(*jwt.MapClaims)) jwt.MapClaims {
		m := jwt.MapClaims{
			"sub": "user-1", "sid": "session-1", "iss": "engram", "aud": []string{"engram-api"},
			"iat": start.Unix(), "nbf": start.Unix(), "exp": start.Add(time.Minute).Unix(), "jti": "x",
		}
		if mutate != nil {
			mutate(&m)
		}
		return m
	}
	sign := func(method jwt.SigningMethod, key any, m jwt.MapClaims) string {
		t.Helper()
		s, err := jwt.NewWithClaims(method, m).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherTokens, err := security.NewTokens([]byte("another-secret-another-secret-xx"), "engram", "engram-api", time.Hour, c.now)
	if err != nil {
		t.Fatal(err)
	}
	wrongKey, _, _ := otherTokens.Issue("user-1", "session-1", []string{"user"})
	// Verified once, the token is remembered: its expiry must still apply.
	if _, err := tokens.Parse(valid); err != nil {
		t.Fatalf("a fresh token was rejected: %v", err)
	}
	parts := strings.Split(valid, ".")
	forgedPayload := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin","sid":"s","iss":"engram","aud":"engram-api","exp":9999999999}`))

	tests := []struct {
		name  string
		token string
		at    time.Time
	}{
		{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil)), start},
		{"HS384", sign(jwt.SigningMethodHS384, secret, claims(nil)), start},
		{"HS512", sign(jwt.SigningMethodHS512, secret, claims(nil)), start},
		{"RS256", sign(jwt.SigningMethodRS256, rsaKey, claims(nil)), start},
		{"wrong key", wrongKey, start},
		{"expired", valid, start.Add(15*time.Minute + security.Leeway + time.Second)},
		{"not yet valid", sign(jwt.SigningMethodHS256, secret, claims(func(m *jwt.MapClaims) {
			(*m)["nbf"] = start.Add(time.Minute).Unix()
		})), start},
		{"issued in the future", sign(jwt.SigningMethodHS256, secret, claims(func(m *jwt.MapClaims) {
			(*m)["iat"] = start.Add(time.Minute).Unix()
		})), start},
		{"wrong issuer", sign(jwt.SigningMethodHS256, secret, claims(func(m *jwt.MapClaims) { (*m)["iss"] = "evil" })), start},
		{"wrong audience", sign(jwt.SigningMethodHS256, secret, claims(func(m *jwt.MapClaims) { (*m)["aud"] = "other-api" })), start},
		{"missing exp", sign(jwt.SigningMethodHS256, secret, claims(func(m *jwt.MapClaims) { delete(*m, "exp") })), start},
		{"missing sid", sign(jwt.SigningMethodHS256, secret, claims(func(m *jwt.MapClaims) { delete(*m, "sid") })), start},
		{"missing sub", sign(jwt.SigningMethodHS256, secret, claims(func(m *jwt.MapClaims) { delete(*m, "sub") })), start},
		{"forged payload", parts[0] + "." + forgedPayload + "." + parts[2], start},
		{"truncated", valid[:len(valid)-5], start},
		{"no signature", parts[0] + "." + parts[1] + ".", start},
		{"garbage", "not.a.jwt", start},
		{"empty", "", start},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.t = tt.at
			got, err := tokens.Parse(tt.token)
			if !errors.Is(err, security.ErrInvalidToken) {
				t.Fatalf("Parse = %+v, %v; want ErrInvalidToken", got, err)
			}
			if !reflect.DeepEqual(got, security.Claims{}) {
				t.Errorf("Parse returned claims %+v with an error", got)
			}
		})
	}

	c.t = start.Add(15*time.Minute + security.Leeway - time.Second)
	if _, err := tokens.Parse(valid); err != nil {
		t.Errorf("a token expired less than the leeway ago was rejected: %v", err)
	}
}

func TestRandomToken(t *testing.T) {
	a, err := security.RandomToken("rt_", 32)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := security.RandomToken("rt_", 32)
	if a == b {
		t.Error("two random tokens are equal")
	}
	if !regexp.MustCompile(`^rt_[A-Za-z0-9_-]{43}$`).MatchString(a) {
		t.Errorf("token %q is not rt_ + 43 base64url characters", a)
	}
	if _, err := security.RandomToken("sk-", 8); err == nil {
		t.Error("RandomToken accepted 8 bytes")
	}
}

func TestHashToken(t *testing.T) {
	// SHA-256("abc"), from FIPS 180-2.
	if got := security.HashToken("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("HashToken(abc) = %s", got)
	}
	if !security.ConstantTimeEqual("sk-abc", "sk-abc") || security.ConstantTimeEqual("sk-abc", "sk-abd") ||
		security.ConstantTimeEqual("sk-abc", "sk-ab") {
		t.Error("ConstantTimeEqual is wrong")
	}
}

func BenchmarkHashDefaultParams(b *testing.B) {
	h := security.NewPasswordHasher()
	for b.Loop() {
		if _, err := h.Hash("correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}
