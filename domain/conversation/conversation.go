// Package conversation is the conversation aggregate: a titled thread of
// messages inside a workspace, each message followed by the router's decision
// on how to handle it. Its stream is "conversation-<id>". Once archived it
// accepts no further change.
package conversation

import (
	"bytes"
	"cmp"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/engramhq/engram/domain"
)

// StreamType is the stream type of conversation streams.
const StreamType = "conversation"

// StreamID returns the stream identifier of the conversation with the given id.
func StreamID(id string) string { return domain.StreamID(StreamType, id) }

// Modalities of a conversation.
const (
	ModalityText       = "text"
	ModalityVoice      = "voice"
	ModalityMultimodal = "multimodal"
)

// Roles of a message's author.
const (
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleSystem    = "system"
)

// Routing actions.
const (
	ActionRespond  = "respond"  // an assistant answers directly
	ActionProcess  = "process"  // the message is processed (e.g. remembered) without an answer
	ActionDelegate = "delegate" // a named expert handles the message
	ActionIgnore   = "ignore"   // nothing is done
)

// Rule limits.
const (
	MaxTitleRunes   = 200
	MaxContentRunes = 32000
	MaxExpertRunes  = 100
	MaxReasonRunes  = 500
	MinPriority     = 1
	MaxPriority     = 5
)

// Conversation is the conversation aggregate. The zero value is an empty
// aggregate ready to have stored events applied.
type Conversation struct {
	domain.Root

	id          string
	workspaceID string
	createdBy   string
	title       string
	modality    string
	metadata    json.RawMessage
	archived    bool
	messages    map[string]bool // message id → routing decided
}

// New validates a new conversation and records conversation.created. The
// title is 1–200 characters; modality is text (the default when empty), voice
// or multimodal; metadata is a JSON object of at most 16 KiB ({} when absent).
func New(id, workspaceID, createdBy, title, modality string, metadata json.RawMessage) (*Conversation, error) {
	var v domain.Validation
	v.ID("conversation_id", id)
	v.ID("workspace_id", workspaceID)
	v.ID("created_by", createdBy)
	title = v.Text("title", title, 1, MaxTitleRunes)
	modality = cmp.Or(modality, ModalityText)
	v.OneOf("modality", modality, ModalityText, ModalityVoice, ModalityMultimodal)
	metadata = v.Object("metadata", metadata)
	if err := v.Err(); err != nil {
		return nil, err
	}
	c := &Conversation{}
	c.Record(c.Apply, Created{
		ConversationID: id,
		WorkspaceID:    workspaceID,
		CreatedBy:      createdBy,
		Title:          title,
		Modality:       modality,
		Metadata:       metadata,
	})
	return c, nil
}

// Update changes the title (nil leaves it unchanged) and merges metadataPatch
// into the metadata with JSON merge-patch semantics (RFC 7386: keys replace,
// null deletes, nested objects merge; nil or empty leaves it unchanged). The
// patch must be a JSON object and the merged metadata at most 16 KiB. Only
// changed fields are recorded, the metadata in full; nothing is recorded when
// nothing changed. An archived conversation fails with CodeConflict.
func (c *Conversation) Update(title *string, metadataPatch json.RawMessage) error {
	if err := c.checkActive(); err != nil {
		return err
	}
	var (
		v  domain.Validation
		ev Updated
	)
	ev.Title = v.ChangedText("title", title, c.title, 1, MaxTitleRunes)
	if len(metadataPatch) > 0 {
		if patch := v.Object("metadata", metadataPatch); patch != nil {
			merged, err := domain.MergePatch(c.metadata, patch)
			switch {
			case err != nil:
				v.Add("metadata", "%s", err.Error())
			case !bytes.Equal(merged, c.metadata):
				ev.Metadata = merged
			}
		}
	}
	if err := v.Err(); err != nil {
		return err
	}
	if ev.Title == nil && ev.Metadata == nil {
		return nil
	}
	c.Record(c.Apply, ev)
	return nil
}

