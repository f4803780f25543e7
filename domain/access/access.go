// Package access is Engram's one authorization policy. Every command, query
// and event stream asks it the same question — may this actor do this action
// on this resource? — and gets the same answer.
//
// The policy is a pure function of facts the caller supplies (the actor's
// global roles and key scopes, the actor's role in the workspace that owns the
// resource), so it can be applied to consistent command-side state and to
// read models alike. A resource the actor may not see is reported as not
// found, never as forbidden, so that its existence does not leak.
package access

import "github.com/engramhq/engram/domain"

// Global roles.
const (
	RoleUser    = "user"
	RoleAdmin   = "admin"
	RoleAuditor = "auditor"
)

// Workspace member roles, in increasing order of rights.
const (
	MemberViewer = "viewer"
	MemberEditor = "editor"
	MemberOwner  = "owner"
)

// API key scopes.
const (
	ScopeRead  = "read"
	ScopeWrite = "write"
	ScopeAudit = "audit"
)

// Action is something an actor may try to do.
type Action string

// The actions of the policy.
const (
	ReadWorkspace       Action = "workspace.read"
	UpdateWorkspace     Action = "workspace.update"
	ArchiveWorkspace    Action = "workspace.archive"
	ManageMembers       Action = "workspace.manage_members"
	LeaveWorkspace      Action = "workspace.leave"
	CreateConversation  Action = "conversation.create"
	ReadConversation    Action = "conversation.read"
	UpdateConversation  Action = "conversation.update"
	ArchiveConversation Action = "conversation.archive"
	PostMessage         Action = "conversation.post_message"
	ManageMemory        Action = "memory.manage"
	ReadAudit           Action = "audit.read"
)

// Actor is who is asking.
type Actor struct {
	// UserID is the authenticated user.
	UserID string
	// Roles are the user's global roles.
	Roles []string
	// Scopes limit an API key; nil means the actor authenticated with a
	// session token and has all of the user's rights.
	Scopes []string
	// SessionID is the session of a token-authenticated actor.
	SessionID string
	// KeyID is the API key of a key-authenticated actor.
	KeyID string
}

