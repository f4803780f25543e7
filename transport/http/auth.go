package http

import (
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/platform/security"
)

// TokenParser validates access tokens.
type TokenParser interface {
	Parse(token string) (security.Claims, error)
}

const actorKey = "engram.actor"

// APIKeyPrefix starts every API key.
const APIKeyPrefix = "sk-"

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

func (s *Server) resolve(c echo.Context, credential string) (access.Actor, error) {
	ctx := c.Request().Context()
	creds := s.app.Queries.Credentials
	if strings.HasPrefix(credential, APIKeyPrefix) {
		p, found, err := creds.KeyPrincipal(ctx, security.HashToken(credential))
		if err != nil {
			return access.Actor{}, err
		}
		if !found {
			return access.Actor{}, unauthorized(c, "the API key is invalid, revoked or expired")
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
	p, err := creds.SessionPrincipal(ctx, claims.Subject, claims.SessionID)
	if err != nil {
		return access.Actor{}, err
	}
	if p.Revoked {
		return access.Actor{}, unauthorized(c, "the session of this access token has ended")
	}
	return access.Actor{UserID: p.UserID, Roles: p.Roles, SessionID: claims.SessionID}, nil
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
