package http

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/cognition"
	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/memory"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/projections"
	"github.com/engramhq/engram/queries"
)

// ExpertInfo describes a domain expert this instance runs (GET /v1/experts).
type ExpertInfo struct {
	Name         string   `json:"name"`
	Capabilities []string `json:"capabilities"`
}

type taskJSON struct {
	ID             string     `json:"id"`
	WorkspaceID    string     `json:"workspace_id"`
	ConversationID string     `json:"conversation_id"`
	MessageID      string     `json:"message_id"`
	RequestedBy    string     `json:"requested_by"`
	Expert         string     `json:"expert"`
	Input          string     `json:"input"`
	Priority       int        `json:"priority"`
	Status         string     `json:"status"`
	Progress       int        `json:"progress"`
	Note           string     `json:"note"`
	Attempts       int        `json:"attempts"`
	Output         *string    `json:"output"`
	ReplyMessageID *string    `json:"reply_message_id"`
	Reason         *string    `json:"reason"`
	SubmittedAt    time.Time  `json:"submitted_at"`
	StartedAt      *time.Time `json:"started_at"`
	FinishedAt     *time.Time `json:"finished_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	Version        int        `json:"version"`
}

type memoryItemJSON struct {
	ID              string          `json:"id"`
	WorkspaceID     string          `json:"workspace_id"`
	Type            string          `json:"type"`
	Content         string          `json:"content"`
	Metadata        json.RawMessage `json:"metadata"`
	ExpiresAt       *time.Time      `json:"expires_at"`
	SourceMessageID *string         `json:"source_message_id"`
	CreatedAt       time.Time       `json:"created_at"`
	UpdatedAt       time.Time       `json:"updated_at"`
}

type memoryContextJSON struct {
	Summary  string                    `json:"summary"`
	Recent   []memoryItemJSON          `json:"recent"`
	Entities map[string]memoryItemJSON `json:"entities"`
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func taskFromQuery(t queries.Task) taskJSON {
	out := taskJSON{ID: t.ID, WorkspaceID: t.WorkspaceID, ConversationID: t.ConversationID, MessageID: t.MessageID,
		RequestedBy: t.RequestedBy, Expert: t.Expert, Input: t.Input, Priority: t.Priority, Status: t.Status, Progress: t.Progress,
		Note: t.Note, Attempts: t.Attempts, SubmittedAt: t.SubmittedAt, StartedAt: t.StartedAt, FinishedAt: t.FinishedAt,
		UpdatedAt: t.UpdatedAt, Version: t.Version}
	if t.Output.Valid {
		out.Output = &t.Output.String
	}
	if t.ReplyMessageID.Valid {
		out.ReplyMessageID = &t.ReplyMessageID.String
	}
	if t.Reason.Valid {
		out.Reason = &t.Reason.String
	}
	return out
}

func memoryItemFromQuery(it cognition.Item) memoryItemJSON {
	return memoryItemJSON{ID: it.ID, WorkspaceID: it.WorkspaceID, Type: it.Type, Content: it.Content, Metadata: objectOrEmpty(it.Metadata),
		ExpiresAt: it.ExpiresAt, SourceMessageID: optional(it.SourceMessageID), CreatedAt: it.CreatedAt, UpdatedAt: it.UpdatedAt}
}

// memoryItemFromEvents builds the answer to a stored item from the event it
// wrote, so that an idempotent retry gets the same body.
func memoryItemFromEvents(events []eventstore.Event) (memoryItemJSON, bool) {
	for _, e := range events {
		if ev, err := memory.Decode(e.Type, e.SchemaVersion, e.Data); err == nil {
			if s, ok := ev.(memory.ItemStored); ok {
				return memoryItemJSON{ID: s.ItemID, WorkspaceID: strings.TrimPrefix(e.StreamID, memory.StreamType+"-"), Type: s.Type,
					Content: s.Content, Metadata: objectOrEmpty(s.Metadata), ExpiresAt: s.ExpiresAt,
					SourceMessageID: optional(s.SourceMessageID), CreatedAt: e.RecordedAt, UpdatedAt: e.RecordedAt}, true
			}
		}
	}
	return memoryItemJSON{}, false
}

func (s *Server) listExperts(c echo.Context) error {
	if err := access.CheckRead(actor(c)); err != nil {
		return err
	}
	items := s.app.Experts
	if items == nil {
		items = []ExpertInfo{}
	}
	out := listJSON[ExpertInfo]{Items: items}
	return conditional(c, listETag("", out, jsonKey[ExpertInfo]), out)
}

func (s *Server) getTask(c echo.Context) error {
	pos, err := minPosition(c)
	if err != nil {
		return err
	}
	t, err := s.app.Queries.GetTask.Handle(c.Request().Context(), actor(c), c.Param("id"), pos)
	if err != nil {
		return err
	}
	return conditional(c, versionETag(t.Version), taskFromQuery(t))
}

type cancelTaskRequest struct {
	Reason string `json:"reason"`
}

func (s *Server) cancelTask(c echo.Context) error {
	var req cancelTaskRequest
	if c.Request().ContentLength != 0 {
		if err := decodeBody(c, &req); err != nil {
			return err
		}
	}
	ctx := c.Request().Context()
	res, err := s.app.Commands.CancelTask.Handle(ctx, commands.CancelTask{Actor: actor(c), TaskID: c.Param("id"), Reason: req.Reason})
	if err != nil {
		return err
	}
	positionHeaders(c, res.Version, res.Position)
	if s.app.Projections.WaitFor(ctx, projections.TasksProjector, res.Position) == nil {
		if t, err := s.app.Queries.GetTask.Handle(ctx, actor(c), res.Task.ID, 0); err == nil {
			return c.JSON(http.StatusOK, taskFromQuery(t))
		}
	}
	st := res.Task
	out := taskJSON{ID: st.ID, WorkspaceID: st.WorkspaceID, ConversationID: st.ConversationID, MessageID: st.MessageID,
		RequestedBy: st.RequestedBy, Expert: st.Expert, Input: st.Input, Priority: st.Priority, Status: st.Status,
		Progress: st.Progress, Attempts: st.Attempts, Reason: optional(st.Reason), Version: res.Version}
	if n := len(res.Events); n > 0 {
		out.UpdatedAt = res.Events[n-1].RecordedAt
		out.FinishedAt = &out.UpdatedAt
	}
	return c.JSON(http.StatusOK, out)
}

type storeMemoryRequest struct {
	Type      string          `json:"type"`
	Content   string          `json:"content"`
	Metadata  json.RawMessage `json:"metadata"`
	ExpiresAt *string         `json:"expires_at"`
}

func (s *Server) storeMemoryItem(c echo.Context) error {
	var req storeMemoryRequest
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	if err := objectField("metadata", nullAsAbsent(req.Metadata)); err != nil {
		return err
	}
	var expiresAt *time.Time
	if req.ExpiresAt != nil {
		t, err := time.Parse(time.RFC3339Nano, *req.ExpiresAt)
		if err != nil {
			return invalid(domain.FieldError{Field: "expires_at", Message: "must be an RFC 3339 time, e.g. 2030-01-01T12:00:00Z"})
		}
		expiresAt = &t
	}
	locate := func(it memoryItemJSON) string { return "/v1/workspaces/" + it.WorkspaceID + "/memory/" + it.ID }
	return create(s, c, memoryItemFromEvents, locate, func(ctx context.Context) (commands.Written, error) {
		res, err := s.app.Commands.StoreMemoryItem.Handle(ctx, commands.StoreMemoryItem{Actor: actor(c), WorkspaceID: c.Param("id"),
			Type: req.Type, Content: req.Content, Metadata: nullAsAbsent(req.Metadata), ExpiresAt: expiresAt})
		return res.Written, err
	})
}

func (s *Server) deleteMemoryItem(c echo.Context) error {
	res, err := s.app.Commands.DeleteMemoryItem.Handle(c.Request().Context(), commands.DeleteMemoryItem{Actor: actor(c),
		WorkspaceID: c.Param("id"), ItemID: c.Param("item_id")})
	if err != nil {
		return err
	}
	positionHeaders(c, 0, res.Position)
	return c.NoContent(http.StatusNoContent)
}

// memorySearch reads the filters of GET /v1/workspaces/{id}/memory: type
// (repeated or comma-separated), q, match (all or any), from, to,
// metadata.<key> (or metadata[<key>]), include_expired, limit and cursor.
// Every bad parameter is reported at once.
func memorySearch(c echo.Context) (queries.MemorySearch, error) {
	var (
		s      queries.MemorySearch
		fields []domain.FieldError
	)
	params := c.QueryParams()
	for _, v := range params["type"] {
		for t := range strings.SplitSeq(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				s.Types = append(s.Types, t)
			}
		}
	}
	s.Words = c.QueryParam("q")
	switch c.QueryParam("match") {
	case "", "all":
	case "any":
		s.AnyWord = true
	default:
		fields = append(fields, domain.FieldError{Field: "match", Message: "must be all or any"})
	}
	for _, name := range []string{"from", "to"} {
		raw := c.QueryParam(name)
		if raw == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, raw)
		if err != nil {
			fields = append(fields, domain.FieldError{Field: name, Message: "must be an RFC 3339 time, e.g. 2030-01-01T12:00:00Z"})
			continue
		}
		if name == "from" {
			s.From = t
		} else {
			s.To = t
		}
	}
	for key, values := range params {
		k, ok := metadataKey(key)
		if !ok || len(values) == 0 {
			continue
		}
		if s.Metadata == nil {
			s.Metadata = map[string]string{}
		}
		s.Metadata[k] = values[0]
	}
	switch c.QueryParam("include_expired") {
	case "", "false":
	case "true":
		s.IncludeExpired = true
	default:
		fields = append(fields, domain.FieldError{Field: "include_expired", Message: "must be true or false"})
	}
	page, err := pageRequest(c)
	if de := (*domain.Error)(nil); errors.As(err, &de) {
		fields = append(fields, de.Fields...)
	} else if err != nil {
		return s, err
	}
	s.Page = page
	if len(fields) > 0 {
		return s, invalid(fields...)
	}
	return s, nil
}

// metadataKey reads a metadata filter's parameter name: metadata.<key> or
// metadata[<key>] (OpenAPI's deepObject style).
func metadataKey(param string) (string, bool) {
	if k, ok := strings.CutPrefix(param, "metadata."); ok {
		return k, true
	}
	if k, ok := strings.CutPrefix(param, "metadata["); ok && strings.HasSuffix(k, "]") {
		return strings.TrimSuffix(k, "]"), true
	}
	return "", false
}

func (s *Server) searchMemory(c echo.Context) error {
	pos, err := minPosition(c)
	if err != nil {
		return err
	}
	search, err := memorySearch(c)
	if err != nil {
		return err
	}
	a := actor(c)
	res, err := s.app.Queries.SearchMemory.Handle(c.Request().Context(), a, c.Param("id"), search, pos)
	if err != nil {
		return err
	}
	out := listOf(res, memoryItemFromQuery)
	return conditional(c, listETag(a.UserID, out, jsonKey[memoryItemJSON]), out)
}

func (s *Server) memoryContext(c echo.Context) error {
	pos, err := minPosition(c)
	if err != nil {
		return err
	}
	a := actor(c)
	mc, err := s.app.Queries.MemoryContext.Handle(c.Request().Context(), a, c.Param("id"), pos)
	if err != nil {
		return err
	}
	out := memoryContextJSON{Summary: mc.Summary, Recent: make([]memoryItemJSON, len(mc.Recent)), Entities: map[string]memoryItemJSON{}}
	for i, it := range mc.Recent {
		out.Recent[i] = memoryItemFromQuery(it)
	}
	for name, it := range mc.Entities {
		out.Entities[name] = memoryItemFromQuery(it)
	}
	return conditional(c, newValidator(a.UserID).addJSON(out).etag(), out)
}
