package http

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/app"
	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/queries"
	"github.com/engramhq/engram/transport/request"
)

type registerRequest struct {
	Email       string `json:"email"`
	Password    string `json:"password"`
	DisplayName string `json:"display_name"`
}

func (s *Server) register(c echo.Context) error {
	var req registerRequest
	if err := request.DecodeBody(c, &req); err != nil {
		return err
	}
	var res commands.RegisterResult
	err := s.withHashSlot(c, func() (err error) {
		res, err = s.app.Commands.Register.Handle(c.Request().Context(), commands.Register(req))
		return err
	})
	if err != nil {
		return err
	}
	return send(c, created(app.UserOf(res.User, res.RecordedAt()), res.Written, "/v1/auth/me"))
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type tokensJSON struct {
	AccessToken      string        `json:"access_token"`
	TokenType        string        `json:"token_type"`
	ExpiresIn        int64         `json:"expires_in"`
	RefreshToken     string        `json:"refresh_token"`
	RefreshExpiresIn int64         `json:"refresh_expires_in"`
	SessionID        string        `json:"session_id"`
	User             *queries.User `json:"user,omitempty"`
}

func tokensBody(t commands.Tokens, now time.Time) tokensJSON {
	return tokensJSON{
		AccessToken:      t.AccessToken,
		TokenType:        "Bearer",
		ExpiresIn:        int64(t.AccessExpiresAt.Sub(now).Round(time.Second).Seconds()),
		RefreshToken:     t.RefreshToken,
		RefreshExpiresIn: int64(t.RefreshExpiresAt.Sub(now).Round(time.Second).Seconds()),
		SessionID:        t.SessionID,
	}
}

func (s *Server) login(c echo.Context) error {
	var req loginRequest
	if err := request.DecodeBody(c, &req); err != nil {
		return err
	}
	var v domain.Validation
	v.Check(req.Email != "", "email", "is required")
	v.Check(req.Password != "", "password", "is required")
	if err := v.Err(); err != nil {
		return err
	}
	ctx := c.Request().Context()
	ip := c.RealIP()
	attempt, err := s.throttle.begin(c, req.Email, ip)
	if err != nil {
		return err
	}
	var res commands.LoginResult
	err = s.withHashSlot(c, func() (err error) {
		res, err = s.app.Commands.Login.Handle(ctx, commands.Login{
			Email: req.Email, Password: req.Password, UserAgent: c.Request().UserAgent(), IP: ip,
		})
		return err
	})
	if rerr := attempt.end(ctx, domain.ErrorCode(err) == domain.CodeUnauthorized); rerr != nil {
		s.logger.WarnContext(ctx, "login attempt not released; it counts as a failure until the window ends",
			"request_id", requestID(c), "err", rerr)
	}
	if err != nil {
		return err
	}
	body := tokensBody(res.Tokens, time.Now())
	u := app.UserOf(res.User, time.Time{})
	if me, err := s.app.Queries.Me.Handle(c.Request().Context(), access.Actor{UserID: res.User.ID}, 0); err == nil {
		u = me
	}
	body.User = &u
	positionHeaders(c, 0, res.Position)
	return c.JSON(http.StatusOK, body)
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

func (s *Server) refresh(c echo.Context) error {
	var req refreshRequest
	if err := request.DecodeBody(c, &req); err != nil {
		return err
	}
	if req.RefreshToken == "" {
		return invalid(domain.FieldError{Field: "refresh_token", Message: "is required"})
	}
	res, err := s.app.Commands.Login.Refresh(c.Request().Context(), commands.Refresh{RefreshToken: req.RefreshToken})
	if err != nil {
		return err
	}
	body := tokensBody(res.Tokens, time.Now())
	if me, err := s.app.Queries.Me.Handle(c.Request().Context(), access.Actor{UserID: res.UserID}, 0); err == nil {
		u := me
		body.User = &u
	}
	positionHeaders(c, 0, res.Position)
	return c.JSON(http.StatusOK, body)
}

// logout ends the session of the access token. An API key cannot log out
// (403): revoke it with DELETE /v1/api-keys/{id}.
func (s *Server) logout(c echo.Context) error {
	a := actor(c)
	res, err := s.app.Commands.RevokeSession.Handle(c.Request().Context(), commands.RevokeSession{Actor: a, SessionID: a.SessionID, Reason: "logout"})
	if err != nil {
		return err
	}
	positionHeaders(c, 0, res.Position)
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) me(c echo.Context) error {
	pos, err := minPosition(c)
	if err != nil {
		return err
	}
	u, err := s.app.Queries.Me.Handle(c.Request().Context(), actor(c), pos)
	if err != nil {
		return err
	}
	return conditional(c, versionETag(u.Version), u)
}

func (s *Server) listSessions(c echo.Context) error {
	pos, err := minPosition(c)
	if err != nil {
		return err
	}
	a := actor(c)
	sessions, err := s.app.Queries.ListSessions.Handle(c.Request().Context(), a, pos)
	if err != nil {
		return err
	}
	out := pageOf(sessions)
	return conditional(c, listETag(a.UserID, out, jsonKey[queries.Session]), out)
}

func (s *Server) revokeSession(c echo.Context) error {
	res, err := s.app.Commands.RevokeSession.Handle(c.Request().Context(), commands.RevokeSession{
		Actor: actor(c), SessionID: c.Param("id"), Reason: "revoked by user",
	})
	if err != nil {
		return err
	}
	positionHeaders(c, 0, res.Position)
	return c.NoContent(http.StatusNoContent)
}
