package queries

import (
	"context"

	"github.com/google/uuid"

	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/projections"
)

const conversationColumns = `id, workspace_id, created_by, title, modality, metadata, archived, message_count,
	created_at, updated_at, last_activity_at, version`

// ListConversationsHandler lists a workspace's conversations.
type ListConversationsHandler struct{ r *reader }

// Handle returns one page, most recently active first.
func (h *ListConversationsHandler) Handle(ctx context.Context, actor access.Actor, workspaceID string, page PageRequest, minPosition int64) (Page[Conversation], error) {
	if !isUUID(workspaceID) {
		return Page[Conversation]{}, notFound("workspace")
	}
	cur, err := decodeCursor(page.Cursor)
	if err != nil {
		return Page[Conversation]{}, err
	}
	if err := h.r.wait(ctx, projections.ConversationsProjector, minPosition, projections.WorkspacesProjector); err != nil {
		return Page[Conversation]{}, err
	}
	if _, err := h.r.authorize(ctx, actor, access.ReadWorkspace, workspaceID); err != nil {
		return Page[Conversation]{}, err
	}
	limit := page.limit()
	return selectPage(ctx, h.r, cur, limit,
		`SELECT `+conversationColumns+` FROM conversations
			WHERE workspace_id = $1 ORDER BY last_activity_at DESC, id DESC LIMIT $2`,
		`SELECT `+conversationColumns+` FROM conversations
			WHERE workspace_id = $1 AND (last_activity_at, id) < ($3, $4)
			ORDER BY last_activity_at DESC, id DESC LIMIT $2`,
		workspaceID, func(c Conversation) timeCursor { return timeCursor{T: c.LastActivityAt, ID: c.ID} })
}

// GetConversationHandler returns one conversation.
type GetConversationHandler struct{ r *reader }

// Handle returns the conversation, or not found when the caller may not see it.
func (h *GetConversationHandler) Handle(ctx context.Context, actor access.Actor, id string, minPosition int64) (Conversation, error) {
	if !isUUID(id) {
		return Conversation{}, notFound("conversation")
	}
	return h.r.conversation(ctx, h.r.lookup(ctx, minPosition), actor, id)
}

// conversation loads a conversation the actor may read, with the actor's
// membership of its workspace in the same query.
func (r *reader) conversation(ctx context.Context, c *cacheRead, actor access.Actor, id string) (Conversation, error) {
	if conv, ok := get[Conversation](c, conversationKey(id)); ok {
		if role, ok := c.role(conv.WorkspaceID, actor.UserID); ok {
			if err := access.CheckWorkspace(actor, access.ReadConversation, role); err != nil {
				return Conversation{}, err
			}
			return conv, nil
		}
	}
	if err := c.readModels(ctx, projections.ConversationsProjector, projections.WorkspacesProjector); err != nil {
		return Conversation{}, err
	}
	row, err := getRow[struct {
		Conversation
		MemberRole string `db:"member_role"`
	}](ctx, r, "conversation", `SELECT `+conversationColumns+`,
			coalesce((SELECT m.role FROM workspace_members m WHERE m.workspace_id = c.workspace_id AND m.user_id = $2), '') AS member_role
		FROM conversations c WHERE c.id = $1`, id, actor.UserID)
	if err != nil {
		return Conversation{}, err
	}
	c.putConversation(row.Conversation)
	c.putRole(row.WorkspaceID, actor.UserID, row.MemberRole)
	if err := access.CheckWorkspace(actor, access.ReadConversation, row.MemberRole); err != nil {
		return Conversation{}, err
	}
	return row.Conversation, nil
}

func isUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}
