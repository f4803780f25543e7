package catalog

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/apikey"
	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/domain/session"
	"github.com/engramhq/engram/domain/task"
	"github.com/engramhq/engram/domain/user"
	"github.com/engramhq/engram/domain/workspace"
)

// The states of the aggregates as they may be shown (the audit's states as
// they were). Each names every field it shows, so that a secret (password,
// token or key hash) cannot slip out. The commands answer with the states of
// users, conversations and tasks as they are shown here.

// UserState is a user as it may be shown.
type UserState struct {
	ID          string   `json:"id"`
	Email       string   `json:"email"`
	DisplayName string   `json:"display_name"`
	Roles       []string `json:"roles"`
}

// UserStateOf returns the state of u.
func UserStateOf(u *user.User) UserState {
	return UserState{ID: u.ID(), Email: u.Email(), DisplayName: u.DisplayName(), Roles: u.Roles()}
}

type sessionView struct {
	ID           string    `json:"id"`
	UserID       string    `json:"user_id"`
	UserAgent    string    `json:"user_agent"`
	IP           string    `json:"ip"`
	ExpiresAt    time.Time `json:"expires_at"`
	Revoked      bool      `json:"revoked"`
	RevokeReason string    `json:"revoke_reason,omitempty"`
}

func sessionState(s *session.Session) sessionView {
	return sessionView{ID: s.ID(), UserID: s.UserID(), UserAgent: s.UserAgent(), IP: s.IP(), ExpiresAt: s.ExpiresAt(),
		Revoked: s.Revoked(), RevokeReason: s.RevokeReason()}
}

type apiKeyView struct {
	ID        string     `json:"id"`
	UserID    string     `json:"user_id"`
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	Prefix    string     `json:"prefix"`
	ExpiresAt *time.Time `json:"expires_at"`
	Revoked   bool       `json:"revoked"`
}

func apiKeyState(k *apikey.APIKey) apiKeyView {
	return apiKeyView{ID: k.ID(), UserID: k.UserID(), Name: k.Name(), Scopes: k.Scopes(), Prefix: k.Prefix(),
		ExpiresAt: k.ExpiresAt(), Revoked: k.Revoked()}
}

type memberView struct {
	UserID string `json:"user_id"`
	Role   string `json:"role"`
}

type workspaceView struct {
	ID          string          `json:"id"`
	OwnerID     string          `json:"owner_id"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Config      json.RawMessage `json:"config"`
	Archived    bool            `json:"archived"`
	Members     []memberView    `json:"members"`
}

func workspaceState(w *workspace.Workspace) workspaceView {
	members := make([]memberView, 0, len(w.Members()))
	for id, role := range w.Members() {
		members = append(members, memberView{UserID: id, Role: role})
	}
	slices.SortFunc(members, func(a, b memberView) int { return strings.Compare(a.UserID, b.UserID) })
	return workspaceView{ID: w.ID(), OwnerID: w.OwnerID(), Name: w.Name(), Description: w.Description(),
		Config: domain.ObjectOrEmpty(w.Config()), Archived: w.Archived(), Members: members}
}

// ConversationState is a conversation as it may be shown.
type ConversationState struct {
	ID           string          `json:"id"`
	WorkspaceID  string          `json:"workspace_id"`
	CreatedBy    string          `json:"created_by"`
	Title        string          `json:"title"`
	Modality     string          `json:"modality"`
	Metadata     json.RawMessage `json:"metadata"`
	Archived     bool            `json:"archived"`
	MessageCount int             `json:"message_count"`
}

// ConversationStateOf returns the state of c.
func ConversationStateOf(c *conversation.Conversation) ConversationState {
	return ConversationState{ID: c.ID(), WorkspaceID: c.WorkspaceID(), CreatedBy: c.CreatedBy(), Title: c.Title(),
		Modality: c.Modality(), Metadata: domain.ObjectOrEmpty(c.Metadata()), Archived: c.Archived(), MessageCount: c.MessageCount()}
}

// TaskState is a task as it may be shown.
type TaskState struct {
	ID             string    `json:"id"`
	WorkspaceID    string    `json:"workspace_id"`
	ConversationID string    `json:"conversation_id"`
	MessageID      string    `json:"message_id"`
	RequestedBy    string    `json:"requested_by"`
	Expert         string    `json:"expert"`
	Input          string    `json:"input"`
	Priority       int       `json:"priority"`
	Status         string    `json:"status"`
	Worker         string    `json:"worker"`
	Attempts       int       `json:"attempts"`
	Deadline       time.Time `json:"deadline"`
	Progress       int       `json:"progress"`
	Output         string    `json:"output"`
	ReplyMessageID string    `json:"reply_message_id"`
	Reason         string    `json:"reason"`
}

// TaskStateOf returns the state of t.
func TaskStateOf(t *task.Task) TaskState {
	return TaskState{ID: t.ID(), WorkspaceID: t.WorkspaceID(), ConversationID: t.ConversationID(), MessageID: t.MessageID(),
		RequestedBy: t.RequestedBy(), Expert: t.Expert(), Input: t.Input(), Priority: t.Priority(), Status: t.Status(),
		Worker: t.Worker(), Attempts: t.Attempts(), Deadline: t.Deadline(), Progress: t.ProgressPercent(), Output: t.Output(),
		ReplyMessageID: t.ReplyMessageID(), Reason: t.Reason()}
}

// shown adapts the function returning an aggregate's state to Fold.State.
func shown[A, S any](state func(A) S) func(A) any {
	return func(a A) any { return state(a) }
}
