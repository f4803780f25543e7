// Package postgres holds the cognition read sides kept in PostgreSQL: the
// workspace memory (the memory_items table), the open tasks workers look for
// (tasks) and the recent messages of a conversation (messages). The
// projections package writes those tables from the event log; this package
// only reads them.
package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/engramhq/engram/cognition"
)

// Memory is the workspace memory read model, searched with SQL.
type Memory struct {
	db *sqlx.DB
}

var _ cognition.Memory = (*Memory)(nil)

// NewMemory returns the memory read model in db.
func NewMemory(db *sqlx.DB) *Memory { return &Memory{db: db} }

type itemRow struct {
	ID              string          `db:"id"`
	WorkspaceID     string          `db:"workspace_id"`
	Type            string          `db:"type"`
	Content         string          `db:"content"`
	Metadata        json.RawMessage `db:"metadata"`
	ExpiresAt       *time.Time      `db:"expires_at"`
	SourceMessageID sql.NullString  `db:"source_message_id"`
	CreatedAt       time.Time       `db:"created_at"`
	UpdatedAt       time.Time       `db:"updated_at"`
}

// Search implements cognition.Memory. Words are matched with PostgreSQL's
// full-text search (the words column, a GIN-indexed tsvector of the
// content in the 'simple' configuration); the other filters use the
// (workspace_id, created_at, id) index order.
func (m *Memory) Search(ctx context.Context, workspaceID string, q cognition.Query) ([]cognition.Item, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	q = q.Normalized()
	var (
		where = []string{"workspace_id = $1", "deleted_at IS NULL"}
		args  = []any{workspaceID}
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if len(q.Types) > 0 {
		where = append(where, "type = ANY("+arg(pq.Array(q.Types))+")")
	}
	if words := cognition.Words(q.Words); len(words) > 0 {
		op := " & "
		if q.AnyWord {
			op = " | "
		}
		// Words are runs of letters and digits: no tsquery operator can
		// hide in them.
		where = append(where, "words @@ to_tsquery('simple', "+arg(strings.Join(words, op))+")")
	}
	if !q.From.IsZero() {
		where = append(where, "created_at >= "+arg(q.From))
	}
	if !q.To.IsZero() {
		where = append(where, "created_at < "+arg(q.To))
	}
	for k, v := range q.Metadata {
		where = append(where, "metadata ->> "+arg(k)+" = "+arg(v))
	}
	if q.Before != nil {
		where = append(where, "(created_at, id) < ("+arg(q.Before.CreatedAt)+", "+arg(q.Before.ID)+")")
	}
	if !q.IncludeExpired {
		where = append(where, "(expires_at IS NULL OR expires_at > "+arg(q.Now)+")")
	}
	query := `SELECT id, workspace_id, type, content, metadata, expires_at, source_message_id, created_at, updated_at
		FROM memory_items WHERE ` + strings.Join(where, " AND ") + `
		ORDER BY created_at DESC, id DESC LIMIT ` + arg(q.Limit)
	var rows []itemRow
	if err := m.db.SelectContext(ctx, &rows, query, args...); err != nil {
		return nil, fmt.Errorf("search memory of %s: %w", workspaceID, err)
	}
	out := make([]cognition.Item, len(rows))
	for i, r := range rows {
		out[i] = cognition.Item{ID: r.ID, WorkspaceID: r.WorkspaceID, Type: r.Type, Content: r.Content, Metadata: r.Metadata,
			ExpiresAt: utcPtr(r.ExpiresAt), SourceMessageID: r.SourceMessageID.String, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
	}
	return out, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
