package queries

import (
	"context"
	"strconv"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/projections"
)

// ListMessagesHandler lists a conversation's messages.
type ListMessagesHandler struct{ r *reader }

// Handle returns up to page.Limit messages after the position given as the
// cursor (a message's position; the next cursor is the last one's), oldest
// first.
func (h *ListMessagesHandler) Handle(ctx context.Context, actor access.Actor, conversationID string, page PageRequest, minPosition int64) (Page[Message], error) {
	if !isUUID(conversationID) {
		return Page[Message]{}, notFound("conversation")
	}
	after, err := ParsePosition(page.Cursor)
	if err != nil {
		return Page[Message]{}, &domain.Error{Code: domain.CodeInvalid, Message: "validation failed",
			Fields: []domain.FieldError{{Field: "after", Message: "must be a message position (a non-negative integer)"}}}
	}
	limit := page.limit()
	c := h.r.lookup(ctx, minPosition)
	key := messagesKey(conversationID, after, limit)
	if p, ok := get[Page[Message]](c, key); ok {
		if _, err := h.r.conversation(ctx, c, actor, conversationID); err != nil {
			return Page[Message]{}, err
		}
		return p, nil
	}
	// Redis answers what memory cannot; a current cache is filled from SQL
	// instead, so that the next reads are answered from memory.
	if !c.current {
		if p, ok := h.r.hotMessages(ctx, actor, conversationID, after, limit, minPosition); ok {
			return p, nil
		}
	}
	// The answer depends on the conversation and on the caller's membership.
	if _, err := h.r.conversation(ctx, c, actor, conversationID); err != nil {
		return Page[Message]{}, err
	}
	if err := c.readModels(ctx, projections.ConversationsProjector, projections.WorkspacesProjector); err != nil {
		return Page[Message]{}, err
	}
	items := []Message{}
	err = h.r.db.SelectContext(ctx, &items, `SELECT id, conversation_id, role, author_id, content, metadata, created_at, position
		FROM messages WHERE conversation_id = $1 AND position > $2 ORDER BY position LIMIT $3`, conversationID, after, limit+1)
	if err != nil {
		return Page[Message]{}, err
	}
	p := Page[Message]{Items: items}
	if len(items) > limit {
		p.Items = items[:limit]
		p.NextCursor = strconv.FormatInt(p.Items[limit-1].Position, 10)
	}
	c.put(key, p, messagesSize(p.Items), conversation.StreamID(conversationID))
	return p, nil
}

// ParsePosition parses a global position ("" is 0).
func ParsePosition(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, strconv.ErrSyntax
	}
	return n, nil
}
