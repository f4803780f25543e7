package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/apikey"
	"github.com/engramhq/engram/domain/auditlog"
	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/domain/session"
	"github.com/engramhq/engram/domain/task"
	"github.com/engramhq/engram/domain/user"
	"github.com/engramhq/engram/domain/workspace"
)

// Point says up to where a stream is folded: its first Version events, or
// the events recorded at or before At. The zero Point is the stream's
// latest state.
type Point struct {
	Version int
	At      time.Time
}

// State is a stream's aggregate as it was at a point: the state (rendered
// without secrets) and the version, position and recording time of the last
// event folded into it.
type State struct {
	StreamID       string          `json:"stream_id"`
	StreamType     string          `json:"stream_type"`
	Version        int             `json:"version"`
	GlobalPosition int64           `json:"global_position"`
	RecordedAt     time.Time       `json:"recorded_at"`
	State          json.RawMessage `json:"state"`
}

// statePageSize is how many events a fold reads per query.
const statePageSize = 1000

// State folds the events of a stream up to p with its aggregate's Decode
// and Apply, renders the aggregate without secrets, and records the read.
//
// It returns a CodeNotFound error when the stream has no events, or had none
// yet at p.At; and a CodeInvalid error when p asks for a version the stream
// has not reached, when p gives both a version and a time, or when the
// stream's type has no aggregate to fold.
func (s *Service) State(ctx context.Context, r Reader, streamID string, p Point) (State, error) {
	var v domain.Validation
	v.Check(p.Version >= 0, "version", "must be a positive integer")
	v.Check(p.Version == 0 || p.At.IsZero(), "at", "give version or at, not both")
	if err := v.Err(); err != nil {
		return State{}, err
	}
	if !name(&v, "stream_id", streamID) || streamID == "" {
		return State{}, domain.Errorf(domain.CodeNotFound, "stream not found")
	}
	var head struct {
		StreamType string `db:"stream_type"`
		Version    int    `db:"stream_version"`
	}
	err := s.db.GetContext(ctx, &head, `SELECT stream_type, stream_version FROM events
		WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1`, streamID)
	if errors.Is(err, sql.ErrNoRows) {
		return State{}, domain.Errorf(domain.CodeNotFound, "stream %s not found", streamID)
	}
	if err != nil {
		return State{}, fmt.Errorf("audit: state of %s: %w", streamID, err)
	}
	k, ok := kindOf(head.StreamType)
	if !ok {
		v.Add("stream_id", "streams of type %q have no aggregate state", head.StreamType)
	}
	if p.Version > head.Version {
		v.Add("version", "the stream has %d events", head.Version)
	}
	if err := v.Err(); err != nil {
		return State{}, err
	}

	f := k.newFold()
	out := State{StreamID: streamID, StreamType: head.StreamType}
	upTo := head.Version
	if p.Version > 0 {
		upTo = p.Version
	}
	for after := 0; after < upTo; after = out.Version {
		n, reachedAt, err := s.foldPage(ctx, streamID, after, upTo, p.At, k, f, &out)
		if err != nil {
			return State{}, fmt.Errorf("audit: state of %s: %w", streamID, err)
		}
		if reachedAt || n < statePageSize {
			break
		}
	}
	if out.Version == 0 {
		return State{}, domain.Errorf(domain.CodeNotFound, "stream %s did not exist yet at %s", streamID, p.At.UTC().Format(time.RFC3339Nano))
	}
	state, err := json.Marshal(f.view())
	if err != nil {
		return State{}, fmt.Errorf("audit: state of %s: %w", streamID, err)
	}
	out.State = state
	if err := s.record(ctx, r, auditlog.OperationState, auditlog.FormatJSON, stateFilter(streamID, p), 1, true); err != nil {
		return State{}, err
	}
	return out, nil
}

