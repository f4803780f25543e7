package redis

import (
	"encoding/json"
	"time"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/domain/workspace"
	"github.com/engramhq/engram/eventstore"
)

// ops is what an event does to a read model: the operations of the
// apply script, none when the event changes nothing.
//
// JSON values (a message's metadata, a workspace's config) are copied as
// the event's data holds them (see jsonMember), which is how the SQL read
// models' jsonb columns print them: answers from Redis equal the SQL read
// models' byte for byte without a round trip to PostgreSQL.
type ops []any

// jsonMember returns the member name of the JSON object data as written
// there, or "{}" when it is missing or null. Events are read from a jsonb
// column, so data is as PostgreSQL prints jsonb (keys in jsonb's order);
// the domain's decoders re-serialise objects in their own canonical order,
// which is why the member is taken from data itself.
func jsonMember(data []byte, name string) (string, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		return "", err
	}
	if v := members[name]; len(v) > 0 && string(v) != "null" {
		return string(v), nil
	}
	return "{}", nil
}

// changes reports whether the event changes the read model.
func (p ops) changes() bool { return len(p) > 0 }

// op encodes one operation of the apply script: its name, its number of
// arguments, its arguments.
func op(name string, args ...any) []any { return append([]any{name, len(args)}, args...) }

// MessageRow is a message as the Redis read model keeps it.
type MessageRow struct {
	ID             string          `json:"id"`
	ConversationID string          `json:"conversation_id"`
	Role           string          `json:"role"`
	AuthorID       string          `json:"author_id"`
	Content        string          `json:"content"`
	Metadata       json.RawMessage `json:"metadata"`
	CreatedAt      time.Time       `json:"created_at"`
	Position       int64           `json:"position"`
}

// messagesWants: conversations and their messages are all the model keeps.
func messagesWants(e eventstore.Event) bool {
	return e.StreamType == conversation.StreamType &&
		(e.Type == conversation.EventCreated || e.Type == conversation.EventMessagePosted)
}

// messagesPlan gives a conversation's workspace and its messages.
func messagesPlan(e eventstore.Event, id string, ev domain.Event) (ops, error) {
	switch ev := ev.(type) {
	case conversation.Created:
		return op("conv", id, ev.WorkspaceID), nil
	case conversation.MessagePosted:
		metadata, err := jsonMember(e.Data, "metadata")
		if err != nil {
			return nil, err
		}
		doc, err := json.Marshal(MessageRow{ID: ev.MessageID, ConversationID: id, Role: ev.Role, AuthorID: ev.AuthorID,
			Content: ev.Content, Metadata: json.RawMessage(metadata), CreatedAt: e.RecordedAt, Position: e.GlobalPosition})
		if err != nil {
			return nil, err
		}
		return op("msg", id, e.GlobalPosition, doc), nil
	}
	return nil, nil
}

// WorkspaceRow is a workspace in a user's list, as the Redis read model
// keeps it.
type WorkspaceRow struct {
	ID          string
	OwnerID     string
	Name        string
	Description string
	Config      json.RawMessage
	Archived    bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Version     int
	// Role is the user's role in the workspace.
	Role string
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func workspacesWants(e eventstore.Event) bool { return e.StreamType == workspace.StreamType }

// workspacesPlan gives a workspace's fields, its members, and each member's
// list of workspaces.
func workspacesPlan(e eventstore.Event, id string, ev domain.Event) (ops, error) {
	at := formatTime(e.RecordedAt)
	if c, ok := ev.(workspace.Created); ok {
		config, err := jsonMember(e.Data, "config")
		if err != nil {
			return nil, err
		}
		return op("wscreate", id, c.OwnerID, e.RecordedAt.UnixMicro(), "owner_id", c.OwnerID, "name", c.Name,
			"description", c.Description, "config", config, "archived", "0", "created_at", at, "updated_at", at,
			"version", e.StreamVersion), nil
	}
	// As the SQL projector: every later event moves the version on.
	set := []any{id, "version", e.StreamVersion, "updated_at", at}
	var more []any
	switch ev := ev.(type) {
	case workspace.Updated:
		if ev.Name != nil {
			set = append(set, "name", *ev.Name)
		}
		if ev.Description != nil {
			set = append(set, "description", *ev.Description)
		}
		if ev.Config != nil {
			config, err := jsonMember(e.Data, "config")
			if err != nil {
				return nil, err
			}
			set = append(set, "config", config)
		}
	case workspace.MemberAdded:
		more = op("wsmember", id, ev.UserID, ev.Role)
	case workspace.MemberRemoved:
		more = op("wsremove", id, ev.UserID)
	case workspace.Archived:
		set = append(set, "archived", "1")
	}
	return append(op("wsset", set...), more...), nil
}
