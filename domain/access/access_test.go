package access

import (
	"testing"

	"github.com/engramhq/engram/domain"
)

// Outcomes, as domain error codes ("" is allowed).
const (
	ok        = ""
	notFound  = domain.CodeNotFound
	forbidden = domain.CodeForbidden
	anonymous = domain.CodeUnauthorized
)

var (
	nobody      = Actor{}
	user        = Actor{UserID: "u", Roles: []string{RoleUser}, SessionID: "s"}
	admin       = Actor{UserID: "a", Roles: []string{RoleUser, RoleAdmin}, SessionID: "s"}
	auditor     = Actor{UserID: "d", Roles: []string{RoleUser, RoleAuditor}, SessionID: "s"}
	readKey     = Actor{UserID: "u", Roles: []string{RoleUser}, Scopes: []string{ScopeRead}, KeyID: "k"}
	writeKey    = Actor{UserID: "u", Roles: []string{RoleUser}, Scopes: []string{ScopeRead, ScopeWrite}, KeyID: "k"}
	writeOnly   = Actor{UserID: "u", Roles: []string{RoleUser}, Scopes: []string{ScopeWrite}, KeyID: "k"}
	noScopes    = Actor{UserID: "u", Roles: []string{RoleUser}, Scopes: []string{}, KeyID: "k"}
	adminRead   = Actor{UserID: "a", Roles: []string{RoleUser, RoleAdmin}, Scopes: []string{ScopeRead}, KeyID: "k"}
	adminWrite  = Actor{UserID: "a", Roles: []string{RoleUser, RoleAdmin}, Scopes: []string{ScopeRead, ScopeWrite}, KeyID: "k"}
	auditorKey  = Actor{UserID: "d", Roles: []string{RoleUser, RoleAuditor}, Scopes: []string{ScopeAudit}, KeyID: "k"}
	userAuditKy = Actor{UserID: "u", Roles: []string{RoleUser}, Scopes: []string{ScopeAudit, ScopeRead}, KeyID: "k"}
)

func check(t *testing.T, name string, err error, want string) {
	t.Helper()
	if got := domain.ErrorCode(err); got != want {
		t.Errorf("%s: code %q (%v), want %q", name, got, err, want)
	}
	if err != nil && domain.ErrorCode(err) == "" {
		t.Errorf("%s: %v is not a domain error", name, err)
	}
}

func TestCheckWorkspace(t *testing.T) {
	reads := []Action{ReadWorkspace, ReadConversation}
	editorWrites := []Action{CreateConversation, PostMessage, UpdateConversation, ArchiveConversation, ManageMemory}
	ownerWrites := []Action{UpdateWorkspace, ArchiveWorkspace, ManageMembers}
	tests := []struct {
		name    string
		actor   Actor
		role    string
		actions []Action
		want    string
	}{
		{"anonymous reads", nobody, MemberOwner, reads, anonymous},
		{"anonymous writes", nobody, MemberOwner, ownerWrites, anonymous},

		{"stranger reads", user, "", reads, notFound},
		{"stranger edits", user, "", editorWrites, notFound},
		{"stranger manages", user, "", ownerWrites, notFound},
		{"stranger leaves", user, "", []Action{LeaveWorkspace}, notFound},
		{"unknown role is a stranger", user, "superuser", reads, notFound},

		{"viewer reads", user, MemberViewer, reads, ok},
		{"viewer leaves", user, MemberViewer, []Action{LeaveWorkspace}, ok},
		{"viewer edits", user, MemberViewer, editorWrites, forbidden},
		{"viewer manages", user, MemberViewer, ownerWrites, forbidden},

		{"editor reads", user, MemberEditor, reads, ok},
		{"editor edits", user, MemberEditor, editorWrites, ok},
		{"editor manages", user, MemberEditor, ownerWrites, forbidden},

		{"owner reads", user, MemberOwner, reads, ok},
		{"owner edits", user, MemberOwner, editorWrites, ok},
		{"owner manages", user, MemberOwner, ownerWrites, ok},
		{"owner leaves", user, MemberOwner, []Action{LeaveWorkspace}, ok},

		{"admin reads any workspace", admin, "", reads, ok},
		{"admin edits any workspace", admin, "", editorWrites, ok},
		{"admin manages any workspace", admin, "", ownerWrites, ok},

		{"auditor reads any workspace", auditor, "", reads, ok},
		{"auditor may not edit", auditor, "", editorWrites, forbidden},
		{"auditor may not manage", auditor, "", ownerWrites, forbidden},
		{"auditor member edits by role", auditor, MemberEditor, editorWrites, ok},

		{"read key reads", readKey, MemberOwner, reads, ok},
		{"read key may not edit", readKey, MemberOwner, editorWrites, forbidden},
		{"read key may not manage", readKey, MemberOwner, ownerWrites, forbidden},
		{"read key of a stranger", readKey, "", reads, notFound},
		{"write key edits", writeKey, MemberEditor, editorWrites, ok},
		{"write key bounded by the role", writeKey, MemberViewer, editorWrites, forbidden},
		{"write key manages as owner", writeKey, MemberOwner, ownerWrites, ok},
		{"write-only key sees nothing", writeOnly, MemberOwner, reads, notFound},
		{"write-only key cannot write blind", writeOnly, MemberOwner, editorWrites, notFound},
		{"key without scopes sees nothing", noScopes, MemberOwner, reads, notFound},

		{"admin read key reads anything", adminRead, "", reads, ok},
		{"admin read key may not write", adminRead, "", editorWrites, forbidden},
		{"admin write key writes anything", adminWrite, "", ownerWrites, ok},
		{"audit-only key sees no workspace", auditorKey, "", reads, notFound},

		{"audit is not a workspace action", admin, MemberOwner, []Action{ReadAudit}, forbidden},
		{"unknown action", user, MemberOwner, []Action{"workspace.explode"}, forbidden},
	}
	for _, tt := range tests {
		for _, action := range tt.actions {
			check(t, tt.name+" / "+string(action), CheckWorkspace(tt.actor, action, tt.role), tt.want)
		}
	}
}

