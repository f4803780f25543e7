package app

import (
	"context"
	"time"

	"github.com/engramhq/engram/cognition"
	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/queries"
)

// The answer to a command is the resource it changed, as a query shows it.
// The ...After methods ask the query, with the command's position as its
// minimum (read-your-writes), and fall back on the resource as the command
// saw it when the read model is late. The ...Of functions build a resource
// from a command's result, as the read model will show it: the answer to a
// creation, which an idempotent request stores before any read model has
// applied it, and the fallbacks.

// WorkspaceAfter returns the workspace a command changed, as actor sees it.
func (a *Application) WorkspaceAfter(ctx context.Context, actor access.Actor, r commands.WorkspaceResult) queries.Workspace {
	if w, err := a.Queries.GetWorkspace.Handle(ctx, actor, r.Workspace.ID, r.Position); err == nil {
		return w
	}
	return WorkspaceOf(r, actor.UserID)
}

// ConversationAfter returns the conversation a command changed.
func (a *Application) ConversationAfter(ctx context.Context, actor access.Actor, r commands.ConversationResult) queries.Conversation {
	if c, err := a.Queries.GetConversation.Handle(ctx, actor, r.Conversation.ID, r.Position); err == nil {
		return c
	}
	return ConversationOf(r)
}

// TaskAfter returns the task a command changed.
func (a *Application) TaskAfter(ctx context.Context, actor access.Actor, r commands.TaskResult) queries.Task {
	if t, err := a.Queries.GetTask.Handle(ctx, actor, r.Task.ID, r.Position); err == nil {
		return t
	}
	return TaskOf(r)
}

// UserOf is a user as a command saw it; createdAt is when it registered
// (zero when the command does not know).
func UserOf(u commands.UserState, createdAt time.Time) queries.User {
	return queries.User{ID: u.ID, Email: u.Email, DisplayName: u.DisplayName, Roles: u.Roles, CreatedAt: createdAt}
}

// WorkspaceOf is a workspace after a command, as viewerID (a member, or
// not) sees it.
func WorkspaceOf(r commands.WorkspaceResult, viewerID string) queries.Workspace {
	w := r.Workspace
	out := queries.Workspace{ID: w.ID, OwnerID: w.OwnerID, Name: w.Name, Description: w.Description, Config: queries.Object(w.Config),
		Archived: w.Archived, UpdatedAt: r.RecordedAt(), Version: r.Version, Role: w.Members[viewerID]}
	if r.StartedStream() {
		out.CreatedAt = out.UpdatedAt
	}
	return out
}

// MemberOf is the membership a command added or changed.
func MemberOf(r commands.MemberResult) queries.Member {
	return queries.Member{WorkspaceID: r.WorkspaceID, UserID: r.UserID, Role: r.Role, AddedAt: r.RecordedAt()}
}

// ConversationOf is a conversation after a command.
func ConversationOf(r commands.ConversationResult) queries.Conversation {
	c := r.Conversation
	out := queries.Conversation{ID: c.ID, WorkspaceID: c.WorkspaceID, CreatedBy: c.CreatedBy, Title: c.Title,
		Modality: c.Modality, Metadata: queries.Object(c.Metadata), Archived: c.Archived, MessageCount: c.MessageCount,
		UpdatedAt: r.RecordedAt(), Version: r.Version}
	if r.StartedStream() {
		out.CreatedAt, out.LastActivityAt = out.UpdatedAt, out.UpdatedAt
	}
	return out
}

// MessageOf is a posted message.
func MessageOf(r commands.MessageResult) queries.Message {
	return queries.Message{ID: r.MessageID, ConversationID: r.ConversationID, Role: r.Role, AuthorID: r.AuthorID,
		Content: r.Content, Metadata: queries.Object(r.Metadata), CreatedAt: r.RecordedAt(), Position: r.Position}
}

// MemoryItemOf is a stored memory item.
func MemoryItemOf(r commands.StoredItemResult) cognition.Item {
	it := r.Item
	return cognition.Item{ID: it.ItemID, WorkspaceID: r.WorkspaceID, Type: it.Type, Content: it.Content, Metadata: it.Metadata,
		ExpiresAt: it.ExpiresAt, SourceMessageID: it.SourceMessageID, CreatedAt: r.RecordedAt(), UpdatedAt: r.RecordedAt()}
}

// TaskOf is a task after a command that ended it (a cancellation).
func TaskOf(r commands.TaskResult) queries.Task {
	t := r.Task
	out := queries.Task{ID: t.ID, WorkspaceID: t.WorkspaceID, ConversationID: t.ConversationID, MessageID: t.MessageID,
		RequestedBy: t.RequestedBy, Expert: t.Expert, Input: t.Input, Priority: t.Priority, Status: t.Status,
		Progress: t.Progress, Attempts: t.Attempts, Output: nullable(t.Output), ReplyMessageID: nullable(t.ReplyMessageID),
		Reason: nullable(t.Reason), UpdatedAt: r.RecordedAt(), Version: r.Version}
	if len(r.Events) > 0 {
		finished := out.UpdatedAt
		out.FinishedAt = &finished
	}
	return out
}

// nullable is s, or nil when s is empty.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