// PostMessage records a message. role is user (the default when empty),
// assistant or system; content must not be blank, is at most 32,000
// characters and is stored as given (not trimmed); metadata is a JSON object
// of at most 16 KiB. It fails with CodeConflict when messageID was already
// posted or the conversation is archived.
func (c *Conversation) PostMessage(messageID, authorID, role, content string, metadata json.RawMessage) error {
	if err := c.checkActive(); err != nil {
		return err
	}
	var v domain.Validation
	v.ID("message_id", messageID)
	v.ID("author_id", authorID)
	role = cmp.Or(role, RoleUser)
	v.OneOf("role", role, RoleUser, RoleAssistant, RoleSystem)
	switch {
	case domain.TextProblem(content) != "":
		v.Add("content", "%s", domain.TextProblem(content))
	case strings.TrimSpace(content) == "":
		v.Add("content", "is required")
	case utf8.RuneCountInString(content) > MaxContentRunes:
		v.Add("content", "must be at most %d characters", MaxContentRunes)
	}
	metadata = v.Object("metadata", metadata)
	if err := v.Err(); err != nil {
		return err
	}
	if _, ok := c.messages[messageID]; ok {
		return domain.Errorf(domain.CodeConflict, "message already posted")
	}
	c.Record(c.Apply, MessagePosted{MessageID: messageID, AuthorID: authorID, Role: role, Content: content, Metadata: metadata})
	return nil
}

// DecideRouting records how the message messageID is to be handled. action is
// respond, process, delegate or ignore; delegate requires an expert; priority
// is 1–5 and reason at most 500 characters. It fails with CodeNotFound when
// the message was not posted in this conversation, and with CodeConflict when
// its routing was already decided or the conversation is archived.
func (c *Conversation) DecideRouting(messageID, action, expert string, priority int, reason string) error {
	if err := c.checkActive(); err != nil {
		return err
	}
	var v domain.Validation
	v.ID("message_id", messageID)
	v.OneOf("action", action, ActionRespond, ActionProcess, ActionDelegate, ActionIgnore)
	expert = v.Text("expert", expert, 0, MaxExpertRunes)
	if action == ActionDelegate && expert == "" {
		v.Add("expert", "is required when action is delegate")
	}
	v.Check(priority >= MinPriority && priority <= MaxPriority, "priority", "must be between %d and %d", MinPriority, MaxPriority)
	reason = v.Text("reason", reason, 0, MaxReasonRunes)
	if err := v.Err(); err != nil {
		return err
	}
	decided, ok := c.messages[messageID]
	switch {
	case !ok:
		return domain.Errorf(domain.CodeNotFound, "message not found in this conversation")
	case decided:
		return domain.Errorf(domain.CodeConflict, "routing already decided for this message")
	}
	c.Record(c.Apply, RoutingDecided{MessageID: messageID, Action: action, Expert: expert, Priority: priority, Reason: reason})
	return nil
}

// Archive archives the conversation. Archiving twice fails with CodeConflict.
func (c *Conversation) Archive() error {
	if err := c.checkActive(); err != nil {
		return err
	}
	c.Record(c.Apply, Archived{})
	return nil
}

func (c *Conversation) checkActive() error {
	if c.archived {
		return domain.Errorf(domain.CodeConflict, "conversation is archived")
	}
	return nil
}

// Apply changes the state by one event; it is used both when recording new
// events and when loading stored ones, and it never fails.
func (c *Conversation) Apply(e domain.Event) {
	c.Applied()
	switch e := e.(type) {
	case Created:
		c.id = e.ConversationID
		c.workspaceID = e.WorkspaceID
		c.createdBy = e.CreatedBy
		c.title = e.Title
		c.modality = e.Modality
		c.metadata = e.Metadata
	case Updated:
		if e.Title != nil {
			c.title = *e.Title
		}
		if e.Metadata != nil {
			c.metadata = e.Metadata
		}
	case MessagePosted:
		if c.messages == nil {
			c.messages = map[string]bool{}
		}
		c.messages[e.MessageID] = false
	case RoutingDecided:
		if _, ok := c.messages[e.MessageID]; ok {
			c.messages[e.MessageID] = true
		}
	case Archived:
		c.archived = true
	}
}

// ID returns the conversation's identifier.
func (c *Conversation) ID() string { return c.id }

// WorkspaceID returns the workspace the conversation belongs to.
func (c *Conversation) WorkspaceID() string { return c.workspaceID }

// CreatedBy returns the user who created the conversation.
func (c *Conversation) CreatedBy() string { return c.createdBy }

// Title returns the title.
func (c *Conversation) Title() string { return c.title }

// Modality returns text, voice or multimodal.
func (c *Conversation) Modality() string { return c.modality }

// Metadata returns a copy of the metadata, a canonical JSON object.
func (c *Conversation) Metadata() json.RawMessage { return bytes.Clone(c.metadata) }

// Archived reports whether the conversation is archived.
func (c *Conversation) Archived() bool { return c.archived }

// MessageCount returns the number of messages posted.
func (c *Conversation) MessageCount() int { return len(c.messages) }
