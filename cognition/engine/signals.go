package engine

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/engramhq/engram/cognition"
	"github.com/engramhq/engram/platform/livebus"
)

// signaler publishes signals about one conversation, best effort: a signal
// that cannot be sent is logged at debug level and forgotten.
type signaler struct {
	publisher cognition.SignalPublisher
	logger    *slog.Logger
}

func (s signaler) publish(ctx context.Context, typ, workspaceID, conversationID, userID string, data any) {
	if s.publisher == nil {
		return
	}
	raw, err := json.Marshal(data)
	if err != nil {
		s.logger.Debug("signal not encoded", "type", typ, "err", err)
		return
	}
	err = s.publisher.Publish(ctx, livebus.Signal{Type: typ, WorkspaceID: workspaceID, ConversationID: conversationID,
		UserID: userID, Data: raw})
	if err != nil {
		s.logger.Debug("signal not sent", "type", typ, "conversation_id", conversationID, "err", err)
	}
}

// statusData is the body of a status signal.
type statusData struct {
	TaskID string `json:"task_id,omitempty"`
	Expert string `json:"expert,omitempty"`
	// State is running, remembered, failed or cancelled.
	State string `json:"state"`
	Text  string `json:"text"`
}

// typingData is the body of a typing signal: State is "start" or "stop",
// as for people typing.
type typingData struct {
	State  string `json:"state"`
	TaskID string `json:"task_id"`
	Expert string `json:"expert"`
}

// deltaData is the body of a delta signal: the Index-th piece of the answer
// that will be posted as ReplyMessageID.
type deltaData struct {
	TaskID         string `json:"task_id"`
	Expert         string `json:"expert"`
	ReplyMessageID string `json:"reply_message_id"`
	Index          int    `json:"index"`
	Text           string `json:"text"`
}
