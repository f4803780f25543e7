package sse

import "github.com/engramhq/engram/domain/access"

// scopeKind is what a stream follows.
type scopeKind uint8

const (
	// scopeAll is everything the caller may see (/v1/events).
	scopeAll scopeKind = iota
	// scopeMe is the caller's own account (/v1/users/me/events).
	scopeMe
	// scopeWorkspace is one workspace and its conversations.
	scopeWorkspace
	// scopeConversation is one conversation.
	scopeConversation
)

// scope is what one stream follows.
type scope struct {
	kind scopeKind
	// id is the workspace or conversation followed.
	id string
	// workspaceID is the workspace of a workspace or conversation scope.
	workspaceID string
}

// subject says whom an event or signal concerns; every field may be empty.
type subject struct {
	// workspaceID is the workspace the event belongs to (the workspace's
	// own events, its conversations', its memory's, its tasks').
	workspaceID string
	// conversationID is the conversation the event belongs to.
	conversationID string
	// userID is the account the event belongs to (user, session and API
	// key streams).
	userID string
	// aboutUserID is the member a membership event is about.
	aboutUserID string
}

// visible reports whether actor, streaming sc, may receive something about
// subj; role is the actor's role in subj.workspaceID ("" when not a member).
// It is the one filter of live delivery and replay alike; the policy itself
// is domain/access.
func visible(actor access.Actor, sc scope, subj subject, role string) bool {
	personal := actor.UserID != "" && (subj.userID == actor.UserID || subj.aboutUserID == actor.UserID)
	inWorkspace := subj.workspaceID != "" && access.CheckWorkspace(actor, access.ReadWorkspace, role) == nil
	switch sc.kind {
	case scopeMe:
		return personal && access.CheckRead(actor) == nil
	case scopeWorkspace:
		return subj.workspaceID == sc.id && inWorkspace
	case scopeConversation:
		return subj.conversationID == sc.id && inWorkspace
	}
	if access.CheckRead(actor) != nil {
		return false
	}
	return actor.SeesEverything() || personal || inWorkspace
}