// HasRole reports whether the actor holds a global role.
func (a Actor) HasRole(role string) bool {
	for _, r := range a.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// HasScope reports whether the actor's credentials carry scope. Token
// (session) credentials carry every scope.
func (a Actor) HasScope(scope string) bool {
	if a.Scopes == nil {
		return true
	}
	for _, s := range a.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// SeesEverything reports whether the actor may read every workspace and every
// event (admins and auditors).
func (a Actor) SeesEverything() bool {
	return a.HasRole(RoleAdmin) || a.HasRole(RoleAuditor)
}

func (a Actor) writes(action Action) bool {
	switch action {
	case ReadWorkspace, ReadConversation, ReadAudit:
		return false
	}
	return true
}

// minimumMemberRole is the workspace role an action needs.
var minimumMemberRole = map[Action]string{
	ReadWorkspace:       MemberViewer,
	ReadConversation:    MemberViewer,
	LeaveWorkspace:      MemberViewer,
	CreateConversation:  MemberEditor,
	PostMessage:         MemberEditor,
	UpdateConversation:  MemberEditor,
	ArchiveConversation: MemberEditor,
	ManageMemory:        MemberEditor,
	UpdateWorkspace:     MemberOwner,
	ArchiveWorkspace:    MemberOwner,
	ManageMembers:       MemberOwner,
}

func rank(role string) int {
	switch role {
	case MemberViewer:
		return 1
	case MemberEditor:
		return 2
	case MemberOwner:
		return 3
	}
	return 0
}

// CheckWorkspace decides whether actor may do action on a resource of a
// workspace in which the actor has memberRole ("" when not a member). It
// returns nil, a CodeNotFound error when the actor may not even see the
// resource, or a CodeForbidden error when it may see but not do this.
func CheckWorkspace(actor Actor, action Action, memberRole string) error {
	if err := authenticated(actor); err != nil {
		return err
	}
	canSee := rank(memberRole) >= 1 || actor.SeesEverything()
	if !canSee || !actor.HasScope(ScopeRead) {
		return domain.Errorf(domain.CodeNotFound, "not found")
	}
	need, ok := minimumMemberRole[action]
	if !ok {
		return domain.Errorf(domain.CodeForbidden, "action %s is not allowed here", action)
	}
	if actor.writes(action) {
		if err := needScope(actor, ScopeWrite); err != nil {
			return err
		}
	}
	if actor.HasRole(RoleAdmin) || !actor.writes(action) && actor.SeesEverything() {
		return nil
	}
	if rank(memberRole) < rank(need) {
		return domain.Errorf(domain.CodeForbidden, "your role in this workspace does not allow this")
	}
	return nil
}

// CheckAudit decides whether actor may read the audit log: admins and
// auditors with session credentials, or API keys with the audit scope owned by
// one. Anyone else is told the audit API does not exist for them (not found);
// an admin's or auditor's key without the audit scope is forbidden.
func CheckAudit(actor Actor) error {
	if err := authenticated(actor); err != nil {
		return err
	}
	if !actor.SeesEverything() {
		return domain.Errorf(domain.CodeNotFound, "not found")
	}
	return needScope(actor, ScopeAudit)
}

// CheckRead decides whether actor may read what belongs to its own account
// (its profile, its workspace list): any authenticated actor whose
// credentials carry the read scope.
func CheckRead(actor Actor) error {
	if err := authenticated(actor); err != nil {
		return err
	}
	return needScope(actor, ScopeRead)
}

// CheckCredentials decides whether actor may see and manage the account's
// credentials (sessions and API keys). Only a session's access token may: an
// API key, whatever its scopes, can neither mint nor revoke credentials, so
// that a leaked key cannot entrench itself.
func CheckCredentials(actor Actor) error {
	if err := authenticated(actor); err != nil {
		return err
	}
	if actor.KeyID != "" || actor.Scopes != nil {
		return domain.Errorf(domain.CodeForbidden, "sessions and API keys are managed with a session's access token, not with an API key")
	}
	return nil
}

// CheckKeyScopes decides whether actor may issue an API key carrying scopes:
// a key never exceeds its owner, so the audit scope needs the admin or
// auditor role. Unknown scopes are the validation's business, not the
// policy's.
func CheckKeyScopes(actor Actor, scopes []string) error {
	if err := CheckCredentials(actor); err != nil {
		return err
	}
	for _, s := range scopes {
		if s == ScopeAudit && !actor.SeesEverything() {
			return domain.Errorf(domain.CodeForbidden, "scope %q needs the %s or %s role", ScopeAudit, RoleAdmin, RoleAuditor)
		}
	}
	return nil
}

// CheckWrite decides whether actor may issue commands that change only its
// own account (e.g. create a workspace of its own).
func CheckWrite(actor Actor) error {
	if err := authenticated(actor); err != nil {
		return err
	}
	return needScope(actor, ScopeWrite)
}

// authenticated fails with CodeUnauthorized when nobody is authenticated.
func authenticated(actor Actor) error {
	if actor.UserID == "" {
		return domain.Errorf(domain.CodeUnauthorized, "authentication required")
	}
	return nil
}

// scopeDenial says what an API key lacking a scope may not do.
var scopeDenial = map[string]string{
	ScopeRead:  "read anything",
	ScopeWrite: "change anything",
	ScopeAudit: "read the audit log",
}

// needScope fails with CodeForbidden when actor's credentials lack scope.
func needScope(actor Actor, scope string) error {
	if !actor.HasScope(scope) {
		return domain.Errorf(domain.CodeForbidden, "this API key may not %s (scope %q needed)", scopeDenial[scope], scope)
	}
	return nil
}
