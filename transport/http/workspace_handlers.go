package http

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/projections"
)

type createWorkspaceRequest struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Config      json.RawMessage `json:"config"`
}

func (s *Server) createWorkspace(c echo.Context) error {
	var req createWorkspaceRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	if err := objectField("config", req.Config); err != nil {
		return err
	}
	locate := func(w workspaceJSON) string { return "/v1/workspaces/" + w.ID }
	return create(s, c, workspaceFromEvents, locate, func(ctx context.Context) (commands.Written, error) {
		res, err := s.app.Commands.CreateWorkspace.Handle(ctx, commands.CreateWorkspace{
			Actor: actor(c), Name: req.Name, Description: req.Description, Config: nullAsAbsent(req.Config),
		})
		return res.Written, err
	})
}

func (s *Server) listWorkspaces(c echo.Context) error {
	pos, err := minPosition(c)
	if err != nil {
		return err
	}
	page, err := pageRequest(c)
	if err != nil {
		return err
	}
	a := actor(c)
	res, err := s.app.Queries.ListWorkspaces.Handle(c.Request().Context(), a, page, pos)
	if err != nil {
		return err
	}
	out := listOf(res, workspaceFromQuery)
	return conditional(c, listETag(a.UserID, out, func(w workspaceJSON) string {
		return w.ID + "@" + strconv.Itoa(w.Version) + "/" + w.Role
	}), out)
}

func (s *Server) getWorkspace(c echo.Context) error {
	pos, err := minPosition(c)
	if err != nil {
		return err
	}
	w, err := s.app.Queries.GetWorkspace.Handle(c.Request().Context(), actor(c), c.Param("id"), pos)
	if err != nil {
		return err
	}
	return conditional(c, versionETag(w.Version), workspaceFromQuery(w))
}

type updateWorkspaceRequest struct {
	Name        *string         `json:"name"`
	Description *string         `json:"description"`
	Config      json.RawMessage `json:"config"`
}

func (s *Server) updateWorkspace(c echo.Context) error {
	var req updateWorkspaceRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	if err := objectField("config", nullAsAbsent(req.Config)); err != nil {
		return err
	}
	match, err := ifMatch(c)
	if err != nil {
		return err
	}
	res, err := s.app.Commands.UpdateWorkspace.Handle(c.Request().Context(), commands.UpdateWorkspace{
		Actor: actor(c), WorkspaceID: c.Param("id"), Name: req.Name, Description: req.Description,
		Config: nullAsAbsent(req.Config), IfMatch: match,
	})
	if err != nil {
		return err
	}
	return s.answerWorkspace(c, res)
}

func (s *Server) archiveWorkspace(c echo.Context) error {
	match, err := ifMatch(c)
	if err != nil {
		return err
	}
	res, err := s.app.Commands.ArchiveWorkspace.Handle(c.Request().Context(), commands.ArchiveWorkspace{
		Actor: actor(c), WorkspaceID: c.Param("id"), IfMatch: match,
	})
	if err != nil {
		return err
	}
	return s.answerWorkspace(c, res)
}

// answerWorkspace answers a workspace change with the workspace as the read
// model shows it once it has applied the change, or as the command saw it
// when the read model is late.
func (s *Server) answerWorkspace(c echo.Context, res commands.WorkspaceResult) error {
	positionHeaders(c, res.Version, res.Position)
	a := actor(c)
	ctx := c.Request().Context()
	if s.app.Projections.WaitFor(ctx, projections.WorkspacesProjector, res.Position) == nil {
		if w, err := s.app.Queries.GetWorkspace.Handle(ctx, a, res.Workspace.ID, 0); err == nil {
			return c.JSON(http.StatusOK, workspaceFromQuery(w))
		}
	}
	return c.JSON(http.StatusOK, workspaceFromCommand(res.Workspace, res.Written, res.Workspace.Members[a.UserID]))
}

type addMemberRequest struct {
	UserID string `json:"user_id"`
	Email  string `json:"email"`
	Role   string `json:"role"`
}

func (s *Server) listMembers(c echo.Context) error {
	pos, err := minPosition(c)
	if err != nil {
		return err
	}
	a := actor(c)
	members, err := s.app.Queries.ListMembers.Handle(c.Request().Context(), a, c.Param("id"), pos)
	if err != nil {
		return err
	}
	out := listJSON[memberJSON]{Items: make([]memberJSON, len(members))}
	for i, m := range members {
		out.Items[i] = memberFromQuery(m)
	}
	// A member's e-mail and name come from the user's stream: digested whole.
	return conditional(c, listETag(a.UserID, out, jsonKey[memberJSON]), out)
}

func (s *Server) addMember(c echo.Context) error {
	var req addMemberRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	workspaceID := c.Param("id")
	fromEvents := func(events []eventstore.Event) (memberJSON, bool) { return memberFromEvents(workspaceID, events) }
	locate := func(memberJSON) string { return "" } // a membership has no URL of its own
	return create(s, c, fromEvents, locate, func(ctx context.Context) (commands.Written, error) {
		res, err := s.app.Commands.AddMember.Handle(ctx, commands.AddMember{
			Actor: actor(c), WorkspaceID: workspaceID, UserID: req.UserID, Email: req.Email, Role: req.Role,
		})
		return res.Written, err
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
	if err := s.waitMemberships(c.Request().Context(), res.Position); err != nil {
		s.logger.WarnContext(c.Request().Context(), "member removed before the membership read models caught up; the member may read for a moment longer",
			"request_id", requestID(c), "workspace_id", c.Param("id"), "err", err)
	}
	positionHeaders(c, res.Version, res.Position)
	return c.NoContent(http.StatusNoContent)
}

// waitMemberships waits until the read models that authorize queries have
// applied position.
func (s *Server) waitMemberships(ctx context.Context, position int64) error {
	if position <= 0 {
		return nil
	}
	if s.app.Memberships != nil {
		return s.app.Memberships.WaitMemberships(ctx, position)
	}
	return s.app.Projections.WaitFor(ctx, projections.WorkspacesProjector, position)
}

// nullAsAbsent treats a JSON null like an absent field.
func nullAsAbsent(raw json.RawMessage) json.RawMessage {
	if string(raw) == "null" {
		return nil
	}
	return raw
}
