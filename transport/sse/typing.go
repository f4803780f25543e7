package sse

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/platform/livebus"
	"github.com/engramhq/engram/transport/request"
)

// Typing states.
const (
	typingStart = "start"
	typingStop  = "stop"
)

type typingRequest struct {
	State *string `json:"state"`
}

type typingData struct {
	State string `json:"state"`
}

// typing answers POST /v1/conversations/{id}/typing: it tells the
// conversation's subscribers that the caller started (or stopped) typing.
// Nothing is stored.
func (h *Hub) typing(c echo.Context) error {
	a, ok := request.Actor(c)
	if !ok {
		return unauthorized(c, "authentication required")
	}
	id := c.Param("id")
	var req typingRequest
	if c.Request().ContentLength != 0 {
		if err := request.DecodeBody(c, &req); err != nil {
			return err
		}
	}
	state := typingStart
	if req.State != nil {
		state = *req.State
	}
	var v domain.Validation
	v.Check(state == typingStart || state == typingStop, "state", "must be %q or %q", typingStart, typingStop)
	if err := v.Err(); err != nil {
		return err
	}
	ctx := c.Request().Context()
	ws, err := h.conversationWorkspace(ctx, id)
	if err != nil {
		return err
	}
	if err := h.checkWorkspace(ctx, a, access.PostMessage, ws, "conversation"); err != nil {
		return err
	}
	if h.view.members.Archived(ws) {
		return domain.Errorf(domain.CodeConflict, "workspace is archived")
	}
	if h.bus == nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "live signals are not available")
	}
	data, err := json.Marshal(typingData{State: state})
	if err != nil {
		return err
	}
	if err := h.bus.Publish(ctx, livebus.Signal{Type: livebus.TypeTyping, ConversationID: id, WorkspaceID: ws,
		UserID: a.UserID, Data: data}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
