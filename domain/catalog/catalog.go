// Package catalog is the one list of Engram's stream types. For each it
// says how its stream ids are made, how its stored events are read back,
// which aggregate they fold into and what of that aggregate's state may be
// shown, and whom its events concern, which decides who may see them live.
//
// The commands' repositories, the audit (redaction, states as they were) and
// the live streams (redaction, access) all look stream types up here, so
// that a new stream type is added in one place. A stream type that is not
// here has no decoder: its events are not shown outside the server.
package catalog

import (
	"sort"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/apikey"
	"github.com/engramhq/engram/domain/auditlog"
	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/domain/memory"
	"github.com/engramhq/engram/domain/session"
	"github.com/engramhq/engram/domain/task"
	"github.com/engramhq/engram/domain/user"
	"github.com/engramhq/engram/domain/workspace"
)

// Kind is one stream type.
type Kind struct {
	// Type is the stream type, also the prefix of its stream ids:
	// "<Type>-<id>".
	Type string
	// Decode reads a stored event of the stream type back into its domain
	// event (the aggregate package's Decode).
	Decode func(eventType string, schemaVersion int, data []byte) (domain.Event, error)
	// NewFold starts folding a stream of this type into its aggregate, to
	// show the aggregate's state; nil when the stream type has no state to
	// show.
	NewFold func() Fold
	// Scope says whom the stream's events concern.
	Scope Scope
}

// Fold is one aggregate being folded from its stream, to show its state.
type Fold struct {
	// Apply applies the stream's next event (the aggregate's Apply).
	Apply func(domain.Event)
	// State renders the aggregate's state without its secrets: every field
	// it shows is named, so that a password, token or key hash cannot slip
	// out.
	State func() any
}

// StreamID returns the id of the stream of this type named by id.
func (k Kind) StreamID(id string) string { return domain.StreamID(k.Type, id) }

// ID returns the id that names a stream of this type (the argument of
// StreamID), or streamID unchanged when it is not of this type.
func (k Kind) ID(streamID string) string { return domain.IDOfStream(k.Type, streamID) }

// Redacted reads a stored event of this type back and returns it without
// its secrets (domain.Redact), as it may be shown outside the server. It
// fails as Decode does.
func (k Kind) Redacted(eventType string, schemaVersion int, data []byte) (domain.Event, error) {
	e, err := k.Decode(eventType, schemaVersion, data)
	if err != nil {
		return nil, err
	}
	return domain.Redact(e), nil
}

// Scope says whom the events of a stream concern — an account, a workspace,
// a conversation — and so who may see them: the members of the workspace,
// the account's own user.
type Scope uint8

// Scopes of stream types.
const (
	// ScopeFirstEvent: the stream's first event names the workspace and the
	// conversation it concerns (workspace_id, conversation_id), as a task's
	// does. It is the scope of a stream type missing from the catalogue.
	ScopeFirstEvent Scope = iota
	// ScopeUser: the stream's id is the id of the account it concerns.
	ScopeUser
	// ScopeFirstEventUser: the stream's first event names the account it
	// concerns (user_id), as a session's does.
	ScopeFirstEventUser
	// ScopeWorkspace: the stream's id is the id of the workspace it
	// concerns, as for the workspace itself and its memory.
	ScopeWorkspace
	// ScopeConversation: the stream is a conversation, named by the
	// stream's id; its first event names its workspace.
	ScopeConversation
)

// FromFirstEvent reports whether a stream's first event says whom it
// concerns.
func (s Scope) FromFirstEvent() bool {
	return s == ScopeFirstEvent || s == ScopeFirstEventUser || s == ScopeConversation
}

// Aggregate is a stream type whose streams fold into aggregates of type A,
// for the code that works with the aggregate itself.
type Aggregate[A domain.Aggregate] struct {
	Kind
	// New returns an empty aggregate, ready to have stored events applied.
	New func() A
}

func aggregateOf[A domain.Aggregate](streamType string, decode func(string, int, []byte) (domain.Event, error),
	newEmpty func() A, state func(A) any, scope Scope) Aggregate[A] {
	k := Kind{Type: streamType, Decode: decode, Scope: scope}
	if state != nil {
		k.NewFold = func() Fold {
			a := newEmpty()
			return Fold{Apply: a.Apply, State: func() any { return state(a) }}
		}
	}
	return Aggregate[A]{Kind: k, New: newEmpty}
}

// The aggregates' stream types.
var (
	// Users are accounts: "user-<id>".
	Users = aggregateOf(user.StreamType, user.Decode, func() *user.User { return &user.User{} }, shown(UserStateOf), ScopeUser)
	// Sessions are logins of an account: "session-<id>".
	Sessions = aggregateOf(session.StreamType, session.Decode, func() *session.Session { return &session.Session{} },
		shown(sessionState), ScopeFirstEventUser)
	// APIKeys are an account's keys for programs: "apikey-<id>".
	APIKeys = aggregateOf(apikey.StreamType, apikey.Decode, func() *apikey.APIKey { return &apikey.APIKey{} },
		shown(apiKeyState), ScopeFirstEventUser)
	// Workspaces are shared spaces and their members: "workspace-<id>".
	Workspaces = aggregateOf(workspace.StreamType, workspace.Decode, func() *workspace.Workspace { return &workspace.Workspace{} },
		shown(workspaceState), ScopeWorkspace)
	// Conversations are threads of messages in a workspace:
	// "conversation-<id>".
	Conversations = aggregateOf(conversation.StreamType, conversation.Decode,
		func() *conversation.Conversation { return &conversation.Conversation{} }, shown(ConversationStateOf), ScopeConversation)
	// Tasks are work handed to a domain expert: "task-<id>".
	Tasks = aggregateOf(task.StreamType, task.Decode, func() *task.Task { return &task.Task{} }, shown(TaskStateOf), ScopeFirstEvent)
	// Memories are the whiteboards of workspaces, one per workspace:
	// "memory-<workspace id>". Their state is not shown.
	Memories = aggregateOf(memory.StreamType, memory.Decode, func() *memory.Whiteboard { return &memory.Whiteboard{} },
		nil, ScopeWorkspace)
)

// AuditReads are the reads of the audit log, one stream per reader:
// "audit-<actor id>". They fold into no aggregate.
var AuditReads = Kind{Type: auditlog.StreamType, Decode: auditlog.Decode, Scope: ScopeFirstEvent}

// kinds is every stream type, by type.
var kinds = index(Users.Kind, Sessions.Kind, APIKeys.Kind, Workspaces.Kind, Conversations.Kind, Tasks.Kind,
	Memories.Kind, AuditReads)

func index(all ...Kind) map[string]Kind {
	m := make(map[string]Kind, len(all))
	for _, k := range all {
		m[k.Type] = k
	}
	return m
}

// Lookup returns the stream type named streamType, and false when there is
// none.
func Lookup(streamType string) (Kind, bool) {
	k, ok := kinds[streamType]
	return k, ok
}

// ScopeOf returns the scope of a stream type: the zero Scope,
// ScopeFirstEvent, for one missing from the catalogue.
func ScopeOf(streamType string) Scope { return kinds[streamType].Scope }

// Types returns every stream type, sorted.
func Types() []string {
	out := make([]string, 0, len(kinds))
	for t := range kinds {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}
