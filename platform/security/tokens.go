package security

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// ErrInvalidToken is wrapped by every error Tokens.Parse returns. Show
// callers only this; the wrapped detail (expired, wrong audience, bad
// signature…) is for logs.
var ErrInvalidToken = errors.New("invalid token")

// Leeway is the clock skew tolerated when checking exp, nbf and iat.
const Leeway = 5 * time.Second

// Claims are what an access token says.
type Claims struct {
	// Subject is the user ID (sub).
	Subject string
	// SessionID is the session the token was issued for (sid).
	SessionID string
	// Roles are the user's global roles when the token was issued (roles).
	// Roles are only ever granted, never taken away, so a token can lag
	// behind a grant but never hold a role its user has lost.
	Roles []string
	// ID is the token's unique ID (jti).
	ID string
	// IssuedAt is when the token was issued (iat).
	IssuedAt time.Time
	// ExpiresAt is when the token stops being valid (exp).
	ExpiresAt time.Time
}

// jwtClaims is the token's JSON payload.
type jwtClaims struct {
	jwt.RegisteredClaims
	SessionID string   `json:"sid"`
	Roles     []string `json:"roles,omitempty"`
}

// Tokens issues and parses HS256-signed access tokens (JWT). It is safe for
// concurrent use.
type Tokens struct {
	secret   []byte
	issuer   string
	audience string
	ttl      time.Duration
	now      func() time.Time
	parser   *jwt.Parser

	// verified remembers the tokens already verified, so that a client
	// presenting the same token on every request (all of them do) costs a
	// map lookup and an expiry check instead of base64, JSON and HMAC.
	mu       sync.RWMutex
	verified map[string]Claims
}

// maxVerified bounds the tokens remembered; beyond it the memo starts over.
const maxVerified = 16384

// NewTokens returns Tokens signing with secret, stamping issuer and
// audience, valid for ttl, reading the time from now (nil: time.Now). It
// refuses an empty secret, issuer or audience and a non-positive ttl.
func NewTokens(secret []byte, issuer, audience string, ttl time.Duration, now func() time.Time) (*Tokens, error) {
	switch {
	case len(secret) == 0:
		return nil, errors.New("new tokens: empty secret")
	case issuer == "" || audience == "":
		return nil, errors.New("new tokens: empty issuer or audience")
	case ttl <= 0:
		return nil, fmt.Errorf("new tokens: ttl %v is not positive", ttl)
	}
	if now == nil {
		now = time.Now
	}
	return &Tokens{
		secret:   append([]byte(nil), secret...),
		issuer:   issuer,
		audience: audience,
		ttl:      ttl,
		now:      now,
		verified: map[string]Claims{},
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithExpirationRequired(),
			jwt.WithIssuer(issuer),
			jwt.WithAudience(audience),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(Leeway),
			jwt.WithTimeFunc(now),
		),
	}, nil
}

// TTL returns how long issued tokens are valid.
func (t *Tokens) TTL() time.Duration { return t.ttl }

// Issue returns a signed token for subject (a user ID), sessionID and the
// user's roles, and when it expires. Times are whole seconds, as in the
// token.
func (t *Tokens) Issue(subject, sessionID string, roles []string) (token string, expiresAt time.Time, err error) {
	if subject == "" || sessionID == "" {
		return "", time.Time{}, errors.New("issue token: empty subject or session ID")
	}
	now := t.now()
	claims := jwtClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    t.issuer,
			Subject:   subject,
			Audience:  jwt.ClaimStrings{t.audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl)),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        uuid.NewString(),
		},
		SessionID: sessionID,
		Roles:     roles,
	}
	token, err = jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(t.secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign token: %w", err)
	}
	return token, claims.ExpiresAt.Time, nil
}

// Parse verifies token (signature, algorithm HS256, issuer, audience, exp
// required, nbf and iat, with Leeway) and returns its claims. Every error
// wraps ErrInvalidToken.
func (t *Tokens) Parse(token string) (Claims, error) {
	t.mu.RLock()
	claims, ok := t.verified[token]
	t.mu.RUnlock()
	if ok && t.now().Before(claims.ExpiresAt.Add(Leeway)) {
		return claims, nil
	}
	claims, err := t.parse(token)
	if err != nil {
		return Claims{}, err
	}
	t.mu.Lock()
	if len(t.verified) >= maxVerified {
		clear(t.verified)
	}
	t.verified[token] = claims
	t.mu.Unlock()
	return claims, nil
}

// parse verifies token with the JWT parser.
func (t *Tokens) parse(token string) (Claims, error) {
	var c jwtClaims
	_, err := t.parser.ParseWithClaims(token, &c, func(tok *jwt.Token) (any, error) {
		// WithValidMethods already checks; never hand the HMAC key to
		// another algorithm even if that option is dropped one day.
		if tok.Method != jwt.SigningMethodHS256 {
			return nil, fmt.Errorf("unexpected signing method %v", tok.Header["alg"])
		}
		return t.secret, nil
	})
	if err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if c.Subject == "" || c.SessionID == "" {
		return Claims{}, fmt.Errorf("%w: missing sub or sid", ErrInvalidToken)
	}
	claims := Claims{Subject: c.Subject, SessionID: c.SessionID, ID: c.ID, Roles: c.Roles}
	if c.IssuedAt != nil {
		claims.IssuedAt = c.IssuedAt.Time
	}
	if c.ExpiresAt != nil {
		claims.ExpiresAt = c.ExpiresAt.Time
	}
	return claims, nil
}
