package commands

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/session"
	"github.com/engramhq/engram/domain/user"
	"github.com/engramhq/engram/eventstore"
)

// TokenIssuer issues access tokens for a session of a user holding roles.
type TokenIssuer interface {
	Issue(subject, sessionID string, roles []string) (token string, expiresAt time.Time, err error)
}

// SecretGenerator makes opaque random secrets and their storable hashes.
type SecretGenerator interface {
	// NewSecret returns prefix followed by a random, URL-safe secret.
	NewSecret(prefix string) (string, error)
	// HashSecret returns the hash under which a secret is stored.
	HashSecret(secret string) string
}

// errBadCredentials is the one answer to every failed login, whatever failed.
var errBadCredentials = domain.Errorf(domain.CodeUnauthorized, "invalid e-mail address or password")

// Tokens is what a login or a refresh hands out.
type Tokens struct {
	AccessToken      string
	AccessExpiresAt  time.Time
	RefreshToken     string
	RefreshExpiresAt time.Time
	SessionID        string
}

// Login starts a session for an e-mail address and password.
type Login struct {
	Email     string
	Password  string
	UserAgent string
	IP        string
}

// LoginResult is the session's tokens and its user.
type LoginResult struct {
	User UserState
	Tokens
	Written
}

// LoginHandler handles Login and Refresh.
type LoginHandler struct {
	repos       *repositories
	hasher      PasswordHasher
	tokens      TokenIssuer
	secrets     SecretGenerator
	revocations Revocations
	refreshTTL  time.Duration
	now         func() time.Time
}

// Handle checks the credentials and starts a session. Unknown accounts and
// wrong passwords get the same CodeUnauthorized error after the same work. A
// password longer than user.MaxPasswordBytes cannot be anyone's: it is
// refused at once, before any lookup or hashing, so that it costs nothing.
func (h *LoginHandler) Handle(ctx context.Context, cmd Login) (LoginResult, error) {
	if len(cmd.Password) > user.MaxPasswordBytes {
		return LoginResult{}, errBadCredentials
	}
	owner, err := h.repos.store.ClaimOwner(ctx, eventstore.Claim{Scope: EmailClaimScope, Value: user.NormalizeEmail(cmd.Email)})
	if err != nil {
		return LoginResult{}, err
	}
	if owner == "" {
		h.hasher.VerifyDummy(cmd.Password)
		return LoginResult{}, errBadCredentials
	}
	userID := strings.TrimPrefix(owner, user.StreamType+"-")
	u, err := h.repos.users.load(ctx, userID)
	if err != nil {
		return LoginResult{}, err
	}
	state := userState(u)
	hash := u.PasswordHash()
	h.repos.users.release(userID, u)
	ok, err := h.hasher.Verify(cmd.Password, hash)
	if err != nil {
		return LoginResult{}, err
	}
	if !ok {
		return LoginResult{}, errBadCredentials
	}

	sessionID := newID()
	refresh, err := h.newRefreshToken(sessionID)
	if err != nil {
		return LoginResult{}, err
	}
	expires := h.now().Add(h.refreshTTL).UTC().Truncate(time.Second)
	s, err := session.Start(sessionID, userID, h.secrets.HashSecret(refresh), cmd.UserAgent, cmd.IP, expires)
	if err != nil {
		return LoginResult{}, err
	}
	w, err := h.repos.sessions.create(withActor(ctx, userID), sessionID, s)
	if err != nil {
		return LoginResult{}, err
	}
	access, accessExp, err := h.tokens.Issue(userID, sessionID, state.Roles)
	if err != nil {
		return LoginResult{}, err
	}
	return LoginResult{
		User:    state,
		Tokens:  Tokens{AccessToken: access, AccessExpiresAt: accessExp, RefreshToken: refresh, RefreshExpiresAt: expires, SessionID: sessionID},
		Written: w,
	}, nil
}

// Refresh rotates a session's refresh token and issues a new access token.
type Refresh struct {
	RefreshToken string
}

