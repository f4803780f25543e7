package commands

import (
	"context"
	"errors"
	"strings"

	"github.com/google/uuid"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/apikey"
	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/domain/session"
	"github.com/engramhq/engram/domain/user"
	"github.com/engramhq/engram/domain/workspace"
)

// repositories are the aggregate repositories shared by the handlers.
type repositories struct {
	store         EventStore
	users         *repository[*user.User]
	workspaces    *repository[*workspace.Workspace]
	conversations *repository[*conversation.Conversation]
	sessions      *repository[*session.Session]
	apiKeys       *repository[*apikey.APIKey]
}

func newRepositories(store EventStore) (*repositories, error) {
	if store == nil {
		return nil, errors.New("commands: nil event store")
	}
	return &repositories{
		store: store,
		users: newRepository(store, user.StreamType, user.StreamID,
			func() *user.User { return &user.User{} }, user.Decode),
		workspaces: newRepository(store, workspace.StreamType, workspace.StreamID,
			func() *workspace.Workspace { return &workspace.Workspace{} }, workspace.Decode),
		conversations: newRepository(store, conversation.StreamType, conversation.StreamID,
			func() *conversation.Conversation { return &conversation.Conversation{} }, conversation.Decode).waiting(),
		sessions: newRepository(store, session.StreamType, session.StreamID,
			func() *session.Session { return &session.Session{} }, session.Decode),
		apiKeys: newRepository(store, apikey.StreamType, apikey.StreamID,
			func() *apikey.APIKey { return &apikey.APIKey{} }, apikey.Decode),
	}, nil
}

// authorizeInWorkspace loads the workspace and asks the policy whether actor
// may do action in it. It returns the workspace's state for the caller.
func (r *repositories) authorizeInWorkspace(ctx context.Context, actor access.Actor, action access.Action, workspaceID string) (WorkspaceState, error) {
	if err := validID("workspace_id", workspaceID); err != nil {
		return WorkspaceState{}, err
	}
	ws, err := r.workspaces.load(ctx, workspaceID)
	if err != nil {
		return WorkspaceState{}, err
	}
	state := workspaceState(ws)
	r.workspaces.release(workspaceID, ws)
	role := state.Members[actor.UserID]
	if err := access.CheckWorkspace(actor, action, role); err != nil {
		return WorkspaceState{}, err
	}
	return state, nil
}

// validID rejects identifiers that cannot name anything (every id is a
// UUID), so that they are a clean 404 rather than a database error.
func validID(field, id string) error {
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return domain.Errorf(domain.CodeNotFound, "%s not found", strings.TrimSuffix(field, "_id"))
	}
	return nil
}

// conversationWithRole loads a conversation and the role of userID in its
// workspace. When the conversation is cached, its workspace is known and
// both streams are brought up to date with a single read.
func (r *repositories) conversationWithRole(ctx context.Context, conversationID, userID string) (*conversation.Conversation, string, error) {
	var workspaceID string
	if r.conversations.peek(conversationID, func(c *conversation.Conversation) { workspaceID = c.WorkspaceID() }) {
		c, ws, err := loadTwo(ctx, r.store, r.conversations, conversationID, r.workspaces, workspaceID)
		if err != nil {
			return nil, "", err
		}
		role, _ := ws.MemberRole(userID)
		r.workspaces.release(workspaceID, ws)
		return c, role, nil
	}
	c, err := r.conversations.load(ctx, conversationID)
	if err != nil {
		return nil, "", err
	}
	ws, err := r.workspaces.load(ctx, c.WorkspaceID())
	if err != nil {
		r.conversations.release(conversationID, c)
		return nil, "", err
	}
	role, _ := ws.MemberRole(userID)
	r.workspaces.release(c.WorkspaceID(), ws)
	return c, role, nil
}