// foldPage applies to f the stream's events after version after, up to
// version upTo and recorded at or before at (when set), one page of them,
// and moves out to the last event applied. It returns how many events it
// read and whether it met one recorded after at.
func (s *Service) foldPage(ctx context.Context, streamID string, after, upTo int, at time.Time, k kind, f fold, out *State) (int, bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT stream_version, global_position, type, schema_version, data, recorded_at
		FROM events WHERE stream_id = $1 AND stream_version > $2 AND stream_version <= $3
		ORDER BY stream_version LIMIT $4`, streamID, after, upTo, statePageSize)
	if err != nil {
		return 0, false, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var (
			version, schema int
			position        int64
			typ             string
			data            []byte
			recordedAt      time.Time
		)
		if err := rows.Scan(&version, &position, &typ, &schema, &data, &recordedAt); err != nil {
			return n, false, err
		}
		n++
		if !at.IsZero() && recordedAt.After(at) {
			return n, true, nil
		}
		e, err := k.decode(typ, schema, data)
		if err != nil {
			return n, false, fmt.Errorf("version %d: %w", version, err)
		}
		f.apply(e)
		out.Version, out.GlobalPosition, out.RecordedAt = version, position, recordedAt.UTC()
	}
	return n, false, rows.Err()
}

// stateFilter renders the stream id and point of a state read.
func stateFilter(streamID string, p Point) map[string]any {
	m := map[string]any{"stream_id": streamID}
	if p.Version > 0 {
		m["version"] = p.Version
	}
	if !p.At.IsZero() {
		m["at"] = p.At.UTC().Format(time.RFC3339Nano)
	}
	return m
}

// kind is how streams of one type are folded and rendered.
type kind struct {
	decode  decodeFunc
	newFold func() fold
}

// fold is one aggregate being folded: apply an event, then view the result.
type fold struct {
	apply func(domain.Event)
	view  func() any
}

// aggregateKind builds the kind of an aggregate type from its Decode, its
// zero value and its exporter.
func aggregateKind[A interface{ Apply(domain.Event) }](decode decodeFunc, newAggregate func() A, export func(A) any) kind {
	return kind{decode: decode, newFold: func() fold {
		a := newAggregate()
		return fold{apply: a.Apply, view: func() any { return export(a) }}
	}}
}

// kindOf returns how streams of streamType are folded.
func kindOf(streamType string) (kind, bool) {
	switch streamType {
	case user.StreamType:
		return aggregateKind(user.Decode, func() *user.User { return &user.User{} }, exportUser), true
	case session.StreamType:
		return aggregateKind(session.Decode, func() *session.Session { return &session.Session{} }, exportSession), true
	case apikey.StreamType:
		return aggregateKind(apikey.Decode, func() *apikey.APIKey { return &apikey.APIKey{} }, exportAPIKey), true
	case workspace.StreamType:
		return aggregateKind(workspace.Decode, func() *workspace.Workspace { return &workspace.Workspace{} }, exportWorkspace), true
	case conversation.StreamType:
		return aggregateKind(conversation.Decode, func() *conversation.Conversation { return &conversation.Conversation{} }, exportConversation), true
	case task.StreamType:
		return aggregateKind(task.Decode, func() *task.Task { return &task.Task{} }, exportTask), true
	}
	return kind{}, false
}

// The exporters render each aggregate's state. They name every field they
// show, so that a secret (password, token or key hash) cannot slip out.

type userState struct {
	ID          string   `json:"id"`
	Email       string   `json:"email"`
	DisplayName string   `json:"display_name"`
	Roles       []string `json:"roles"`
}

func exportUser(u *user.User) any {
	return userState{ID: u.ID(), Email: u.Email(), DisplayName: u.DisplayName(), Roles: u.Roles()}
}

type sessionState struct {
	ID           string    `json:"id"`
	UserID       string    `json:"user_id"`
	UserAgent    string    `json:"user_agent"`
	IP           string    `json:"ip"`
	ExpiresAt    time.Time `json:"expires_at"`
	Revoked      bool      `json:"revoked"`
	RevokeReason string    `json:"revoke_reason,omitempty"`
}

func exportSession(s *session.Session) any {
	return sessionState{ID: s.ID(), UserID: s.UserID(), UserAgent: s.UserAgent(), IP: s.IP(), ExpiresAt: s.ExpiresAt(),
		Revoked: s.Revoked(), RevokeReason: s.RevokeReason()}
}

type apiKeyState struct {
	ID        string     `json:"id"`
	UserID    string     `json:"user_id"`
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	Prefix    string     `json:"prefix"`
	ExpiresAt *time.Time `json:"expires_at"`
	Revoked   bool       `json:"revoked"`
}

func exportAPIKey(k *apikey.APIKey) any {
	return apiKeyState{ID: k.ID(), UserID: k.UserID(), Name: k.Name(), Scopes: k.Scopes(), Prefix: k.Prefix(),
		ExpiresAt: k.ExpiresAt(), Revoked: k.Revoked()}
}

type memberState struct {
	UserID string `json:"user_id"`
	Role   string `json:"role"`
}

type workspaceState struct {
	ID          string          `json:"id"`
	OwnerID     string          `json:"owner_id"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Config      json.RawMessage `json:"config"`
	Archived    bool            `json:"archived"`
	Members     []memberState   `json:"members"`
}

