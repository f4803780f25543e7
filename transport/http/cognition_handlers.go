package http

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/app"
	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/queries"
	"github.com/engramhq/engram/transport/request"
)

// expertJSON is a domain expert this instance runs (GET /v1/experts).
type expertJSON struct {
	Name         string   `json:"name"`
	Capabilities []string `json:"capabilities"`
}

func (s *Server) listExperts(c echo.Context) error {
	if err := access.CheckRead(actor(c)); err != nil {
		return err
	}
	out := listOf(pageOf(s.app.Experts), func(e app.Expert) expertJSON { return expertJSON(e) })
	return conditional(c, listETag("", out, jsonKey[expertJSON]), out)
}

func (s *Server) getTask(c echo.Context) error {
	return getVersioned(c, s.app.Queries.GetTask.Handle, func(t queries.Task) int { return t.Version })
}

type cancelTaskRequest struct {
	Reason string `json:"reason"`
}

func (s *Server) cancelTask(c echo.Context) error {
	var req cancelTaskRequest
	if c.Request().ContentLength != 0 {
		if err := request.DecodeBody(c, &req); err != nil {
			return err
		}
	}
	ctx := c.Request().Context()
	res, err := s.app.Commands.CancelTask.Handle(ctx, commands.CancelTask{Actor: actor(c), TaskID: c.Param("id"), Reason: req.Reason})
	if err != nil {
		return err
	}
	return answerChange(c, res, s.app.TaskAfter)
}

type storeMemoryRequest struct {
	Type      string          `json:"type"`
	Content   string          `json:"content"`
	Metadata  json.RawMessage `json:"metadata"`
	ExpiresAt *string         `json:"expires_at"`
}

func (s *Server) storeMemoryItem(c echo.Context) error {
	var req storeMemoryRequest
	if err := decodeWithObject(c, &req, "metadata", &req.Metadata); err != nil {
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
	return create(s, c, func(ctx context.Context, idem *commands.Idempotency[commands.StoredItemResult]) (commands.StoredItemResult, error) {
		return s.app.Commands.StoreMemoryItem.Handle(ctx, commands.StoreMemoryItem{Actor: actor(c), WorkspaceID: c.Param("id"),
			Type: req.Type, Content: req.Content, Metadata: nullAsAbsent(req.Metadata), ExpiresAt: expiresAt, Idempotency: idem})
	}, func(r commands.StoredItemResult) answer {
		return created(renderMemoryItem(app.MemoryItemOf(r)), r.Written, "/v1/workspaces/"+r.WorkspaceID+"/memory/"+r.Item.ItemID)
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
	s.AnyWord = switchParam(c, "match", "all", "any", &fields)
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
	s.IncludeExpired = switchParam(c, "include_expired", "false", "true", &fields)
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

// switchParam reads a query parameter that takes one of two values: false
// when it is absent or off, true when it is on; any other value is added to
// fields.
func switchParam(c echo.Context, name, off, on string, fields *[]domain.FieldError) bool {
	switch c.QueryParam(name) {
	case "", off:
		return false
	case on:
		return true
	}
	*fields = append(*fields, domain.FieldError{Field: name, Message: "must be " + off + " or " + on})
	return false
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
	return answerPageAs(c, memorySearch, inParent(c, s.app.Queries.SearchMemory.Handle), renderMemoryItem, jsonKey[memoryItemJSON])
}

func (s *Server) memoryContext(c echo.Context) error {
	mc, err := readByID(c, s.app.Queries.MemoryContext.Handle)
	if err != nil {
		return err
	}
	out := memoryContextJSON{Summary: mc.Summary, Recent: make([]memoryItemJSON, len(mc.Recent)), Entities: map[string]memoryItemJSON{}}
	for i, it := range mc.Recent {
		out.Recent[i] = renderMemoryItem(it)
	}
	for name, it := range mc.Entities {
		out.Entities[name] = renderMemoryItem(it)
	}
	return conditional(c, newValidator(actor(c).UserID).addJSON(out).etag(), out)
}