func TestCheckAudit(t *testing.T) {
	tests := []struct {
		name  string
		actor Actor
		want  string
	}{
		{"anonymous", nobody, anonymous},
		{"user", user, notFound},
		{"user's key with the audit scope", userAuditKy, notFound},
		{"admin", admin, ok},
		{"auditor", auditor, ok},
		{"auditor's audit key", auditorKey, ok},
		{"admin's read key", adminRead, forbidden},
		{"admin's write key", adminWrite, forbidden},
	}
	for _, tt := range tests {
		check(t, tt.name, CheckAudit(tt.actor), tt.want)
	}
}

func TestCheckReadWriteAndCredentials(t *testing.T) {
	tests := []struct {
		name                   string
		actor                  Actor
		read, write, credentls string
	}{
		{"anonymous", nobody, anonymous, anonymous, anonymous},
		{"session", user, ok, ok, ok},
		{"admin session", admin, ok, ok, ok},
		{"read key", readKey, ok, forbidden, forbidden},
		{"write key", writeKey, ok, ok, forbidden},
		{"write-only key", writeOnly, forbidden, ok, forbidden},
		{"key without scopes", noScopes, forbidden, forbidden, forbidden},
		{"auditor's audit key", auditorKey, forbidden, forbidden, forbidden},
		{"key id alone marks a key", Actor{UserID: "u", KeyID: "k"}, ok, ok, forbidden},
	}
	for _, tt := range tests {
		check(t, tt.name+" / read", CheckRead(tt.actor), tt.read)
		check(t, tt.name+" / write", CheckWrite(tt.actor), tt.write)
		check(t, tt.name+" / credentials", CheckCredentials(tt.actor), tt.credentls)
	}
}

func TestCheckKeyScopes(t *testing.T) {
	tests := []struct {
		name   string
		actor  Actor
		scopes []string
		want   string
	}{
		{"anonymous", nobody, []string{ScopeRead}, anonymous},
		{"user read and write", user, []string{ScopeRead, ScopeWrite}, ok},
		{"user audit", user, []string{ScopeRead, ScopeAudit}, forbidden},
		{"admin audit", admin, []string{ScopeAudit}, ok},
		{"auditor audit", auditor, []string{ScopeAudit, ScopeRead}, ok},
		{"a key may not mint keys", writeKey, []string{ScopeRead}, forbidden},
		{"an admin's key may not mint keys", adminWrite, []string{ScopeRead}, forbidden},
		{"unknown scopes are left to validation", user, []string{"root"}, ok},
	}
	for _, tt := range tests {
		check(t, tt.name, CheckKeyScopes(tt.actor, tt.scopes), tt.want)
	}
}

func TestActor(t *testing.T) {
	if !admin.HasRole(RoleAdmin) || user.HasRole(RoleAdmin) || nobody.HasRole(RoleUser) {
		t.Error("HasRole")
	}
	if !user.HasScope(ScopeAudit) {
		t.Error("session credentials must carry every scope")
	}
	if readKey.HasScope(ScopeWrite) || !readKey.HasScope(ScopeRead) || noScopes.HasScope(ScopeRead) {
		t.Error("HasScope of keys")
	}
	if !admin.SeesEverything() || !auditor.SeesEverything() || user.SeesEverything() {
		t.Error("SeesEverything")
	}
}
