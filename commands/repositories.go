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
	// workspaceAccess remembers the latest known state of workspaces, to
	// authorize conversation commands without reading the workspace.
	workspaceAccess *aggregateCache[workspaceAccess]
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
		workspaceAccess:         newAggregateCache[workspaceAccess](10_000),
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
	wa, err := r.readWorkspace(ctx, workspaceID)
	if err != nil {
		return WorkspaceState{}, err
	}
	if err := access.CheckWorkspace(actor, action, wa.state.Members[actor.UserID]); err != nil {
		return WorkspaceState{}, err
	}
	return wa.state, nil
}

// authorizeActive is authorizeInWorkspace for a change in the workspace,
// which must not be archived (CodeConflict).
func (r *repositories) authorizeActive(ctx context.Context, actor access.Actor, action access.Action, workspaceID string) error {
	ws, err := r.authorizeInWorkspace(ctx, actor, action, workspaceID)
	if err != nil {
		return err
	}
	return requireActive(ws)
}

// workspaceAccess is a workspace's state as of a version, on which
// commands in the workspace are authorized.
type workspaceAccess struct {
	state   WorkspaceState
	version int
	// fresh is set when the state was read from the workspace's stream
	// for this command.
	fresh bool
}

// guard is the condition under which a command authorized on wa may be
// appended: the workspace is still at wa's version.
func (wa workspaceAccess) guard() eventstore.Guard {
	return eventstore.Guard{StreamID: workspace.StreamID(wa.state.ID), Version: wa.version}
}

// check asks the policy whether actor may do action in an active workspace.
func (wa workspaceAccess) check(actor access.Actor, action access.Action) error {
	if err := access.CheckWorkspace(actor, action, wa.state.Members[actor.UserID]); err != nil {
		return err
	}
	return requireActive(wa.state)
}

// readWorkspace reads a workspace's latest state and remembers it.
func (r *repositories) readWorkspace(ctx context.Context, workspaceID string) (workspaceAccess, error) {
	ws, err := r.workspaces.load(ctx, workspaceID)
	if err != nil {
		return workspaceAccess{}, err
	}
	wa := workspaceAccess{state: workspaceState(ws), version: ws.Version(), fresh: true}
	r.workspaces.release(workspaceID, ws)
	r.rememberWorkspace(wa)
	return wa, nil
}

// rememberWorkspace keeps wa as the workspace's latest known state, unless
// a later one is known already.
func (r *repositories) rememberWorkspace(wa workspaceAccess) {
	newer := false
	r.workspaceAccess.peek(wa.state.ID, func(known workspaceAccess) { newer = known.version > wa.version })
	if !newer {
		wa.fresh = false
		r.workspaceAccess.put(wa.state.ID, wa)
	}
}

// authorizeCached asks the policy whether actor may do action in the
// workspace, on its latest known state when fresh is false — the caller's
// append is then guarded on that state's version — and on its stream
// otherwise. A refusal is only given on a state read from the stream.
func (r *repositories) authorizeCached(ctx context.Context, actor access.Actor, action access.Action,
	workspaceID string, fresh bool) (workspaceAccess, error) {
	if !fresh {
		var wa workspaceAccess
		if r.workspaceAccess.peek(workspaceID, func(known workspaceAccess) { wa = known }) && wa.check(actor, action) == nil {
			return wa, nil
		}
	}
	wa, err := r.readWorkspace(ctx, workspaceID)
	if err != nil {
		return workspaceAccess{}, err
	}
	return wa, wa.check(actor, action)
}

// validID rejects identifiers that cannot name anything (every id is a
// UUID), so that they are a clean 404 rather than a database error.
func validID(field, id string) error {
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return domain.Errorf(domain.CodeNotFound, "%s not found", strings.TrimSuffix(field, "_id"))
	}
	return nil
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
// the conversation's workspace (which must not be archived: CodeConflict)
// is asked first, then decide runs through the conversation's writer,
// after the If-Match check.
//
// The policy is asked on the workspace's latest known state, without a
// read, and the command's events are appended only if the workspace is
// still at that state's version (a guard in the same statement): a member
// removed, or a workspace archived, on any instance is refused from the
// next command on. When the workspace has moved on, or when the command
// failed or wrote nothing on a state not read for it, the command is
// decided again on the workspace read from its stream.
func (r *repositories) inConversation(ctx context.Context, actor access.Actor, action access.Action,
	id string, ifMatch *int, decide func(*conversation.Conversation) error, opts ...eventstore.AppendOption) (ConversationResult, error) {
	workspaceID, err := r.workspaceOf(ctx, id)
	if err != nil {
		return ConversationResult{}, err
	}
	ctx = withActor(ctx, actor.UserID)
	fresh := false
	for {
		wa, err := r.authorizeCached(ctx, actor, action, workspaceID, fresh)
		if err != nil {
			return ConversationResult{}, err
		}
		var state ConversationState
		w, err := r.conversations.updateIf(ctx, id, wa.guard(), keepingState(ifMatching(ifMatch, decide), catalog.ConversationStateOf, &state), opts...)
		switch {
		case errors.Is(err, eventstore.ErrGuardChanged):
		case err == nil && len(w.Events) > 0:
			return ConversationResult{Conversation: state, Written: w}, nil // the guard held
		case wa.fresh || ctx.Err() != nil:
			if err != nil {
				return ConversationResult{}, err
			}
			return ConversationResult{Conversation: state, Written: w}, nil
		}
		fresh = true
	}
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
		return keepingState(ifMatching(ifMatch, decide), workspaceState, &state)(ws)
	}, opts...)
	if err != nil {
		return WorkspaceResult{}, err
	}
	if len(w.Events) > 0 {
		r.rememberWorkspace(workspaceAccess{state: state, version: w.Version})
	}
	return WorkspaceResult{Workspace: state, Written: w}, nil
}
