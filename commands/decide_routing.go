package commands

import (
	"context"
	"fmt"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/conversation"
)

// DecideRouting records how a message is to be handled.
type DecideRouting struct {
	ConversationID string
	MessageID      string
	Action         string
	Expert         string
	Priority       int
	Reason         string
}

// RoutingResult is the routing decision on record for a message.
type RoutingResult struct {
	Decision    conversation.RoutingDecided
	WorkspaceID string
	// AlreadyDecided is true when the message's routing had been decided
	// before: Decision is that earlier decision and nothing was written.
	AlreadyDecided bool
	Written
}

// DecideRoutingHandler handles DecideRouting.
type DecideRoutingHandler struct {
	repos *cognitionRepositories
}

// Handle records conversation.routing_decided. When the message's routing
// was already decided it writes nothing and returns the decision on record,
// so that a redelivered message goes on exactly as the first time. It fails
// with CodeNotFound when the message is not in the conversation and with
// CodeConflict when the conversation is archived.
func (h *DecideRoutingHandler) Handle(ctx context.Context, cmd DecideRouting) (RoutingResult, error) {
	if err := validID("conversation_id", cmd.ConversationID); err != nil {
		return RoutingResult{}, err
	}
	var out RoutingResult
	w, err := h.repos.conversations.update(ctx, cmd.ConversationID, decideRouting(cmd, &out))
	if err != nil {
		return RoutingResult{}, err
	}
	return h.result(ctx, cmd.ConversationID, cmd.MessageID, out, w)
}

// HandleEach is Handle for several messages of one conversation, each
// command with its own context (its causation): the decisions are queued
// together, in order, and go out in one append where one after the other
// took a round trip each. Each command gets its own outcome.
func (h *DecideRoutingHandler) HandleEach(ctxs []context.Context, conversationID string, cmds []DecideRouting) ([]RoutingResult, []error) {
	outs, errs := make([]RoutingResult, len(cmds)), make([]error, len(cmds))
	if err := validID("conversation_id", conversationID); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return outs, errs
	}
	decides := make([]decideFunc[*conversation.Conversation], len(cmds))
	for i, cmd := range cmds {
		decides[i] = decideRouting(cmd, &outs[i])
	}
	written, errs := h.repos.conversations.updateEach(ctxs, conversationID, decides)
	for i := range cmds {
		if errs[i] == nil {
			outs[i], errs[i] = h.result(ctxs[i], conversationID, cmds[i].MessageID, outs[i], written[i])
		} else {
			outs[i] = RoutingResult{}
		}
	}
	return outs, errs
}

// decideRouting decides cmd on the conversation, keeping in *out what a
// caller is told.
func decideRouting(cmd DecideRouting, out *RoutingResult) decideFunc[*conversation.Conversation] {
	return func(c *conversation.Conversation) error {
		*out = RoutingResult{WorkspaceID: c.WorkspaceID()}
		if c.Archived() {
			return domain.Errorf(domain.CodeConflict, "conversation is archived")
		}
		if err := c.DecideRouting(cmd.MessageID, cmd.Action, cmd.Expert, cmd.Priority, cmd.Reason); err != nil {
			if domain.ErrorCode(err) == domain.CodeConflict {
				out.AlreadyDecided = true // on record already: nothing to write
				return nil
			}
			return err
		}
		pending := c.Pending()
		out.Decision = pending[len(pending)-1].(conversation.RoutingDecided)
		return nil
	}
}

// result completes what the decision on a message left in out: the
// decision on record when it had been decided before, or what was written.
func (h *DecideRoutingHandler) result(ctx context.Context, conversationID, messageID string, out RoutingResult, w Written) (RoutingResult, error) {
	if out.AlreadyDecided {
		var err error
		out.Decision, err = h.recorded(ctx, conversationID, messageID)
		return out, err
	}
	out.Written = w
	return out, nil
}

// recorded finds the routing decision stored for a message.
func (h *DecideRoutingHandler) recorded(ctx context.Context, conversationID, messageID string) (conversation.RoutingDecided, error) {
	events, err := h.repos.store.ReadStream(ctx, conversation.StreamID(conversationID), 0)
	if err != nil {
		return conversation.RoutingDecided{}, fmt.Errorf("read conversation %s: %w", conversationID, err)
	}
	for _, e := range events {
		if e.Type != conversation.EventRoutingDecided {
			continue
		}
		ev, err := conversation.Decode(e.Type, e.SchemaVersion, e.Data)
		if err != nil {
			return conversation.RoutingDecided{}, err
		}
		if d := ev.(conversation.RoutingDecided); d.MessageID == messageID {
			return d, nil
		}
	}
	return conversation.RoutingDecided{}, fmt.Errorf("conversation %s: routing of message %s decided but not found", conversationID, messageID)
}
