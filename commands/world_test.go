package commands_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/catalog"
	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/domain/domaintest"
	"github.com/engramhq/engram/domain/user"
	"github.com/engramhq/engram/domain/workspace"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/eventstore/inmem"
)

var _ commands.EventStore = (*inmem.Store)(nil)

// The ids of the world the command handlers are tested in: a workspace
// owned by ada, where bob is an editor and cy a viewer, with one
// conversation; eve is a stranger to it.
const (
	adaID  = "0190a6f4-0000-7000-8000-00000000000a"
	bobID  = "0190a6f4-0000-7000-8000-00000000000b"
	cyID   = "0190a6f4-0000-7000-8000-00000000000c"
	eveID  = "0190a6f4-0000-7000-8000-00000000000e"
	wsID   = "0190a6f4-0000-7000-8000-0000000000f1"
	convID = "0190a6f4-0000-7000-8000-0000000000c1"
	msgID  = "0190a6f4-0000-7000-8000-0000000000d1"
	taskID = "0190a6f4-0000-7000-8000-0000000000e1"
	// missingID is a well-formed id that names nothing.
	missingID = "0190a6f4-0000-7000-8000-000000000404"
)

var (
	ada   = access.Actor{UserID: adaID, Roles: []string{access.RoleUser}, SessionID: "s-ada"}
	bob   = access.Actor{UserID: bobID, Roles: []string{access.RoleUser}, SessionID: "s-bob"}
	cy    = access.Actor{UserID: cyID, Roles: []string{access.RoleUser}, SessionID: "s-cy"}
	eve   = access.Actor{UserID: eveID, Roles: []string{access.RoleUser}, SessionID: "s-eve"}
	admin = access.Actor{UserID: eveID, Roles: []string{access.RoleUser, access.RoleAdmin}, SessionID: "s-admin"}
	// bobKey is bob with a read-only API key.
	bobKey = access.Actor{UserID: bobID, Roles: []string{access.RoleUser}, Scopes: []string{access.ScopeRead}, KeyID: "k-bob"}
)

// t0 is the clock of the world.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// given is the events of one stream, recorded before the command.
type given struct {
	kind   catalog.Kind
	id     string
	events []domain.Event
	claims []eventstore.Claim
}

func stream(k catalog.Kind, id string, events ...domain.Event) given {
	return given{kind: k, id: id, events: events}
}

// registered is the stream of an account, with its claim on the e-mail
// address; its password is "password-" followed by its e-mail address.
func registered(id, email string, more ...domain.Event) given {
	g := stream(catalog.Users.Kind, id, append([]domain.Event{user.Registered{UserID: id, Email: email,
		DisplayName: strings.Split(email, "@")[0], PasswordHash: "hash:password-" + email, Role: user.RoleUser}}, more...)...)
	g.claims = []eventstore.Claim{{Scope: commands.EmailClaimScope, Value: email}}
	return g
}

// team is the workspace of ada, bob and cy; more events follow its own.
func team(more ...domain.Event) given {
	return stream(catalog.Workspaces.Kind, wsID, append([]domain.Event{
		workspace.Created{WorkspaceID: wsID, OwnerID: adaID, Name: "Team", Config: object(`{}`)},
		workspace.MemberAdded{UserID: bobID, Role: workspace.RoleEditor},
		workspace.MemberAdded{UserID: cyID, Role: workspace.RoleViewer},
	}, more...)...)
}

// plans is a conversation of the team with one message of bob's.
func plans(more ...domain.Event) given {
	return stream(catalog.Conversations.Kind, convID, append([]domain.Event{
		conversation.Created{ConversationID: convID, WorkspaceID: wsID, CreatedBy: adaID, Title: "Plans",
			Modality: conversation.ModalityText, Metadata: object(`{}`)},
		conversation.MessagePosted{MessageID: msgID, AuthorID: bobID, Role: conversation.RoleUser, Content: "hello",
			Metadata: object(`{}`)},
	}, more...)...)
}

func object(s string) json.RawMessage { return json.RawMessage(s) }

// world is the command handlers over an in-memory event store holding the
// given events, with a fixed clock and predictable secrets.
type world struct {
	ctx     context.Context
	store   *inmem.Store
	cmds    commands.Commands
	grant   *commands.GrantRoleHandler
	secrets *secrets
	// after is the position of the last given event.
	after int64
}

