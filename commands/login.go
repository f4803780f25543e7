package commands

import (
	"context"
	"crypto/subtle"
	"errors"
	"strings"
	"time"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/catalog"
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

// AccountName returns the form of an e-mail address under which Login
// finds its account: two spellings of one address name one account (for a
// throttle of failed logins, say).
func AccountName(email string) string { return user.NormalizeEmail(email) }

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
	grace       GraceStore    // nil: no reuse grace
	graceFor    time.Duration // the reuse grace
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
	userID := catalog.Users.ID(owner)
	u, err := h.repos.users.load(ctx, userID)
	if err != nil {
		return LoginResult{}, err
	}
	state := catalog.UserStateOf(u)
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
// already rotated revokes the whole session: someone else may hold it —
// except within the reuse grace (see DefaultRefreshReuseGrace): the token
// spent by the latest rotation, presented again within the grace, gets the
// very answer that rotation gave (the same access and refresh tokens) and
// changes nothing, so that a client sending one refresh several times at
// once, or retrying it after a lost answer, does not log itself out.
// Concurrent refreshes are decided one after the other on the session's
// latest state (the repository's one writer per stream).
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
	// The roles are read and the access token issued before anything is
	// stored: once the rotation is stored, the presented token is spent, and
	// a failure after that would make the client's retry look like theft.
	roles, err := h.roles(ctx, userID)
	if err != nil {
		return RefreshResult{}, err
	}
	access, accessExp, err := h.tokens.Issue(userID, sessionID, roles)
	if err != nil {
		return RefreshResult{}, err
	}
	now := h.now()
	expires := now.Add(h.refreshTTL).UTC().Truncate(time.Second)
	presentedHash, nextHash := h.secrets.HashSecret(cmd.RefreshToken), h.secrets.HashSecret(next)
	answer := RefreshResult{
		Tokens: Tokens{AccessToken: access, AccessExpiresAt: accessExp, RefreshToken: next, RefreshExpiresAt: expires, SessionID: sessionID},
		UserID: userID,
	}
	var (
		decision error
		revoked  bool
		grace    RefreshResult
		inGrace  bool
	)
	w, err := h.repos.sessions.update(withActor(ctx, userID), sessionID, func(s *session.Session) error {
		decision, revoked, inGrace = nil, false, false
		if res, ok := h.withinGrace(ctx, s, cmd.RefreshToken, presentedHash, now); ok {
			grace, inGrace = res, true
			return errGraceAnswer
		}
		decision = s.Refresh(presentedHash, nextHash, expires, now)
		revoked = s.Revoked()
		if len(s.Pending()) > 0 {
			// Either the rotation, or the revocation of a reused token:
			// both are recorded, whatever the decision.
			if decision == nil {
				// Kept before the rotation is stored, so that a concurrent
				// refresh that finds the rotation also finds its answer.
				h.keepForGrace(ctx, cmd.RefreshToken, nextHash, answer, now)
			}
			return nil
		}
		if decision == nil {
			return errors.New("session refresh recorded nothing")
		}
		return decision
	})
	if inGrace && errors.Is(err, errGraceAnswer) {
		return grace, nil
	}
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
	answer.Written = w
	return answer, nil
}

// errGraceAnswer ends a refresh's decision when the kept answer of the
// latest rotation is due instead (nothing is recorded).
var errGraceAnswer = errors.New("refresh within the reuse grace")

// withinGrace returns the kept answer of the session's latest rotation when
// presented is the token that rotation spent, the grace has not ended, and
// the session is still active.
func (h *LoginHandler) withinGrace(ctx context.Context, s *session.Session, presented, presentedHash string, now time.Time) (RefreshResult, bool) {
	if h.grace == nil || !s.Active(now) || !sameHash(presentedHash, s.PreviousRefreshTokenHash()) {
		return RefreshResult{}, false
	}
	sealed, found, err := h.grace.Get(ctx, graceKey(s.RefreshTokenHash()))
	if err != nil || !found {
		return RefreshResult{}, false
	}
	a, err := openGrace(presented, sealed)
	if err != nil || !now.Before(a.Until) || a.SessionID != s.ID() ||
		!sameHash(h.secrets.HashSecret(a.RefreshToken), s.RefreshTokenHash()) {
		return RefreshResult{}, false
	}
	return RefreshResult{Tokens: a.Tokens, UserID: a.UserID, Written: Written{Version: s.Version()}}, true
}

// sameHash compares two hashes in constant time; an empty hash matches
// nothing.
func sameHash(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// keepForGrace keeps a rotation's answer, sealed with the spent token, for
// the reuse grace. It is best effort: without it, a retry within the grace
// is taken for reuse, as it would be without a grace.
func (h *LoginHandler) keepForGrace(ctx context.Context, spent, nextHash string, r RefreshResult, now time.Time) {
	if h.grace == nil || h.graceFor <= 0 {
		return
	}
	sealed, err := sealGrace(spent, graceAnswer{Tokens: r.Tokens, UserID: r.UserID, Until: now.Add(h.graceFor)})
	if err != nil {
		return
	}
	_ = h.grace.Set(ctx, graceKey(nextHash), sealed, h.graceFor)
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
