package queries

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/engramhq/engram/cognition/postgres"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/projections"
)

// Waiter waits until every projector named has applied a position.
type Waiter interface {
	WaitFor(ctx context.Context, position int64, projectors ...string) error
}

// Queries is every query handler of Engram, built in one place.
type Queries struct {
	Me                *MeHandler
	ListWorkspaces    *ListWorkspacesHandler
	GetWorkspace      *GetWorkspaceHandler
	ListMembers       *ListMembersHandler
	ListConversations *ListConversationsHandler
	GetConversation   *GetConversationHandler
	ListMessages      *ListMessagesHandler
	ListSessions      *ListSessionsHandler
	ListAPIKeys       *ListAPIKeysHandler
	Credentials       *CredentialsHandler
	Memberships       *MembershipsHandler

	// Cognition: tasks and workspace memory.
	GetTask       *GetTaskHandler
	SearchMemory  *SearchMemoryHandler
	MemoryContext *MemoryContextHandler
}

// New builds every query handler over the read models in db.
func New(db *sqlx.DB, waiter Waiter, opts ...Option) (Queries, error) {
	if db == nil || waiter == nil {
		return Queries{}, errors.New("queries: db and waiter are required")
	}
	r := &reader{db: db, waiter: waiter, timeout: DefaultWaitTimeout}
	for _, o := range opts {
		o(r)
	}
	return Queries{
		Me:                &MeHandler{r},
		ListWorkspaces:    &ListWorkspacesHandler{r},
		GetWorkspace:      &GetWorkspaceHandler{r},
		ListMembers:       &ListMembersHandler{r},
		ListConversations: &ListConversationsHandler{r},
		GetConversation:   &GetConversationHandler{r},
		ListMessages:      &ListMessagesHandler{r},
		ListSessions:      &ListSessionsHandler{r},
		ListAPIKeys:       &ListAPIKeysHandler{r},
		Credentials:       &CredentialsHandler{r},
		Memberships:       &MembershipsHandler{r},

		GetTask:       &GetTaskHandler{r},
		SearchMemory:  &SearchMemoryHandler{r: r, memory: postgres.NewMemory(db), now: time.Now},
		MemoryContext: &MemoryContextHandler{r: r, memory: postgres.NewMemory(db), now: time.Now},
	}, nil
}

// reader is what every handler shares: the database and the waiter (and
// the hot read models, when there are some).
type reader struct {
	db          *sqlx.DB
	waiter      Waiter
	hot         HotReads
	timeout     time.Duration // bounds a wait for a hot read model
	cache       Cache
	checkpoints CheckpointReader
}

// wait applies read-your-writes: it waits until the projector, and every
// other projector named (such as the memberships that authorize the read),
// has applied minPosition.
func (r *reader) wait(ctx context.Context, projector string, minPosition int64, also ...string) error {
	err := r.waiter.WaitFor(ctx, minPosition, append([]string{projector}, also...)...)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, projections.ErrUnknownPosition):
		return &domain.Error{Code: domain.CodeInvalid, Message: "validation failed",
			Fields: []domain.FieldError{{Field: "Engram-Min-Position", Message: "no event has this position"}}}
	default:
		return err
	}
}

// memberRole returns the actor's role in a workspace from the membership read
// model ("" when not a member).
func (r *reader) memberRole(ctx context.Context, workspaceID, userID string) (string, error) {
	var role string
	err := r.db.GetContext(ctx, &role, `SELECT role FROM workspace_members WHERE workspace_id = $1 AND user_id = $2`, workspaceID, userID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return role, err
}

// authorize applies the policy to a workspace resource.
func (r *reader) authorize(ctx context.Context, actor access.Actor, action access.Action, workspaceID string) (string, error) {
	role, err := r.memberRole(ctx, workspaceID, actor.UserID)
	if err != nil {
		return "", fmt.Errorf("membership: %w", err)
	}
	return role, access.CheckWorkspace(actor, action, role)
}

// Limits of list pages.
const (
	DefaultLimit = 50
	MaxLimit     = 200
)

// PageRequest asks for one page.
type PageRequest struct {
	Cursor string
	Limit  int
}

func (p PageRequest) limit() int {
	switch {
	case p.Limit <= 0:
		return DefaultLimit
	case p.Limit > MaxLimit:
		return MaxLimit
	}
	return p.Limit
}

// timeCursor is the position of a row in a (time DESC, id DESC) order.
type timeCursor struct {
	T  time.Time `json:"t"`
	ID string    `json:"id"`
}

func encodeCursor(c timeCursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor parses a list cursor; exported so transport can validate
// early and fuzz tests can reach it.
func decodeCursor(s string) (*timeCursor, error) {
	if s == "" {
		return nil, nil
	}
	if len(s) > 512 {
		return nil, invalidCursor()
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, invalidCursor()
	}
	var c timeCursor
	if err := json.Unmarshal(b, &c); err != nil || c.ID == "" || c.T.IsZero() {
		return nil, invalidCursor()
	}
	return &c, nil
}

func invalidCursor() error {
	return &domain.Error{Code: domain.CodeInvalid, Message: "validation failed",
		Fields: []domain.FieldError{{Field: "cursor", Message: "is not a cursor returned by this list"}}}
}

// getRow reads the one row query selects into a T; no row is the
// not-found error of what.
func getRow[T any](ctx context.Context, r *reader, what, query string, args ...any) (T, error) {
	var v T
	err := r.db.GetContext(ctx, &v, query, args...)
	if errors.Is(err, sql.ErrNoRows) {
		var zero T
		return zero, notFound(what)
	}
	if err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

func notFound(what string) error { return domain.Errorf(domain.CodeNotFound, "%s not found", what) }
