package http

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/app"
	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/queries"
)

type createConversationRequest struct {
	Title    string          `json:"title"`
	Modality string          `json:"modality"`
	Metadata json.RawMessage `json:"metadata"`
}

func (s *Server) createConversation(c echo.Context) error {
	var req createConversationRequest
	if err := decodeWithObject(c, &req, "metadata", &req.Metadata); err != nil {
		return err
	}
	return create(s, c, func(ctx context.Context, idem *commands.Idempotency[commands.ConversationResult]) (commands.ConversationResult, error) {
		return s.app.Commands.CreateConversation.Handle(ctx, commands.CreateConversation{
			Actor: actor(c), WorkspaceID: c.Param("id"), Title: req.Title, Modality: req.Modality, Metadata: nullAsAbsent(req.Metadata),
			Idempotency: idem,
		})
	}, func(r commands.ConversationResult) answer {
		return created(app.ConversationOf(r), r.Written, "/v1/conversations/"+r.Conversation.ID)
	})
}

func (s *Server) listConversations(c echo.Context) error {
	return answerPage(c, pageRequest, inParent(c, s.app.Queries.ListConversations.Handle), func(conv queries.Conversation) string {
		return conv.ID + "@" + strconv.Itoa(conv.Version)
	})
}

func (s *Server) getConversation(c echo.Context) error {
	return getVersioned(c, s.app.Queries.GetConversation.Handle, func(conv queries.Conversation) int { return conv.Version })
}

type updateConversationRequest struct {
	Title    *string         `json:"title"`
	Metadata json.RawMessage `json:"metadata"`
}

func (s *Server) updateConversation(c echo.Context) error {
	var req updateConversationRequest
	if err := decodeWithObject(c, &req, "metadata", &req.Metadata); err != nil {
		return err
	}
	return changeIfMatch(c, func(ctx context.Context, match *int) (commands.ConversationResult, error) {
		return s.app.Commands.UpdateConversation.Handle(ctx, commands.UpdateConversation{
			Actor: actor(c), ConversationID: c.Param("id"), Title: req.Title, MetadataPatch: nullAsAbsent(req.Metadata), IfMatch: match,
		})
	}, s.app.ConversationAfter)
}

func (s *Server) archiveConversation(c echo.Context) error {
	return changeIfMatch(c, func(ctx context.Context, match *int) (commands.ConversationResult, error) {
		return s.app.Commands.ArchiveConversation.Handle(ctx, commands.ArchiveConversation{
			Actor: actor(c), ConversationID: c.Param("id"), IfMatch: match,
		})
	}, s.app.ConversationAfter)
}

type postMessageRequest struct {
	Content  string          `json:"content"`
	Role     string          `json:"role"`
	Metadata json.RawMessage `json:"metadata"`
}

func (s *Server) postMessage(c echo.Context) error {
	var req postMessageRequest
	if err := decodeWithObject(c, &req, "metadata", &req.Metadata); err != nil {
		return err
	}
	return create(s, c, func(ctx context.Context, idem *commands.Idempotency[commands.MessageResult]) (commands.MessageResult, error) {
		return s.app.Commands.PostMessage.Handle(ctx, commands.PostMessage{
			Actor: actor(c), ConversationID: c.Param("id"), Content: req.Content, Role: req.Role, Metadata: nullAsAbsent(req.Metadata),
			Idempotency: idem,
		})
	}, func(r commands.MessageResult) answer {
		return created(app.MessageOf(r), r.Written, "/v1/conversations/"+r.ConversationID+"/messages")
	})
}

func (s *Server) listMessages(c echo.Context) error {
	// A message never changes once posted: its position identifies it.
	return answerPage(c, pageRequest, inParent(c, s.app.Queries.ListMessages.Handle), func(m queries.Message) string {
		return strconv.FormatInt(m.Position, 10)
	})
}
