package http

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/app"
	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/queries"
	"github.com/engramhq/engram/transport/request"
)

type createWorkspaceRequest struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Config      json.RawMessage `json:"config"`
}

func (s *Server) createWorkspace(c echo.Context) error {
	var req createWorkspaceRequest
	if err := request.DecodeBody(c, &req); err != nil {
		return err
	}
	if err := objectField("config", req.Config); err != nil {
		return err
	}
	a := actor(c)
	return create(s, c, func(ctx context.Context, idem *commands.Idempotency[commands.WorkspaceResult]) (commands.WorkspaceResult, error) {
		return s.app.Commands.CreateWorkspace.Handle(ctx, commands.CreateWorkspace{
			Actor: a, Name: req.Name, Description: req.Description, Config: nullAsAbsent(req.Config), Idempotency: idem,
		})
	}, func(r commands.WorkspaceResult) answer {
		return created(app.WorkspaceOf(r, a.UserID), r.Written, "/v1/workspaces/"+r.Workspace.ID)
	})
}

func (s *Server) listWorkspaces(c echo.Context) error {
	return answerPage(c, pageRequest, s.app.Queries.ListWorkspaces.Handle, func(w queries.Workspace) string {
		return w.ID + "@" + strconv.Itoa(w.Version) + "/" + w.Role
	})
}

func (s *Server) getWorkspace(c echo.Context) error {
	return getVersioned(c, s.app.Queries.GetWorkspace.Handle, func(w queries.Workspace) int { return w.Version })
}

type updateWorkspaceRequest struct {
	Name        *string         `json:"name"`
	Description *string         `json:"description"`
	Config      json.RawMessage `json:"config"`
}

func (s *Server) updateWorkspace(c echo.Context) error {
	var req updateWorkspaceRequest
	if err := decodeWithObject(c, &req, "config", &req.Config); err != nil {
		return err
	}
	return changeIfMatch(c, func(ctx context.Context, match *int) (commands.WorkspaceResult, error) {
		return s.app.Commands.UpdateWorkspace.Handle(ctx, commands.UpdateWorkspace{
			Actor: actor(c), WorkspaceID: c.Param("id"), Name: req.Name, Description: req.Description,
			Config: nullAsAbsent(req.Config), IfMatch: match,
		})
	}, s.app.WorkspaceAfter)
}

func (s *Server) archiveWorkspace(c echo.Context) error {
	return changeIfMatch(c, func(ctx context.Context, match *int) (commands.WorkspaceResult, error) {
		return s.app.Commands.ArchiveWorkspace.Handle(ctx, commands.ArchiveWorkspace{
			Actor: actor(c), WorkspaceID: c.Param("id"), IfMatch: match,
		})
	}, s.app.WorkspaceAfter)
}

type addMemberRequest struct {
	UserID string `json:"user_id"`
	Email  string `json:"email"`
	Role   string `json:"role"`
}

func (s *Server) listMembers(c echo.Context) error {
	members, err := readByID(c, s.app.Queries.ListMembers.Handle)
	if err != nil {
		return err
	}
	out := pageOf(members) // one page: a workspace has few members
	// A member's e-mail and name come from the user's stream: digested whole.
	return conditional(c, listETag(actor(c).UserID, out, jsonKey[queries.Member]), out)
}

func (s *Server) addMember(c echo.Context) error {
	var req addMemberRequest
	if err := request.DecodeBody(c, &req); err != nil {
		return err
	}
	return create(s, c, func(ctx context.Context, idem *commands.Idempotency[commands.MemberResult]) (commands.MemberResult, error) {
		return s.app.Commands.AddMember.Handle(ctx, commands.AddMember{
			Actor: actor(c), WorkspaceID: c.Param("id"), UserID: req.UserID, Email: req.Email, Role: req.Role, Idempotency: idem,
		})
	}, func(r commands.MemberResult) answer {
		return created(app.MemberOf(r), r.Written, "") // a membership has no URL of its own
	})
}

func (s *Server) removeMember(c echo.Context) error {
	res, err := s.app.Commands.RemoveMember.Handle(c.Request().Context(), commands.RemoveMember{
		Actor: actor(c), WorkspaceID: c.Param("id"), UserID: c.Param("user_id"),
	})
	if err != nil {
		return err
	}
	// Queries authorize from the membership read models: the answer waits
	// (bounded) until they have applied the removal, so that the removed
	// member's very next request is refused, on every instance.
	if err := s.app.Queries.Memberships.Await(c.Request().Context(), res.Position); err != nil {
		s.logger.WarnContext(c.Request().Context(), "member removed before the membership read models caught up; the member may read for a moment longer",
			"request_id", requestID(c), "workspace_id", c.Param("id"), "err", err)
	}
	positionHeaders(c, res.Version, res.Position)
	return c.NoContent(http.StatusNoContent)
}