func newWorld(t *testing.T, given ...given) *world {
	t.Helper()
	store := inmem.New(inmem.WithClock(func() time.Time { return t0 }))
	for _, g := range given {
		events := make([]eventstore.NewEvent, len(g.events))
		for i, e := range g.events {
			data, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			events[i] = eventstore.NewEvent{ID: fmt.Sprintf("given-%s-%d", g.kind.StreamID(g.id), i), Type: e.EventType(), Data: data}
		}
		if _, err := store.Append(t.Context(), eventstore.Stream{ID: g.kind.StreamID(g.id), Type: g.kind.Type},
			eventstore.NoStream, events, eventstore.Metadata{ActorID: "given"}, eventstore.WithClaims(g.claims...)); err != nil {
			t.Fatalf("given %s: %v", g.kind.StreamID(g.id), err)
		}
	}
	w := &world{ctx: t.Context(), store: store, secrets: &secrets{}}
	var err error
	w.cmds, err = commands.New(commands.Dependencies{Store: store, Hasher: hasher{}, Tokens: tokens{}, Secrets: w.secrets,
		RefreshTTL: time.Hour, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	if w.grant, err = commands.NewGrantRoleHandler(store); err != nil {
		t.Fatal(err)
	}
	if w.after, err = store.LastPosition(t.Context()); err != nil {
		t.Fatal(err)
	}
	return w
}

// recorded returns the events appended since the given ones, decoded, and
// their metadata.
func (w *world) recorded(t *testing.T) ([]domain.Event, []eventstore.Metadata) {
	t.Helper()
	stored, err := w.store.ReadAll(w.ctx, w.after, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var (
		events []domain.Event
		mds    []eventstore.Metadata
	)
	for _, e := range stored {
		k, ok := catalog.Lookup(e.StreamType)
		if !ok {
			t.Fatalf("event %s of stream type %q, missing from the catalogue", e.Type, e.StreamType)
		}
		d, err := k.Decode(e.Type, e.SchemaVersion, e.Data)
		if err != nil {
			t.Fatal(err)
		}
		events, mds = append(events, d), append(mds, e.Metadata)
	}
	return events, mds
}

// handlerCase is one test of a command handler: given the events of some
// streams, when the command runs — when returns the events it should
// record, built with what its result names (new ids) — then exactly those
// are recorded, or it fails with code (for CodeInvalid, on fields) or with
// an error that wraps err.
type handlerCase struct {
	name   string
	given  []given
	when   func(w *world) ([]domain.Event, error)
	code   string
	fields []string
	err    error
	// actor, when set, is the actor recorded with every event.
	actor string
}

func run(t *testing.T, cases []handlerCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, c.given...)
			want, err := c.when(w)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("error = %v, want %v", err, c.err)
				}
				err = nil
			}
			got, mds := w.recorded(t)
			domaintest.CheckOutcome(t, err, c.code, c.fields, got, want)
			for i, md := range mds {
				if c.actor != "" && md.ActorID != c.actor {
					t.Fatalf("event %d recorded with actor %q, want %q", i, md.ActorID, c.actor)
				}
			}
		})
	}
}

// then is what a command's when returns: the events it should have
// recorded, or none when it failed with err.
func then(err error, events ...domain.Event) ([]domain.Event, error) {
	if err != nil {
		return nil, err
	}
	return events, nil
}

// hasher "hashes" a password p as "hash:p".
type hasher struct{}

func (hasher) Hash(p string) (string, error)       { return "hash:" + p, nil }
func (hasher) Verify(p, hash string) (bool, error) { return hash == "hash:"+p, nil }
func (hasher) VerifyDummy(string)                  {}
func (tokens) Issue(subject, sessionID string, _ []string) (string, time.Time, error) {
	return "access:" + subject + ":" + sessionID, t0.Add(15 * time.Minute), nil
}

// tokens issues access tokens that name their subject and session.
type tokens struct{}

// secrets makes the secrets prefix+"secret-1", prefix+"secret-2"… and
// "hashes" secret s as "h:s".
type secrets struct{ n atomic.Int64 }

func (s *secrets) NewSecret(prefix string) (string, error) {
	return fmt.Sprintf("%ssecret-%032d", prefix, s.n.Add(1)), nil
}

func (*secrets) HashSecret(secret string) string { return "h:" + secret }
