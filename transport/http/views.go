package http

import (
	"encoding/json"
	"time"

	"github.com/engramhq/engram/cognition"
	"github.com/engramhq/engram/queries"
)

// The JSON shapes of the API, and one renderer per resource. A command
// answers with the resource as a query shows it (see app.Application's
// ...After methods and app's ...Of functions), so that the answers of
// commands and queries are rendered the same way.

type userJSON struct {
	ID          string    `json:"id"`
	Email       string    `json:"email"`
	DisplayName string    `json:"display_name"`
	Roles       []string  `json:"roles"`
	CreatedAt   time.Time `json:"created_at"`
}

type workspaceJSON struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Config      json.RawMessage `json:"config"`
	OwnerID     string          `json:"owner_id"`
	Role        string          `json:"role,omitempty"`
	Archived    bool            `json:"archived"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
	Version     int             `json:"version"`
}

type memberJSON struct {
	WorkspaceID string    `json:"workspace_id"`
	UserID      string    `json:"user_id"`
	Role        string    `json:"role"`
	AddedAt     time.Time `json:"added_at"`
	Email       string    `json:"email,omitempty"`
	DisplayName string    `json:"display_name,omitempty"`
}

type conversationJSON struct {
	ID             string          `json:"id"`
	WorkspaceID    string          `json:"workspace_id"`
	Title          string          `json:"title"`
	Modality       string          `json:"modality"`
	Metadata       json.RawMessage `json:"metadata"`
	CreatedBy      string          `json:"created_by"`
	Archived       bool            `json:"archived"`
	MessageCount   int             `json:"message_count"`
	CreatedAt      time.Time       `json:"created_at"`
	UpdatedAt      time.Time       `json:"updated_at"`
	LastActivityAt time.Time       `json:"last_activity_at"`
	Version        int             `json:"version"`
}

type messageJSON struct {
	ID             string          `json:"id"`
	ConversationID string          `json:"conversation_id"`
	Role           string          `json:"role"`
	AuthorID       string          `json:"author_id"`
	Content        string          `json:"content"`
	Metadata       json.RawMessage `json:"metadata"`
	CreatedAt      time.Time       `json:"created_at"`
	Position       int64           `json:"position"`
}

type sessionJSON struct {
	ID              string     `json:"id"`
	UserAgent       string     `json:"user_agent"`
	IP              string     `json:"ip"`
	CreatedAt       time.Time  `json:"created_at"`
	LastRefreshedAt *time.Time `json:"last_refreshed_at"`
	ExpiresAt       time.Time  `json:"expires_at"`
	RevokedAt       *time.Time `json:"revoked_at"`
	RevokedReason   *string    `json:"revoked_reason,omitempty"`
	Current         bool       `json:"current"`
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

type listJSON[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func listOf[S, T any](p queries.Page[S], conv func(S) T) listJSON[T] {
	out := listJSON[T]{Items: make([]T, len(p.Items)), NextCursor: p.NextCursor}
	for i, s := range p.Items {
		out.Items[i] = conv(s)
	}
	return out
}

func objectOrEmpty(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage(`{}`)
	}
	return raw
}

func renderUser(u queries.User) userJSON {
	return userJSON{ID: u.ID, Email: u.Email, DisplayName: u.DisplayName, Roles: u.Roles, CreatedAt: u.CreatedAt}
}

func renderWorkspace(w queries.Workspace) workspaceJSON {
	return workspaceJSON{ID: w.ID, Name: w.Name, Description: w.Description, Config: objectOrEmpty(w.Config), OwnerID: w.OwnerID,
		Role: w.Role, Archived: w.Archived, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt, Version: w.Version}
}

func renderMember(m queries.Member) memberJSON {
	return memberJSON(m)
}

func renderConversation(c queries.Conversation) conversationJSON {
	return conversationJSON{ID: c.ID, WorkspaceID: c.WorkspaceID, Title: c.Title, Modality: c.Modality, Metadata: objectOrEmpty(c.Metadata),
		CreatedBy: c.CreatedBy, Archived: c.Archived, MessageCount: c.MessageCount, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
		LastActivityAt: c.LastActivityAt, Version: c.Version}
}

func renderMessage(m queries.Message) messageJSON {
	return messageJSON{ID: m.ID, ConversationID: m.ConversationID, Role: m.Role, AuthorID: m.AuthorID, Content: m.Content,
		Metadata: objectOrEmpty(m.Metadata), CreatedAt: m.CreatedAt, Position: m.Position}
}

func renderSession(s queries.Session, current string) sessionJSON {
	return sessionJSON{ID: s.ID, UserAgent: s.UserAgent, IP: s.IP, CreatedAt: s.CreatedAt, LastRefreshedAt: s.LastRefreshedAt,
		ExpiresAt: s.ExpiresAt, RevokedAt: s.RevokedAt, RevokedReason: s.RevokedReason, Current: s.ID == current}
}

func renderTask(t queries.Task) taskJSON {
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

func renderMemoryItem(it cognition.Item) memoryItemJSON {
	return memoryItemJSON{ID: it.ID, WorkspaceID: it.WorkspaceID, Type: it.Type, Content: it.Content, Metadata: objectOrEmpty(it.Metadata),
		ExpiresAt: it.ExpiresAt, SourceMessageID: optional(it.SourceMessageID), CreatedAt: it.CreatedAt, UpdatedAt: it.UpdatedAt}
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
