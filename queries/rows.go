package queries

import (
	"encoding/json"
	"time"

	"github.com/lib/pq"
)

// The resources the queries return, one struct each: its columns (db) and
// the JSON the API shows of it, as openapi.yaml describes it. Commands answer
// with the same types (see package app), so a resource looks the same
// whether a query read it or a command wrote it.

// User is a user as the API shows it (never with secrets).
type User struct {
	ID          string         `db:"id" json:"id"`
	Email       string         `db:"email" json:"email"`
	DisplayName string         `db:"display_name" json:"display_name"`
	Roles       pq.StringArray `db:"roles" json:"roles"`
	CreatedAt   time.Time      `db:"created_at" json:"created_at"`
	UpdatedAt   time.Time      `db:"updated_at" json:"-"`
	Version     int            `db:"version" json:"-"`
}

// Workspace is a workspace as its members see it.
type Workspace struct {
	ID          string `db:"id" json:"id"`
	Name        string `db:"name" json:"name"`
	Description string `db:"description" json:"description"`
	Config      Object `db:"config" json:"config"`
	OwnerID     string `db:"owner_id" json:"owner_id"`
	// Role is the caller's role in the workspace ("" for admins and auditors
	// who are not members).
	Role      string    `db:"role" json:"role,omitempty"`
	Archived  bool      `db:"archived" json:"archived"`
	CreatedAt time.Time `db:"created_at" json:"created_at"`
	UpdatedAt time.Time `db:"updated_at" json:"updated_at"`
	Version   int       `db:"version" json:"version"`
}

// Member is one member of a workspace.
type Member struct {
	WorkspaceID string    `db:"workspace_id" json:"workspace_id"`
	UserID      string    `db:"user_id" json:"user_id"`
	Role        string    `db:"role" json:"role"`
	AddedAt     time.Time `db:"added_at" json:"added_at"`
	Email       string    `db:"email" json:"email,omitempty"`
	DisplayName string    `db:"display_name" json:"display_name,omitempty"`
}

// Conversation is a conversation as the members of its workspace see it.
type Conversation struct {
	ID             string    `db:"id" json:"id"`
	WorkspaceID    string    `db:"workspace_id" json:"workspace_id"`
	Title          string    `db:"title" json:"title"`
	Modality       string    `db:"modality" json:"modality"`
	Metadata       Object    `db:"metadata" json:"metadata"`
	CreatedBy      string    `db:"created_by" json:"created_by"`
	Archived       bool      `db:"archived" json:"archived"`
	MessageCount   int       `db:"message_count" json:"message_count"`
	CreatedAt      time.Time `db:"created_at" json:"created_at"`
	UpdatedAt      time.Time `db:"updated_at" json:"updated_at"`
	LastActivityAt time.Time `db:"last_activity_at" json:"last_activity_at"`
	Version        int       `db:"version" json:"version"`
}

// Message is one message of a conversation.
type Message struct {
	ID             string    `db:"id" json:"id"`
	ConversationID string    `db:"conversation_id" json:"conversation_id"`
	Role           string    `db:"role" json:"role"`
	AuthorID       string    `db:"author_id" json:"author_id"`
	Content        string    `db:"content" json:"content"`
	Metadata       Object    `db:"metadata" json:"metadata"`
	CreatedAt      time.Time `db:"created_at" json:"created_at"`
	Position       int64     `db:"position" json:"position"`
}

// Session is one login session of a user.
type Session struct {
	ID              string     `db:"id" json:"id"`
	UserAgent       string     `db:"user_agent" json:"user_agent"`
	IP              string     `db:"ip" json:"ip"`
	CreatedAt       time.Time  `db:"created_at" json:"created_at"`
	LastRefreshedAt *time.Time `db:"last_refreshed_at" json:"last_refreshed_at"`
	ExpiresAt       time.Time  `db:"expires_at" json:"expires_at"`
	RevokedAt       *time.Time `db:"revoked_at" json:"revoked_at"`
	RevokedReason   *string    `db:"revoked_reason" json:"revoked_reason,omitempty"`
	// Current tells the session the caller is signed in with.
	Current bool `db:"-" json:"current"`
}

// Task is a task handed to a domain expert, as the members of its
// workspace see it.
type Task struct {
	ID             string     `db:"id" json:"id"`
	WorkspaceID    string     `db:"workspace_id" json:"workspace_id"`
	ConversationID string     `db:"conversation_id" json:"conversation_id"`
	MessageID      string     `db:"message_id" json:"message_id"`
	RequestedBy    string     `db:"requested_by" json:"requested_by"`
	Expert         string     `db:"expert" json:"expert"`
	Input          string     `db:"input" json:"input"`
	Priority       int        `db:"priority" json:"priority"`
	Status         string     `db:"status" json:"status"`
	Progress       int        `db:"progress" json:"progress"`
	Note           string     `db:"note" json:"note"`
	Attempts       int        `db:"attempts" json:"attempts"`
	Output         *string    `db:"output" json:"output"`
	ReplyMessageID *string    `db:"reply_message_id" json:"reply_message_id"`
	Reason         *string    `db:"reason" json:"reason"`
	SubmittedAt    time.Time  `db:"submitted_at" json:"submitted_at"`
	StartedAt      *time.Time `db:"started_at" json:"started_at"`
	FinishedAt     *time.Time `db:"finished_at" json:"finished_at"`
	UpdatedAt      time.Time  `db:"updated_at" json:"updated_at"`
	Version        int        `db:"version" json:"version"`
}

// APIKey is an API key as its owner sees it: never the key itself, nor its
// hash, only the short prefix that identifies it.
type APIKey struct {
	ID        string         `db:"id" json:"id"`
	Name      string         `db:"name" json:"name"`
	Prefix    string         `db:"prefix" json:"prefix"`
	Scopes    pq.StringArray `db:"scopes" json:"scopes"`
	CreatedAt time.Time      `db:"created_at" json:"created_at"`
	ExpiresAt *time.Time     `db:"expires_at" json:"expires_at"`
	RevokedAt *time.Time     `db:"revoked_at" json:"revoked_at"`
}

// Page is one page of a list.
type Page[T any] struct {
	Items []T `json:"items"`
	// NextCursor continues the list; empty on the last page.
	NextCursor string `json:"next_cursor"`
}

// Object is a JSON object of a read model (a conversation's or a message's
// metadata, a workspace's config), shown as it is stored; an empty one is
// shown as {}.
type Object json.RawMessage

// MarshalJSON implements json.Marshaler.
func (o Object) MarshalJSON() ([]byte, error) {
	if len(o) == 0 {
		return []byte(`{}`), nil
	}
	return json.RawMessage(o).MarshalJSON()
}
