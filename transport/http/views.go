package http

import (
	"encoding/json"
	"time"

	"github.com/engramhq/engram/cognition"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/queries"
)

// The JSON shapes of the API. A resource read from a read model is shown
// as its query returns it (queries.Conversation, queries.Message, …: one
// struct, with its columns and its JSON, per resource); a command answers
// with the resource as a query shows it (see app.Application's ...After
// methods and app's ...Of functions), so that the answers of commands and
// queries are the same. The shapes below are those of the few resources
// that no read-model row shows as they are.

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

// pageOf is the one page of a list that is never long.
func pageOf[T any](items []T) queries.Page[T] {
	if items == nil {
		items = []T{}
	}
	return queries.Page[T]{Items: items}
}

// listOf is p with each item shown as conv shows it.
func listOf[S, T any](p queries.Page[S], conv func(S) T) queries.Page[T] {
	out := queries.Page[T]{Items: make([]T, len(p.Items)), NextCursor: p.NextCursor}
	for i, s := range p.Items {
		out.Items[i] = conv(s)
	}
	return out
}

func renderMemoryItem(it cognition.Item) memoryItemJSON {
	return memoryItemJSON{ID: it.ID, WorkspaceID: it.WorkspaceID, Type: it.Type, Content: it.Content, Metadata: domain.ObjectOrEmpty(it.Metadata),
		ExpiresAt: it.ExpiresAt, SourceMessageID: optional(it.SourceMessageID), CreatedAt: it.CreatedAt, UpdatedAt: it.UpdatedAt}
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