// RefreshResult is the session's new tokens.
type RefreshResult struct {
	Tokens
	UserID string
	Written
}

// Refresh rotates the refresh token. Presenting a refresh token that was
// already rotated revokes the whole session: someone else may hold it.
func (h *LoginHandler) Refresh(ctx context.Context, cmd Refresh) (RefreshResult, error) {
	sessionID, ok := sessionOfRefreshToken(cmd.RefreshToken)
	if !ok {
		return RefreshResult{}, errInvalidRefresh
	}
	s, err := h.repos.sessions.load(ctx, sessionID)
	if domain.ErrorCode(err) == domain.CodeNotFound {
		return RefreshResult{}, errInvalidRefresh
	}
	if err != nil {
		return RefreshResult{}, err
	}
	userID := s.UserID() // a session never changes user
	h.repos.sessions.release(sessionID, s)
	next, err := h.newRefreshToken(sessionID)
	if err != nil {
		return RefreshResult{}, err
	}
	// The roles are read before anything is stored: once the rotation is
	// stored, the presented token is spent, and a failure after that would
	// make the client's retry look like theft.
	roles, err := h.roles(ctx, userID)
	if err != nil {
		return RefreshResult{}, err
	}
	now := h.now()
	expires := now.Add(h.refreshTTL).UTC().Truncate(time.Second)
	var (
		decision error
		revoked  bool
	)
	w, err := h.repos.sessions.update(withActor(ctx, userID), sessionID, func(s *session.Session) error {
		decision = s.Refresh(h.secrets.HashSecret(cmd.RefreshToken), h.secrets.HashSecret(next), expires, now)
		revoked = s.Revoked()
		if len(s.Pending()) > 0 {
			// Either the rotation, or the revocation of a reused token:
			// both are recorded, whatever the decision.
			return nil
		}
		if decision == nil {
			return errors.New("session refresh recorded nothing")
		}
		return decision
	})
	if domain.ErrorCode(err) == domain.CodeUnauthorized {
		return RefreshResult{}, errInvalidRefresh
	}
	if err != nil {
		return RefreshResult{}, err
	}
	if decision != nil {
		if revoked {
			h.revocations.RevokeSession(ctx, sessionID)
		}
		return RefreshResult{}, errInvalidRefresh
	}
	access, accessExp, err := h.tokens.Issue(userID, sessionID, roles)
	if err != nil {
		return RefreshResult{}, err
	}
	return RefreshResult{
		Tokens:  Tokens{AccessToken: access, AccessExpiresAt: accessExp, RefreshToken: next, RefreshExpiresAt: expires, SessionID: sessionID},
		UserID:  userID,
		Written: w,
	}, nil
}

// roles returns the current roles of userID, for a refreshed access token.
func (h *LoginHandler) roles(ctx context.Context, userID string) ([]string, error) {
	u, err := h.repos.users.load(ctx, userID)
	if err != nil {
		return nil, err
	}
	roles := u.Roles()
	h.repos.users.release(userID, u)
	return roles, nil
}

var errInvalidRefresh = domain.Errorf(domain.CodeUnauthorized, "invalid or expired refresh token")

const refreshPrefix = "rt_"

// newRefreshToken returns "rt_<session id>.<random>": the session id lets the
// token be found without an index of secrets; only its hash is stored.
func (h *LoginHandler) newRefreshToken(sessionID string) (string, error) {
	secret, err := h.secrets.NewSecret("")
	if err != nil {
		return "", err
	}
	return refreshPrefix + sessionID + "." + secret, nil
}

func sessionOfRefreshToken(token string) (string, bool) {
	rest, ok := strings.CutPrefix(token, refreshPrefix)
	if !ok {
		return "", false
	}
	id, secret, ok := strings.Cut(rest, ".")
	if !ok || secret == "" || validID("session_id", id) != nil {
		return "", false
	}
	return id, true
}