func exportWorkspace(w *workspace.Workspace) any {
	members := make([]memberState, 0, len(w.Members()))
	for id, role := range w.Members() {
		members = append(members, memberState{UserID: id, Role: role})
	}
	slices.SortFunc(members, func(a, b memberState) int {
		switch {
		case a.UserID < b.UserID:
			return -1
		case a.UserID > b.UserID:
			return 1
		}
		return 0
	})
	return workspaceState{ID: w.ID(), OwnerID: w.OwnerID(), Name: w.Name(), Description: w.Description(),
		Config: objectOrEmpty(w.Config()), Archived: w.Archived(), Members: members}
}

type conversationState struct {
	ID           string          `json:"id"`
	WorkspaceID  string          `json:"workspace_id"`
	CreatedBy    string          `json:"created_by"`
	Title        string          `json:"title"`
	Modality     string          `json:"modality"`
	Metadata     json.RawMessage `json:"metadata"`
	Archived     bool            `json:"archived"`
	MessageCount int             `json:"message_count"`
}

func exportConversation(c *conversation.Conversation) any {
	return conversationState{ID: c.ID(), WorkspaceID: c.WorkspaceID(), CreatedBy: c.CreatedBy(), Title: c.Title(),
		Modality: c.Modality(), Metadata: objectOrEmpty(c.Metadata()), Archived: c.Archived(), MessageCount: c.MessageCount()}
}

type taskState struct {
	ID             string    `json:"id"`
	WorkspaceID    string    `json:"workspace_id"`
	ConversationID string    `json:"conversation_id"`
	MessageID      string    `json:"message_id"`
	RequestedBy    string    `json:"requested_by"`
	Expert         string    `json:"expert"`
	Input          string    `json:"input"`
	Priority       int       `json:"priority"`
	Status         string    `json:"status"`
	Worker         string    `json:"worker"`
	Attempts       int       `json:"attempts"`
	Deadline       time.Time `json:"deadline"`
	Progress       int       `json:"progress"`
	Output         string    `json:"output"`
	ReplyMessageID string    `json:"reply_message_id"`
	Reason         string    `json:"reason"`
}

func exportTask(t *task.Task) any {
	return taskState{ID: t.ID(), WorkspaceID: t.WorkspaceID(), ConversationID: t.ConversationID(), MessageID: t.MessageID(),
		RequestedBy: t.RequestedBy(), Expert: t.Expert(), Input: t.Input(), Priority: t.Priority(), Status: t.Status(),
		Worker: t.Worker(), Attempts: t.Attempts(), Deadline: t.Deadline(), Progress: t.ProgressPercent(), Output: t.Output(),
		ReplyMessageID: t.ReplyMessageID(), Reason: t.Reason()}
}

func objectOrEmpty(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage(`{}`)
	}
	return raw
}
