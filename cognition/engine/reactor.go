package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/engramhq/engram/cognition"
	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/catalog"
	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/domain/task"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/platform/livebus"
	"github.com/engramhq/engram/projections"
)

// ReactorName is the name of the reactor's checkpoint. It is a stable identity:
// renaming it replays the whole log into the reactor (harmlessly, but
// slowly).
const ReactorName = "cognition"

// ReactorConfig configures a Reactor.
type ReactorConfig struct {
	Commands commands.Commands
	Router   cognition.Router
	// Signals, when set, receives status signals ("Remembered: Ada").
	Signals cognition.SignalPublisher
	// Submitted, when set, is told of every task the reactor submits, so
	// that a local worker can start it at once. It must not block.
	Submitted func(taskID string)
	// MaxAge is how old a message may be and still be routed: older ones,
	// met when the log is replayed into a new reactor, are remembered but
	// not answered (default 10 minutes).
	MaxAge time.Duration
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Reactor reacts to the events of the log: for every message posted it
// remembers the message and, when a user posted it, asks the router, records
// its decision and acts on it (submits a task or remembers an entity); for
// every completed task it posts the answer. Each reaction is a few appends
// and takes milliseconds: it runs in projections.Reactions (concurrently
// across conversations, in order within one), and the experts run
// in a Worker.
//
// A Reactor is a projections.Reactor so that it is fed, retried and
// parked like the projectors; its reactions are commands of their own.
type Reactor struct {
	cfg ReactorConfig
	sig signaler
}

var _ projections.RunReactor = (*Reactor)(nil)

// NewReactor returns a Reactor. It refuses a missing router or commands.
func NewReactor(cfg ReactorConfig) (*Reactor, error) {
	c := cfg.Commands
	if cfg.Router == nil || c.DecideRouting == nil || c.SubmitTask == nil || c.RememberMessage == nil ||
		c.RememberEntity == nil || c.PostReply == nil {
		return nil, errors.New("engine: reactor needs a router and the cognition commands")
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 10 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Submitted == nil {
		cfg.Submitted = func(string) {}
	}
	logger := cfg.Logger.With("component", ReactorName)
	cfg.Logger = logger
	return &Reactor{cfg: cfg, sig: signaler{publisher: cfg.Signals, logger: logger}}, nil
}

// Name returns the checkpoint's name, "cognition".
func (r *Reactor) Name() string { return ReactorName }

// OrderKey orders reactions by stream: the messages of one conversation are
// reacted to in order, those of different conversations (and tasks) at the
// same time.
func (r *Reactor) OrderKey(e eventstore.Event) string { return e.StreamID }

// Wants reports whether the reactor reacts to e: a message posted or a task
// completed. The other events are passed over.
func (r *Reactor) Wants(e eventstore.Event) bool {
	return e.Type == conversation.EventMessagePosted || e.Type == task.EventCompleted
}

// Apply reacts to one event. It returns an error only for failures worth
// retrying (the database is unreachable); an event that cannot be acted on
// (its conversation was archived meanwhile) is logged and skipped.
func (r *Reactor) Apply(ctx context.Context, _ projections.Execer, e eventstore.Event) error {
	var err error
	switch e.Type {
	case conversation.EventMessagePosted:
		err = r.onMessage(ctx, e)
	case task.EventCompleted:
		err = r.onCompleted(ctx, e)
	default:
		return nil
	}
	return r.settled(e, err)
}

// onMessage remembers a message and routes a user's.
func (r *Reactor) onMessage(ctx context.Context, e eventstore.Event) error {
	st, err := r.prepare(ctx, e)
	if err != nil {
		return err
	}
	if !st.routed {
		return r.rememberOnly(st)
	}
	routed, err := r.cfg.Commands.DecideRouting.Handle(st.ctx, st.decision())
	if err != nil {
		return err
	}
	return r.act(st, routed)
}

// step is a message reacted to: the context its commands run in (caused by
// the message's event), and, for a user's message to route, the router's
// decision.
type step struct {
	ctx            context.Context
	conversationID string
	m              conversation.MessagePosted
	isCommand      bool
	// routed: the message is a user's, recent enough to be routed, and d
	// is the router's decision. Otherwise the message is only remembered.
	routed bool
	d      cognition.Decision
	// refused: the routing was refused (the conversation was archived
	// meanwhile): nothing more is done.
	refused bool
}

// prepare decodes a message, and routes it when it is a user's: everything
// a reaction does before it writes.
func (r *Reactor) prepare(ctx context.Context, e eventstore.Event) (step, error) {
	ev, err := conversation.Decode(e.Type, e.SchemaVersion, e.Data)
	if err != nil {
		return step{}, err
	}
	m := ev.(conversation.MessagePosted)
	correlation := e.Metadata.CorrelationID
	if correlation == "" {
		correlation = e.EventID
	}
	st := step{
		ctx:            commands.WithMetadata(ctx, eventstore.Metadata{CorrelationID: correlation, CausationID: e.EventID, ActorID: ActorID}),
		conversationID: catalog.Conversations.ID(e.StreamID),
		m:              m,
		isCommand:      strings.HasPrefix(strings.TrimSpace(m.Content), "/"),
	}
	if m.Role != conversation.RoleUser || r.cfg.Now().Sub(e.RecordedAt) > r.cfg.MaxAge {
		return st, nil
	}
	msg := cognition.Message{ID: m.MessageID, ConversationID: st.conversationID, AuthorID: m.AuthorID, Role: m.Role,
		Content: m.Content, Metadata: m.Metadata}
	if st.d, err = r.cfg.Router.Route(st.ctx, msg); err != nil {
		return step{}, fmt.Errorf("route message %s: %w", m.MessageID, err)
	}
	if err := st.d.Validate(); err != nil {
		return step{}, fmt.Errorf("route message %s: the router decided %+v: %w", m.MessageID, st.d, err)
	}
	st.routed = true
	return st, nil
}

// rememberOnly is the reaction to a message that is not routed: it is
// remembered, unless it is a command.
func (r *Reactor) rememberOnly(st step) error {
	if st.isCommand {
		return nil
	}
	return r.remember(st.ctx, st.conversationID, st.m)
}

// decision is the routing command of a routed step.
func (st step) decision() commands.DecideRouting {
	return commands.DecideRouting{ConversationID: st.conversationID, MessageID: st.m.MessageID, Action: st.d.Action,
		Expert: st.d.Expert, Priority: st.d.Priority, Reason: st.d.Reason}
}

// act does what the routing decision on record says: it remembers the
// message and hands it on.
func (r *Reactor) act(st step, routed commands.RoutingResult) error {
	d, m := st.d, st.m
	if routed.AlreadyDecided {
		// The decision on record wins: a replay acts as the first time did.
		rec := routed.Decision
		if rec.Action != d.Action || rec.Expert != d.Expert {
			d.Input = m.Content
		}
		d.Action, d.Expert, d.Priority, d.Reason = rec.Action, rec.Expert, rec.Priority, rec.Reason
	}
	// Remembering the message and handing it on touch different streams:
	// they are appended side by side, one round trip where there were two.
	var remembered error
	var wg sync.WaitGroup
	if d.Action != cognition.ActionProcess && !st.isCommand {
		wg.Go(func() { remembered = r.remember(st.ctx, st.conversationID, m) })
	}
	var handed error
	switch d.Action {
	case cognition.ActionRespond, cognition.ActionDelegate:
		handed = r.submit(st.ctx, routed.WorkspaceID, st.conversationID, m, d)
	case cognition.ActionProcess:
		handed = r.rememberEntity(st.ctx, routed.WorkspaceID, st.conversationID, m, d.Input)
	}
	wg.Wait()
	return retryableFirst(remembered, handed)
}

// ApplyRun reacts to a run of events of one order key as Apply does to each
// in order, with fewer round trips: the routing decisions of a
// conversation's messages are recorded together, in order, in one append,
// and what follows them — remembering, handing on — runs side by side. A
// run that is not a conversation's messages is reacted to one event at a
// time. Any failure but a refusal of the domain fails the run; the caller
// then reacts to its events one at a time, which repeats nothing.
func (r *Reactor) ApplyRun(ctx context.Context, events []eventstore.Event) error {
	if slices.ContainsFunc(events, func(e eventstore.Event) bool { return e.Type != conversation.EventMessagePosted }) {
		for _, e := range events {
			if err := r.Apply(ctx, nil, e); err != nil {
				return err
			}
		}
		return nil
	}
	steps := make([]step, len(events))
	var routed []int
	for i, e := range events {
		st, err := r.prepare(ctx, e)
		if err != nil {
			return err
		}
		steps[i] = st
		if st.routed {
			routed = append(routed, i)
		}
	}
	results := make([]commands.RoutingResult, len(events))
	if len(routed) > 0 {
		ctxs, cmds := make([]context.Context, len(routed)), make([]commands.DecideRouting, len(routed))
		for k, i := range routed {
			ctxs[k], cmds[k] = steps[i].ctx, steps[i].decision()
		}
		outs, errs := r.cfg.Commands.DecideRouting.HandleEach(ctxs, steps[routed[0]].conversationID, cmds)
		for k, i := range routed {
			if err := r.settled(events[i], errs[k]); err != nil {
				return err
			}
			steps[i].refused = errs[k] != nil
			results[i] = outs[k]
		}
	}
	errs := make([]error, len(events))
	var wg sync.WaitGroup
	for i := range steps {
		wg.Go(func() {
			switch {
			case steps[i].refused:
			case steps[i].routed:
				errs[i] = r.act(steps[i], results[i])
			default:
				errs[i] = r.rememberOnly(steps[i])
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err := r.settled(events[i], err); err != nil {
			return err
		}
	}
	return nil
}

// settled returns err when a reaction to e must be tried again; a refusal
// of the domain is logged and ends it, as in Apply.
func (r *Reactor) settled(e eventstore.Event, err error) error {
	if code := domain.ErrorCode(err); code != "" {
		r.cfg.Logger.Warn("event not acted on", "position", e.GlobalPosition, "type", e.Type, "stream_id", e.StreamID,
			"code", code, "err", err)
		return nil
	}
	return err
}

// retryableFirst returns the one of two errors of steps run side by side
// that decides the reaction's fate: a failure it can be tried again for
// before a refusal of the domain, which ends it.
func retryableFirst(a, b error) error {
	for _, err := range []error{a, b} {
		if err != nil && domain.ErrorCode(err) == "" {
			return err
		}
	}
	if a != nil {
		return a
	}
	return b
}

func (r *Reactor) remember(ctx context.Context, conversationID string, m conversation.MessagePosted) error {
	_, err := r.cfg.Commands.RememberMessage.Handle(ctx, commands.RememberMessage{ConversationID: conversationID,
		MessageID: m.MessageID, ItemID: MessageItemID(m.MessageID), Role: m.Role, AuthorID: m.AuthorID, Content: m.Content})
	return err
}

func (r *Reactor) submit(ctx context.Context, workspaceID, conversationID string, m conversation.MessagePosted, d cognition.Decision) error {
	id := TaskID(m.MessageID)
	input := d.Input
	if n := len([]rune(input)); n > task.MaxInputRunes {
		input = string([]rune(input)[:task.MaxInputRunes])
	}
	_, err := r.cfg.Commands.SubmitTask.Handle(ctx, commands.SubmitTask{TaskID: id, WorkspaceID: workspaceID,
		ConversationID: conversationID, MessageID: m.MessageID, RequestedBy: m.AuthorID, Expert: d.Expert, Input: input,
		Priority: d.Priority})
	if domain.ErrorCode(err) == domain.CodeConflict {
		return nil // submitted before: a redelivery or a replay
	}
	if err != nil {
		return err
	}
	r.cfg.Submitted(id)
	return nil
}

// rememberEntity carries out "/remember": the input names an entity and
// says what to remember about it.
func (r *Reactor) rememberEntity(ctx context.Context, workspaceID, conversationID string, m conversation.MessagePosted, input string) error {
	name, content := entityOf(input)
	if name == "" {
		r.sig.publish(ctx, livebus.TypeStatus, workspaceID, conversationID, ActorID,
			statusData{State: "ignored", Text: "Nothing to remember: write /remember <name>: <what to remember>."})
		return nil
	}
	res, err := r.cfg.Commands.RememberEntity.Handle(ctx, commands.RememberEntity{ConversationID: conversationID,
		MessageID: m.MessageID, ItemID: EntityItemID(m.MessageID), Name: name, Content: content})
	if err != nil || res.AlreadyRemembered {
		return err
	}
	r.sig.publish(ctx, livebus.TypeStatus, workspaceID, conversationID, ActorID,
		statusData{State: "remembered", Text: "Remembered: " + name})
	return nil
}

// entityOf reads "/remember" input: "<name>: <what>" or "<name> is <what>"
// name an entity (of at most 60 characters); anything else is remembered
// under its own first words. The content is the whole statement, so that a
// search for the name finds it.
func entityOf(input string) (name, content string) {
	input = strings.TrimSpace(input)
	if input == "" {
		return "", ""
	}
	if n, c, ok := strings.Cut(input, ":"); ok && strings.TrimSpace(n) != "" && len([]rune(strings.TrimSpace(n))) <= 60 {
		if strings.TrimSpace(c) != "" {
			return strings.TrimSpace(n), input
		}
	}
	for _, verb := range []string{" is ", " are ", " was ", " were "} {
		if i := strings.Index(strings.ToLower(input), verb); i > 0 && len([]rune(input[:i])) <= 60 {
			return strings.TrimSpace(input[:i]), input
		}
	}
	return cognition.Excerpt(input, 60), input
}

// onCompleted posts a completed task's answer (the worker that completed
// it usually has, and then nothing is written).
func (r *Reactor) onCompleted(ctx context.Context, e eventstore.Event) error {
	ev, err := task.Decode(e.Type, e.SchemaVersion, e.Data)
	if err != nil {
		return err
	}
	completed, ok := ev.(task.Completed)
	if !ok {
		return fmt.Errorf("event %d is not a task completion", e.GlobalPosition)
	}
	_, err = r.cfg.Commands.PostReply.Handle(ctx, commands.PostReply{TaskID: catalog.Tasks.ID(e.StreamID), Completed: &completed})
	return err
}
