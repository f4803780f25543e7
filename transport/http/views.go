package http

import (
	"encoding/json"
	"time"

	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/domain/user"
	"github.com/engramhq/engram/domain/workspace"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/queries"
)

// The JSON shapes of the API. Command answers and query answers for the same
// resource use the same shape.

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

func userFromQuery(u queries.User) userJSON {
	return userJSON{ID: u.ID, Email: u.Email, DisplayName: u.DisplayName, Roles: u.Roles, CreatedAt: u.CreatedAt}
}

func workspaceFromQuery(w queries.Workspace) workspaceJSON {
	return workspaceJSON{ID: w.ID, Name: w.Name, Description: w.Description, Config: objectOrEmpty(w.Config), OwnerID: w.OwnerID,
		Role: w.Role, Archived: w.Archived, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt, Version: w.Version}
}

func memberFromQuery(m queries.Member) memberJSON {
	return memberJSON(m)
}

func conversationFromQuery(c queries.Conversation) conversationJSON {
	return conversationJSON{ID: c.ID, WorkspaceID: c.WorkspaceID, Title: c.Title, Modality: c.Modality, Metadata: objectOrEmpty(c.Metadata),
		CreatedBy: c.CreatedBy, Archived: c.Archived, MessageCount: c.MessageCount, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
		LastActivityAt: c.LastActivityAt, Version: c.Version}
}

func messageFromQuery(m queries.Message) messageJSON {
	return messageJSON{ID: m.ID, ConversationID: m.ConversationID, Role: m.Role, AuthorID: m.AuthorID, Content: m.Content,
		Metadata: objectOrEmpty(m.Metadata), CreatedAt: m.CreatedAt, Position: m.Position}
}

func sessionFromQuery(s queries.Session, current string) sessionJSON {
	return sessionJSON{ID: s.ID, UserAgent: s.UserAgent, IP: s.IP, CreatedAt: s.CreatedAt, LastRefreshedAt: s.LastRefreshedAt,
		ExpiresAt: s.ExpiresAt, RevokedAt: s.RevokedAt, RevokedReason: s.RevokedReason, Current: s.ID == current}
}

// The answers to creations are built from the events they wrote, so that an
// idempotent retry (whose answer is rendered inside the append transaction)
// gets exactly the same body.

func userFromEvents(events []eventstore.Event) (userJSON, bool) {
	for _, e := range events {
		if ev, err := user.Decode(e.Type, e.SchemaVersion, e.Data); err == nil {
			if r, ok := ev.(user.Registered); ok {
				return userJSON{ID: r.UserID, Email: r.Email, DisplayName: r.DisplayName, Roles: []string{r.Role}, CreatedAt: e.RecordedAt}, true
			}
		}
	}
	return userJSON{}, false
}

func workspaceFromEvents(events []eventstore.Event) (workspaceJSON, bool) {
	for _, e := range events {
		if ev, err := workspace.Decode(e.Type, e.SchemaVersion, e.Data); err == nil {
			if c, ok := ev.(workspace.Created); ok {
				return workspaceJSON{ID: c.WorkspaceID, Name: c.Name, Description: c.Description, Config: objectOrEmpty(c.Config),
					OwnerID: c.OwnerID, Role: "owner", CreatedAt: e.RecordedAt, UpdatedAt: e.RecordedAt, Version: e.StreamVersion}, true
			}
		}
	}
	return workspaceJSON{}, false
}

func memberFromEvents(workspaceID string, events []eventstore.Event) (memberJSON, bool) {
	for _, e := range events {
		if ev, err := workspace.Decode(e.Type, e.SchemaVersion, e.Data); err == nil {
			if m, ok := ev.(workspace.MemberAdded); ok {
				return memberJSON{WorkspaceID: workspaceID, UserID: m.UserID, Role: m.Role, AddedAt: e.RecordedAt}, true
			}
		}
	}
	return memberJSON{}, false
}

func conversationFromEvents(events []eventstore.Event) (conversationJSON, bool) {
	for _, e := range events {
		if ev, err := conversation.Decode(e.Type, e.SchemaVersion, e.Data); err == nil {
			if c, ok := ev.(conversation.Created); ok {
				return conversationJSON{ID: c.ConversationID, WorkspaceID: c.WorkspaceID, Title: c.Title, Modality: c.Modality,
					Metadata: objectOrEmpty(c.Metadata), CreatedBy: c.CreatedBy, CreatedAt: e.RecordedAt, UpdatedAt: e.RecordedAt,
					LastActivityAt: e.RecordedAt, Version: e.StreamVersion}, true
			}
		}
	}
	return conversationJSON{}, false
}

func messageFromEvents(events []eventstore.Event) (messageJSON, bool) {
	for _, e := range events {
		if ev, err := conversation.Decode(e.Type, e.SchemaVersion, e.Data); err == nil {
			if m, ok := ev.(conversation.MessagePosted); ok {
				return messageJSON{ID: m.MessageID, ConversationID: e.StreamID[len(conversation.StreamType)+1:], Role: m.Role,
					AuthorID: m.AuthorID, Content: m.Content, Metadata: objectOrEmpty(m.Metadata), CreatedAt: e.RecordedAt,
					Position: e.GlobalPosition}, true
			}
		}
	}
	return messageJSON{}, false
}

// workspaceFromCommand is the answer to a workspace change when the read
// model could not be awaited.
func workspaceFromCommand(w commands.WorkspaceState, written commands.Written, role string) workspaceJSON {
	out := workspaceJSON{ID: w.ID, Name: w.Name, Description: w.Description, Config: objectOrEmpty(w.Config), OwnerID: w.OwnerID,
		Role: role, Archived: w.Archived, Version: written.Version}
	if n := len(written.Events); n > 0 {
		out.UpdatedAt = written.Events[n-1].RecordedAt
	}
	return out
}
