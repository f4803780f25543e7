package commands

import (
	"errors"
	"time"
)

// Commands is every command handler of Engram, built in one place.
type Commands struct {
	Register            *RegisterHandler
	Login               *LoginHandler
	RevokeSession       *RevokeSessionHandler
	CreateWorkspace     *CreateWorkspaceHandler
	UpdateWorkspace     *UpdateWorkspaceHandler
	ArchiveWorkspace    *ArchiveWorkspaceHandler
	AddMember           *AddMemberHandler
	RemoveMember        *RemoveMemberHandler
	CreateConversation  *CreateConversationHandler
	UpdateConversation  *UpdateConversationHandler
	ArchiveConversation *ArchiveConversationHandler
	PostMessage         *PostMessageHandler
}

// Dependencies are what the command handlers need.
type Dependencies struct {
	Store      EventStore
	Hasher     PasswordHasher
	Tokens     TokenIssuer
	Secrets    SecretGenerator
	RefreshTTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// New builds every handler. It refuses missing dependencies.
func New(d Dependencies) (Commands, error) {
	if d.Hasher == nil || d.Tokens == nil || d.Secrets == nil {
		return Commands{}, errors.New("commands: hasher, token issuer and secret generator are required")
	}
	if d.RefreshTTL <= 0 {
		return Commands{}, errors.New("commands: refresh token TTL must be positive")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	repos, err := newRepositories(d.Store)
	if err != nil {
		return Commands{}, err
	}
	return Commands{
		Register:            &RegisterHandler{repos: repos, hasher: d.Hasher},
		Login:               &LoginHandler{repos: repos, hasher: d.Hasher, tokens: d.Tokens, secrets: d.Secrets, refreshTTL: d.RefreshTTL, now: d.Now},
		RevokeSession:       &RevokeSessionHandler{repos: repos},
		CreateWorkspace:     &CreateWorkspaceHandler{repos: repos},
		UpdateWorkspace:     &UpdateWorkspaceHandler{repos: repos},
		ArchiveWorkspace:    &ArchiveWorkspaceHandler{repos: repos},
		AddMember:           &AddMemberHandler{repos: repos},
		RemoveMember:        &RemoveMemberHandler{repos: repos},
		CreateConversation:  &CreateConversationHandler{repos: repos},
		UpdateConversation:  &UpdateConversationHandler{repos: repos},
		ArchiveConversation: &ArchiveConversationHandler{repos: repos},
		PostMessage:         &PostMessageHandler{repos: repos},
	}, nil
}
