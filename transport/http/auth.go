package http

import (
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/platform/security"
	"github.com/engramhq/engram/transport/request"
)

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
		actor, expiresAt, err := s.resolve(c, strings.TrimSpace(credential))
		if err != nil {
			return err
		}
		request.SetActor(c, actor, expiresAt)
		return next(c)
	}
}

// resolve authenticates a credential. An access token costs no database
// query: its signature proves the user, its session and roles, and the
// revocation cache answers whether the session has ended. An API key is
// looked up by its hash in the api_keys read model (which knows expiry and
// revocation once it has caught up) and in the revocation cache (which
// knows a revocation at once). It returns the actor and when the
// credential expires (zero for an API key: checked when a request starts).
func (s *Server) resolve(c echo.Context, credential string) (access.Actor, time.Time, error) {
	ctx := c.Request().Context()
	if strings.HasPrefix(credential, APIKeyPrefix) {
		const refused = "the API key is invalid, revoked or expired"
		if len(credential) > maxAPIKeyBytes {
			return access.Actor{}, time.Time{}, unauthorized(c, refused)
		}
		p, found, err := s.app.Queries.Credentials.KeyPrincipal(ctx, security.HashToken(credential))
		if err != nil {
			return access.Actor{}, time.Time{}, err
		}
		if found {
			revoked, err := s.app.Revocations.KeyRevoked(ctx, p.KeyID)
			if err != nil {
				return access.Actor{}, time.Time{}, err
			}
			found = !revoked
		}
		if !found {
			return access.Actor{}, time.Time{}, unauthorized(c, refused)
		}
		scopes := p.Scopes
		if scopes == nil {
			scopes = []string{}
		}
		return access.Actor{UserID: p.UserID, Roles: p.Roles, Scopes: scopes, KeyID: p.KeyID}, time.Time{}, nil
	}
	claims, err := s.app.Tokens.Parse(credential)
	if err != nil {
		return access.Actor{}, time.Time{}, unauthorized(c, "the access token is invalid or expired")
	}
	revoked, err := s.app.Revocations.SessionRevoked(ctx, claims.SessionID)
	if err != nil {
		return access.Actor{}, time.Time{}, err
	}
	if revoked {
		return access.Actor{}, time.Time{}, unauthorized(c, "the session of this access token has ended")
	}
	return access.Actor{UserID: claims.Subject, Roles: claims.Roles, SessionID: claims.SessionID}, claims.ExpiresAt, nil
}

func unauthorized(c echo.Context, detail string) error {
	c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="engram"`)
	return domain.Errorf(domain.CodeUnauthorized, "%s", detail)
}

// requireActor refuses anonymous requests with 401.
func requireActor(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if _, ok := request.Actor(c); !ok {
			return unauthorized(c, "authentication required")
		}
		return next(c)
	}
}

// actor returns the authenticated actor; routes behind requireActor always
// have one.
func actor(c echo.Context) access.Actor {
	a, _ := request.Actor(c)
	return a
}
