// Package eventgen appends realistic histories straight through
// eventstore.Store.Append, for tests and benchmarks that need many events
// faster than the HTTP API would write them: users with sessions, workspaces
// with members, updates and removals, conversations and, mostly, messages.
package eventgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/domain/session"
	"github.com/engramhq/engram/domain/user"
	"github.com/engramhq/engram/domain/workspace"
	"github.com/engramhq/engram/eventstore"
)

// Appender is the part of the event store a history is appended through.
type Appender interface {
	eventstore.Appender
	eventstore.StreamReader
}

// Generator appends histories; it remembers the streams it made, so that
// later calls extend them. It is not safe for concurrent use.
type Generator struct {
	store    Appender
	rng      *rand.Rand
	versions map[string]int

	users         []string
	workspaces    []string
	owners        map[string]string
	conversations []string
	// Batch is the largest number of messages appended to a conversation
	// in one Append (default 200).
	Batch int
	// Roles are the roles messages are posted with, picked at random
	// (default user only). A running instance's cognition reacts to
	// messages from users only.
	Roles []string
}

// New returns a Generator appending to store, its choices drawn from seed.
func New(store Appender, seed uint64) *Generator {
	return &Generator{store: store, rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), versions: map[string]int{},
		owners: map[string]string{}, Batch: 200, Roles: []string{"user"}}
}

// Users returns the ids of the users made so far.
func (g *Generator) Users() []string { return g.users }

// Conversations returns the ids of the conversations made so far.
func (g *Generator) Conversations() []string { return g.conversations }

// Append appends about n events (at least n, at most one batch more): one
// user per 1,000 events, one workspace per 2,000 and one conversation per
// 200 (at least 3, 2 and 5 of them), every user with a session, every
// workspace with members (some removed, some updated); messages fill the
// rest. It reports the number of events appended.
func (g *Generator) Append(ctx context.Context, n int) (int, error) {
	written := 0
	add := func(k int, err error) error {
		written += k
		return err
	}
	for range max(n/1000, 3) {
		if err := add(g.user(ctx)); err != nil {
			return written, err
		}
	}
	for range max(n/2000, 2) {
		if err := add(g.workspace(ctx)); err != nil {
			return written, err
		}
	}
	for range max(n/200, 5) {
		if err := add(g.conversation(ctx)); err != nil {
			return written, err
		}
	}
	for written < n {
		k := min(1+g.rng.IntN(g.Batch), n-written)
		if err := add(g.messages(ctx, k)); err != nil {
			return written, err
		}
	}
	return written, nil
}

func (g *Generator) append(ctx context.Context, streamType, id string, events ...eventstore.NewEvent) (int, error) {
	stream := eventstore.Stream{ID: streamType + "-" + id, Type: streamType}
	v := g.versions[stream.ID]
	md := eventstore.Metadata{ActorID: "eventgen", CorrelationID: uuid.NewString()}
	for attempt := 0; ; attempt++ {
		_, err := g.store.Append(ctx, stream, v, events, md)
		if err == nil {
			break
		}
		// A running instance may write to the same streams (routing
		// decisions on conversations): catch up with the stream and retry.
		if !errors.Is(err, eventstore.ErrConcurrency) || attempt == 10 {
			return 0, fmt.Errorf("append to %s: %w", stream.ID, err)
		}
		later, rerr := g.store.ReadStream(ctx, stream.ID, v)
		if rerr != nil {
			return 0, fmt.Errorf("read %s: %w", stream.ID, rerr)
		}
		if n := len(later); n > 0 {
			v = later[n-1].StreamVersion
		}
	}
	g.versions[stream.ID] = v + len(events)
	return len(events), nil
}

func event(eventType string, data any) eventstore.NewEvent {
	b, err := json.Marshal(data)
	if err != nil {
		panic(err) // the data types above always marshal
	}
	return eventstore.NewEvent{ID: uuid.NewString(), Type: eventType, Data: b}
}

func (g *Generator) pick(ids []string) string { return ids[g.rng.IntN(len(ids))] }

