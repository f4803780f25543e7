package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/jmoiron/sqlx"

	"github.com/engramhq/engram/cognition"
)

// Conversations reads conversation histories from the messages read model.
type Conversations struct {
	db *sqlx.DB
}

// NewConversations returns the conversations read model in db.
func NewConversations(db *sqlx.DB) *Conversations { return &Conversations{db: db} }

// Recent returns up to limit of the latest messages of a conversation posted
// before the message beforeID (all latest messages when it is not in the
// read model yet), oldest first.
func (c *Conversations) Recent(ctx context.Context, conversationID, beforeID string, limit int) ([]cognition.Turn, error) {
	var turns []cognition.Turn
	err := c.db.SelectContext(ctx, &turns, `SELECT id, role, author_id, content FROM messages
		WHERE conversation_id = $1
		  AND position < coalesce((SELECT position FROM messages WHERE id = $2), 9223372036854775807)
		  AND id <> $2
		ORDER BY position DESC LIMIT $3`, conversationID, beforeID, limit)
	if err != nil {
		return nil, fmt.Errorf("recent messages of %s: %w", conversationID, err)
	}
	slices.Reverse(turns)
	return turns, nil
}
