package commands

import (
	"context"
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
	IssueAPIKey         *IssueAPIKeyHandler
	RevokeAPIKey        *RevokeAPIKeyHandler

	// Cognition: routing decisions, tasks of domain experts and workspace
	// memory. The task commands of workers and the reactions to events act
	// on behalf of the system; the others check their actor.
	DecideRouting      *DecideRoutingHandler
	SubmitTask         *SubmitTaskHandler
	StartTask          *TaskHandler[StartTask]
	ReportTaskProgress *TaskHandler[ReportTaskProgress]
	CompleteTask       *TaskHandler[CompleteTask]
	FailTask           *TaskHandler[FailTask]
	CancelTask         *CancelTaskHandler
	PostReply          *PostReplyHandler
	RememberMessage    *RememberMessageHandler
	RememberEntity     *RememberEntityHandler
	StoreMemoryItem    *StoreMemoryItemHandler
	DeleteMemoryItem   *DeleteMemoryItemHandler
}

// Dependencies are what the command handlers need.
type Dependencies struct {
	Store      EventStore
	Hasher     PasswordHasher
	Tokens     TokenIssuer
	Secrets    SecretGenerator
	RefreshTTL time.Duration
	// Revocations learns of every revocation as soon as it is stored
	// (default: nobody; every instance still learns of it from the log).
	Revocations Revocations
	// RefreshGrace keeps the answers of recent refreshes for the reuse
	// grace (default: none, every reuse of a spent refresh token revokes
	// its session). Pass the cache shared by every instance.
	RefreshGrace GraceStore
	// RefreshReuseGrace is how long a spent refresh token still gets its
	// rotation's answer (default DefaultRefreshReuseGrace; negative: none).
	RefreshReuseGrace time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Revocations learns of a revoked credential as soon as the revocation is
// stored, so that every instance refuses the credential at once rather than
// once the read models have caught up. It is best effort: an implementation
// handles its own failures (the revocation event, read from the log, repairs them).
type Revocations interface {
	// RevokeSession records that the session's access tokens are refused.
	RevokeSession(ctx context.Context, sessionID string)
	// RevokeKey records that the API key is refused.
	RevokeKey(ctx context.Context, keyID string)
}

type noRevocations struct{}

func (noRevocations) RevokeSession(context.Context, string) {}
func (noRevocations) RevokeKey(context.Context, string)     {}

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
	if d.Revocations == nil {
		d.Revocations = noRevocations{}
	}
	if d.RefreshReuseGrace == 0 {
		d.RefreshReuseGrace = DefaultRefreshReuseGrace
	}
	repos, err := newRepositories(d.Store)
	if err != nil {
		return Commands{}, err
	}
	crepos := newCognitionRepositories(repos)
	return Commands{
		Register:            &RegisterHandler{repos: repos, hasher: d.Hasher},
		Login:               &LoginHandler{repos: repos, hasher: d.Hasher, tokens: d.Tokens, secrets: d.Secrets, revocations: d.Revocations, refreshTTL: d.RefreshTTL, grace: d.RefreshGrace, graceFor: d.RefreshReuseGrace, now: d.Now},
		RevokeSession:       &RevokeSessionHandler{repos: repos, revocations: d.Revocations},
		CreateWorkspace:     &CreateWorkspaceHandler{repos: repos},
		UpdateWorkspace:     &UpdateWorkspaceHandler{repos: repos},
		ArchiveWorkspace:    &ArchiveWorkspaceHandler{repos: repos},
		AddMember:           &AddMemberHandler{repos: repos},
		RemoveMember:        &RemoveMemberHandler{repos: repos},
		CreateConversation:  &CreateConversationHandler{repos: repos},
		UpdateConversation:  &UpdateConversationHandler{repos: repos},
		ArchiveConversation: &ArchiveConversationHandler{repos: repos},
		PostMessage:         &PostMessageHandler{repos: repos},
		IssueAPIKey:         &IssueAPIKeyHandler{repos: repos, secrets: d.Secrets, now: d.Now},
		RevokeAPIKey:        &RevokeAPIKeyHandler{repos: repos, revocations: d.Revocations},

		DecideRouting:      &DecideRoutingHandler{repos: crepos},
		SubmitTask:         &SubmitTaskHandler{repos: crepos},
		StartTask:          &TaskHandler[StartTask]{repos: crepos, now: d.Now},
		ReportTaskProgress: &TaskHandler[ReportTaskProgress]{repos: crepos, now: d.Now},
		CompleteTask:       &TaskHandler[CompleteTask]{repos: crepos, now: d.Now},
		FailTask:           &TaskHandler[FailTask]{repos: crepos, now: d.Now},
		CancelTask:         &CancelTaskHandler{repos: crepos},
		PostReply:          &PostReplyHandler{repos: crepos},
		RememberMessage:    &RememberMessageHandler{repos: crepos, now: d.Now},
		RememberEntity:     &RememberEntityHandler{repos: crepos},
		StoreMemoryItem:    &StoreMemoryItemHandler{repos: crepos, now: d.Now},
		DeleteMemoryItem:   &DeleteMemoryItemHandler{repos: crepos},
	}, nil
}