func (g *Generator) user(ctx context.Context) (int, error) {
	id := uuid.NewString()
	n, err := g.append(ctx, user.StreamType, id, event(user.EventRegistered, user.Registered{
		UserID: id, Email: id[:8] + "@example.com", DisplayName: "User " + id[:4], PasswordHash: "not-a-hash", Role: "user",
	}))
	if err != nil {
		return n, err
	}
	g.users = append(g.users, id)
	sid := uuid.NewString()
	m, err := g.append(ctx, session.StreamType, sid, event(session.EventStarted, session.Started{
		SessionID: sid, UserID: id, RefreshTokenHash: "h-" + sid, UserAgent: "eventgen", IP: "127.0.0.1",
		ExpiresAt: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC),
	}))
	return n + m, err
}

func (g *Generator) workspace(ctx context.Context) (int, error) {
	id, owner := uuid.NewString(), g.pick(g.users)
	events := []eventstore.NewEvent{event(workspace.EventCreated, workspace.Created{
		WorkspaceID: id, OwnerID: owner, Name: "Workspace " + id[:4], Description: "generated",
		Config: json.RawMessage(fmt.Sprintf(`{"seed":%d,"nested":{"b":1,"a":[1,2]}}`, g.rng.IntN(1000))),
	})}
	members := map[string]bool{owner: true}
	for range 2 {
		if m := g.pick(g.users); !members[m] {
			members[m] = true
			events = append(events, event(workspace.EventMemberAdded, workspace.MemberAdded{UserID: m, Role: "editor"}))
		}
	}
	if g.rng.IntN(2) == 0 {
		name := "Renamed " + id[:4]
		events = append(events, event(workspace.EventUpdated, workspace.Updated{Name: &name, Config: json.RawMessage(`{"renamed":true}`)}))
	}
	for m := range members {
		if m != owner && g.rng.IntN(3) == 0 {
			events = append(events, event(workspace.EventMemberRemoved, workspace.MemberRemoved{UserID: m}))
			break
		}
	}
	n, err := g.append(ctx, workspace.StreamType, id, events...)
	if err == nil {
		g.workspaces = append(g.workspaces, id)
		g.owners[id] = owner
	}
	return n, err
}

func (g *Generator) conversation(ctx context.Context) (int, error) {
	id, ws := uuid.NewString(), g.pick(g.workspaces)
	n, err := g.append(ctx, conversation.StreamType, id, event(conversation.EventCreated, conversation.Created{
		ConversationID: id, WorkspaceID: ws, CreatedBy: g.owners[ws], Title: "Conversation " + id[:4], Modality: "text",
		Metadata: json.RawMessage(`{}`),
	}))
	if err == nil {
		g.conversations = append(g.conversations, id)
	}
	return n, err
}

func (g *Generator) messages(ctx context.Context, k int) (int, error) {
	id := g.pick(g.conversations)
	events := make([]eventstore.NewEvent, 0, k)
	for len(events) < k {
		md := json.RawMessage(`{}`)
		if g.rng.IntN(4) == 0 {
			md = json.RawMessage(fmt.Sprintf(`{"n":%d,"tag":"t%d","aa":1.50}`, g.rng.IntN(100), g.rng.IntN(10)))
		}
		mid := uuid.NewString()
		events = append(events, event(conversation.EventMessagePosted, conversation.MessagePosted{
			MessageID: mid, AuthorID: g.pick(g.users), Role: g.pick(g.Roles),
			Content: fmt.Sprintf("message %d of a generated history", g.rng.IntN(1_000_000)), Metadata: md,
		}))
		switch r := g.rng.IntN(100); {
		case r < 10 && len(events) < k:
			events = append(events, event(conversation.EventRoutingDecided, conversation.RoutingDecided{
				MessageID: mid, Action: "answer", Expert: "general", Priority: 1, Reason: "generated",
			}))
		case r < 11 && len(events) < k:
			title := "Retitled " + mid[:4]
			events = append(events, event(conversation.EventUpdated, conversation.Updated{
				Title: &title, Metadata: json.RawMessage(`{"retitled":true,"b":[1,2]}`),
			}))
		}
	}
	return g.append(ctx, conversation.StreamType, id, events...)
}
