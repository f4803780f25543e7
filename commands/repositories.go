package commands

import (
	"context"
	"errors"
	"strings"

	"github.com/google/uuid"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/apikey"
	"github.com/engramhq/engram/domain/catalog"
	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/domain/session"
	"github.com/engramhq/engram/domain/user"
	"github.com/engramhq/engram/domain/workspace"
	"github.com/engramhq/engram/eventstore"
)

// repositories are the aggregate repositories shared by the handlers.
type repositories struct {
	store         EventStore
	users         *repository[*user.User]
	workspaces    *repository[*workspace.Workspace]
	conversations *repository[*conversation.Conversation]
	sessions      *repository[*session.Session]
	apiKeys       *repository[*apikey.APIKey]
	// workspaceOfConversation remembers each conversation's workspace,
	// which never changes.
	workspaceOfConversation *aggregateCache[string]
}

func newRepositories(store EventStore) (*repositories, error) {
	if store == nil {
		return nil, errors.New("commands: nil event store")
	}
	return &repositories{
		store:                   store,
		users:                   repositoryOf(store, catalog.Users),
		workspaces:              repositoryOf(store, catalog.Workspaces),
		conversations:           repositoryOf(store, catalog.Conversations),
		sessions:                repositoryOf(store, catalog.Sessions),
		apiKeys:                 repositoryOf(store, catalog.APIKeys),
		workspaceOfConversation: newAggregateCache[string](100_000),
	}, nil
}

// repositoryOf returns the repository of the aggregates of a stream type.
func repositoryOf[T aggregate](store EventStore, k catalog.Aggregate[T]) *repository[T] {
	return newRepository(store, k.Type, k.StreamID, k.New, k.Decode)
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

// authorizeConversation asks the policy whether actor may do action in the
// conversation's workspace, which must not be archived (CodeConflict). It
// returns the workspace's id.
func (r *repositories) authorizeConversation(ctx context.Context, actor access.Actor, action access.Action, conversationID string) (string, error) {
	workspaceID, err := r.workspaceOf(ctx, conversationID)
	if err != nil {
		return "", err
	}
	ws, err := r.authorizeInWorkspace(ctx, actor, action, workspaceID)
	if err != nil {
		return "", err
	}
	if err := requireActive(ws); err != nil {
		return "", err
	}
	return workspaceID, nil
}

// requireActive refuses a change in an archived workspace.
func requireActive(ws WorkspaceState) error {
	if ws.Archived {
		return domain.Errorf(domain.CodeConflict, "workspace is archived")
	}
	return nil
}

// workspaceOf returns the workspace of a conversation.
func (r *repositories) workspaceOf(ctx context.Context, conversationID string) (string, error) {
	if err := validID("conversation_id", conversationID); err != nil {
		return "", err
	}
	// A conversation never changes workspace: once known, the answer is
	// kept, and the conversation's stream is not read again for it.
	var known string
	if r.workspaceOfConversation.peek(conversationID, func(ws string) { known = ws }) {
		return known, nil
	}
	c, err := r.conversations.load(ctx, conversationID)
	if err != nil {
		return "", err
	}
	r.conversations.release(conversationID, c)
	r.workspaceOfConversation.put(conversationID, c.WorkspaceID())
	return c.WorkspaceID(), nil
}

// inConversation runs a command on a conversation for actor: the policy of
// the conversation's workspace is asked first, then decide runs through the
// conversation's writer, after the If-Match check.
func (r *repositories) inConversation(ctx context.Context, actor access.Actor, action access.Action,
	id string, ifMatch *int, decide func(*conversation.Conversation) error, opts ...eventstore.AppendOption) (ConversationResult, error) {
	if _, err := r.authorizeConversation(ctx, actor, action, id); err != nil {
		return ConversationResult{}, err
	}
	var state ConversationState
	w, err := r.conversations.update(withActor(ctx, actor.UserID), id, func(c *conversation.Conversation) error {
		if err := checkIfMatch(ifMatch, c.Version()); err != nil {
			return err
		}
		if err := decide(c); err != nil {
			return err
		}
		state = conversationState(c)
		return nil
	}, opts...)
	if err != nil {
		return ConversationResult{}, err
	}
	return ConversationResult{Conversation: state, Written: w}, nil
}

// inWorkspace runs a command on a workspace for actor through the
// workspace's writer: the policy is asked on the workspace's latest state,
// then the If-Match check, then decide.
func (r *repositories) inWorkspace(ctx context.Context, actor access.Actor, action access.Action,
	id string, ifMatch *int, decide func(*workspace.Workspace) error, opts ...eventstore.AppendOption) (WorkspaceResult, error) {
	if err := validID("workspace_id", id); err != nil {
		return WorkspaceResult{}, err
	}
	var state WorkspaceState
	w, err := r.workspaces.update(withActor(ctx, actor.UserID), id, func(ws *workspace.Workspace) error {
		role, _ := ws.MemberRole(actor.UserID)
		if err := access.CheckWorkspace(actor, action, role); err != nil {
			return err
		}
		if err := checkIfMatch(ifMatch, ws.Version()); err != nil {
			return err
		}
		if err := decide(ws); err != nil {
			return err
		}
		state = workspaceState(ws)
		return nil
	}, opts...)
	if err != nil {
		return WorkspaceResult{}, err
	}
	return WorkspaceResult{Workspace: state, Written: w}, nil
}
