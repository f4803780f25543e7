package http

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/queries"
	"github.com/engramhq/engram/transport/request"
)

type issueAPIKeyRequest struct {
	Name          string   `json:"name"`
	Scopes        []string `json:"scopes"`
	ExpiresInDays *int     `json:"expires_in_days"`
}

// issuedAPIKeyJSON is the answer to an issue: the only time the key is
// shown.
type issuedAPIKeyJSON struct {
	ID        string     `json:"id"`
	Key       string     `json:"key"`
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	Prefix    string     `json:"prefix"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// issueAPIKey answers with the key once. It does not take an
// Idempotency-Key: a replay would have to store the key, and keys are stored
// nowhere. It answers once the api_keys read model holds the key, so that
// every instance accepts it at once.
func (s *Server) issueAPIKey(c echo.Context) error {
	if c.Request().Header.Get("Idempotency-Key") != "" {
		return invalid(domain.FieldError{Field: "Idempotency-Key",
			Message: "is not accepted here: the answer holds a secret that is shown once and stored nowhere"})
	}
	var req issueAPIKeyRequest
	if err := request.DecodeBody(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	res, err := s.app.Commands.IssueAPIKey.Handle(ctx, commands.IssueAPIKey{
		Actor: actor(c), Name: req.Name, Scopes: req.Scopes, ExpiresInDays: req.ExpiresInDays,
	})
	if err != nil {
		return err
	}
	if err := s.app.Queries.Credentials.Await(ctx, res.Position); err != nil {
		s.logger.WarnContext(ctx, "API key issued before its read model caught up; other instances may refuse it briefly",
			"request_id", requestID(c), "key_id", res.ID, "err", err)
	}
	positionHeaders(c, res.Version, res.Position)
	return c.JSON(http.StatusCreated, issuedAPIKeyJSON{ID: res.ID, Key: res.Key, Name: res.Name, Scopes: res.Scopes,
		Prefix: res.Prefix, CreatedAt: res.CreatedAt, ExpiresAt: res.ExpiresAt})
}

func (s *Server) listAPIKeys(c echo.Context) error {
	// A key in a list shows its prefix, never the key.
	return answerPage(c, pageRequest, s.app.Queries.ListAPIKeys.Handle, jsonKey[queries.APIKey])
}

func (s *Server) revokeAPIKey(c echo.Context) error {
	res, err := s.app.Commands.RevokeAPIKey.Handle(c.Request().Context(), commands.RevokeAPIKey{
		Actor: actor(c), KeyID: c.Param("id"),
	})
	if err != nil {
		return err
	}
	positionHeaders(c, 0, res.Position)
	return c.NoContent(http.StatusNoContent)
}
