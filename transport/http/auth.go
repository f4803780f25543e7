package http

import (
	"context"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/platform/security"
)

// TokenParser validates access tokens.
type TokenParser interface {
	Parse(token string) (security.Claims, error)
}

// RevocationChecker tells whether a credential was revoked. Both answers
// must hold on every instance from the moment the revoking command returns.
type RevocationChecker interface {
	SessionRevoked(ctx context.Context, sessionID string) (bool, error)
	KeyRevoked(ctx context.Context, keyID string) (bool, error)
}

const actorKey = "engram.actor"

// APIKeyPrefix starts every API key.
const APIKeyPrefix = commands.APIKeyPrefix

// maxAPIKeyBytes bounds what is hashed and looked up as an API key; issued
// keys are 46 bytes.
const maxAPIKeyBytes = 128

// authenticate resolves the Authorization header into an actor. A request
// without credentials goes on anonymously (requireActor refuses it where
// needed); a request with bad credentials is refused at once.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		header := c.Request().Header.Get(echo.HeaderAuthorization)
		if header == "" {
			return next(c)
		}
		scheme, credential, ok := strings.Cut(header, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || credential == "" {
			return unauthorized(c, "use Authorization: Bearer <token or API key>")
		}
		actor, err := s.resolve(c, strings.TrimSpace(credential))
		if err != nil {
			return err
		}
		c.Set(actorKey, actor)
		return next(c)
	}
}

// resolve authenticates a credential. An access token costs no database
// query: its signature proves the user, its session and roles, and the
// revocation cache answers whether the session has ended. An API key is
// looked up by its hash in the api_keys read model (which knows expiry and
// revocation once it has caught up) and in the revocation cache (which
// knows a revocation at once).
func (s *Server) resolve(c echo.Context, credential string) (access.Actor, error) {
	ctx := c.Request().Context()
	if strings.HasPrefix(credential, APIKeyPrefix) {
		const refused = "the API key is invalid, revoked or expired"
		if len(credential) > maxAPIKeyBytes {
			return access.Actor{}, unauthorized(c, refused)
		}
		p, found, err := s.app.Queries.Credentials.KeyPrincipal(ctx, security.HashToken(credential))
		if err != nil {
			return access.Actor{}, err
		}
		if found {
			revoked, err := s.app.Revocations.KeyRevoked(ctx, p.KeyID)
			if err != nil {
				return access.Actor{}, err
			}
			found = !revoked
		}
		if !found {
			return access.Actor{}, unauthorized(c, refused)
		}
		scopes := p.Scopes
		if scopes == nil {
			scopes = []string{}
		}
		return access.Actor{UserID: p.UserID, Roles: p.Roles, Scopes: scopes, KeyID: p.KeyID}, nil
	}
	claims, err := s.app.Tokens.Parse(credential)
	if err != nil {
		return access.Actor{}, unauthorized(c, "the access token is invalid or expired")
	}
	revoked, err := s.app.Revocations.SessionRevoked(ctx, claims.SessionID)
	if err != nil {
		return access.Actor{}, err
	}
	if revoked {
		return access.Actor{}, unauthorized(c, "the session of this access token has ended")
	}
	c.Set(expiryKey, claims.ExpiresAt)
	return access.Actor{UserID: claims.Subject, Roles: claims.Roles, SessionID: claims.SessionID}, nil
}

func unauthorized(c echo.Context, detail string) error {
	c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="engram"`)
	return domain.Errorf(domain.CodeUnauthorized, "%s", detail)
}

// requireActor refuses anonymous requests with 401.
func requireActor(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if _, ok := actorOf(c); !ok {
			return unauthorized(c, "authentication required")
		}
		return next(c)
	}
}

const expiryKey = "engram.credential_expiry"

// ActorOf returns the actor authenticated for a request, for the routes that
// other transports (SSE) register on the server's router.
func ActorOf(c echo.Context) (access.Actor, bool) { return actorOf(c) }

// SetActor records the actor of a request that authenticated by other means
// than the Authorization header (an SSE ticket), so that it is logged like
// any other; expiresAt is when its credential expires (zero: no expiry).
func SetActor(c echo.Context, a access.Actor, expiresAt time.Time) {
	c.Set(actorKey, a)
	if !expiresAt.IsZero() {
		c.Set(expiryKey, expiresAt)
	}
}

// CredentialExpiry returns when the request's credential stops being valid:
// the expiry of its access token, and false for API keys (checked when the
// request starts only) and anonymous requests.
func CredentialExpiry(c echo.Context) (time.Time, bool) {
	t, ok := c.Get(expiryKey).(time.Time)
	return t, ok && !t.IsZero()
}

func actorOf(c echo.Context) (access.Actor, bool) {
	a, ok := c.Get(actorKey).(access.Actor)
	return a, ok
}

// actor returns the authenticated actor; routes behind requireActor always
// have one.
func actor(c echo.Context) access.Actor {
	a, _ := actorOf(c)
	return a
}
