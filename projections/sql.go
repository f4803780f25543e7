package projections

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/lib/pq"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/apikey"
	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/domain/session"
	"github.com/engramhq/engram/domain/user"
	"github.com/engramhq/engram/domain/workspace"
	"github.com/engramhq/engram/eventstore"
)

// Names of the SQL projectors. They are stable identities: renaming one
// replays all history into it.
const (
	UsersProjector         = "users"
	WorkspacesProjector    = "workspaces"
	ConversationsProjector = "conversations"
	SessionsProjector      = "sessions"
)

// SQL returns the projectors of the SQL read models.
func SQL() []Projector {
	return []Projector{
		streamProjector{name: UsersProjector, streamType: user.StreamType, tables: []string{"users"},
			description: "users: profiles and roles", decode: user.Decode, apply: applyUser},
		streamProjector{name: WorkspacesProjector, streamType: workspace.StreamType, tables: []string{"workspaces", "workspace_members"},
			description: "workspaces and their members", decode: workspace.Decode, apply: applyWorkspace},
		conversationsProjector{streamProjector{name: ConversationsProjector, streamType: conversation.StreamType,
			tables: []string{"conversations", "messages"}, description: "conversations and their messages",
			decode: conversation.Decode, apply: applyConversation}},
		sessionsProjector{},
	}
}

// streamProjector is a SQL projector of the streams of one type. What
// operators see of it (name, tables, description) is data; apply gets each
// event of its streams decoded, with the id of the stream's aggregate.
type streamProjector struct {
	name, streamType, description string
	tables                        []string
	decode                        func(eventType string, schemaVersion int, data []byte) (domain.Event, error)
	apply                         func(ctx context.Context, tx Execer, e eventstore.Event, id string, ev domain.Event) error
}

var (
	_ TableProjector = streamProjector{}
	_ Selective      = streamProjector{}
	_ Describer      = streamProjector{}
)

// Name returns the projector's name (its checkpoint's).
func (p streamProjector) Name() string { return p.name }

// Wants reports whether e belongs to the projector's streams.
func (p streamProjector) Wants(e eventstore.Event) bool { return e.StreamType == p.streamType }

// Tables returns the read-model tables the projector writes.
func (p streamProjector) Tables() []string { return slices.Clone(p.tables) }

// Description says what the projector builds.
func (p streamProjector) Description() string { return p.description }

// Apply decodes e, when it belongs to the projector's streams, and applies
// it.
func (p streamProjector) Apply(ctx context.Context, tx Execer, e eventstore.Event) error {
	if e.StreamType != p.streamType {
		return nil
	}
	d, err := p.decoded(e)
	if err != nil {
		return err
	}
	return p.apply(ctx, tx, d.e, d.id, d.ev)
}

// decoded is e, of the projector's streams, with its domain event and its
// aggregate's id.
func (p streamProjector) decoded(e eventstore.Event) (decoded, error) {
	ev, err := p.decode(e.Type, e.SchemaVersion, e.Data)
	if err != nil {
		return decoded{}, err
	}
	return decoded{e: e, id: idOf(e, p.streamType), ev: ev}, nil
}

// conversationsProjector also applies batches (sql_batch.go).
type conversationsProjector struct{ streamProjector }

// advance moves a row to stream version v if it is behind it, and reports
// whether it did: false means the event was already applied.
func advance(ctx context.Context, tx Execer, table, id string, v int, at time.Time) (bool, error) {
	return advanceSetting(ctx, tx, table, id, `updated_at = $3`, v, at)
}

// advanceVersion is advance for a table without updated_at.
func advanceVersion(ctx context.Context, tx Execer, table, id string, v int) (bool, error) {
	return advanceSetting(ctx, tx, table, id, ``, v)
}

// advanceSetting moves a row to stream version v (args[0]) if it is behind
// it, setting the columns of set too ($3 on: the rest of args).
func advanceSetting(ctx context.Context, tx Execer, table, id, set string, args ...any) (bool, error) {
	if set != "" {
		set = ", " + set
	}
	ok, err := changedOne(tx.ExecContext(ctx, `UPDATE `+table+` SET version = $2`+set+` WHERE id = $1 AND version < $2`, append([]any{id}, args...)...))
	if err != nil {
		return false, fmt.Errorf("advance %s %s: %w", table, id, err)
	}
	return ok, nil
}

// insertNew inserts a row created by an event; it reports false when the row
// already exists (the event was applied before).
func insertNew(ctx context.Context, tx Execer, query string, args ...any) (bool, error) {
	return changedOne(tx.ExecContext(ctx, query+` ON CONFLICT (id) DO NOTHING`, args...))
}

// changedOne reports whether a statement changed one row.
func changedOne(res sql.Result, err error) (bool, error) {
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func idOf(e eventstore.Event, streamType string) string {
	return e.StreamID[len(streamType)+1:]
}

// applyUser keeps one row per user, guarded by the user stream's version.
func applyUser(ctx context.Context, tx Execer, e eventstore.Event, id string, ev domain.Event) error {
	var err error
	if ev, ok := ev.(user.Registered); ok {
		_, err := insertNew(ctx, tx, `INSERT INTO users (id, email, display_name, roles, created_at, updated_at, version)
			VALUES ($1, $2, $3, $4, $5, $5, $6)`, id, ev.Email, ev.DisplayName, pq.Array([]string{ev.Role}), e.RecordedAt, e.StreamVersion)
		return err
	}
	if ok, err := advance(ctx, tx, "users", id, e.StreamVersion, e.RecordedAt); !ok || err != nil {
		return err
	}
	switch ev := ev.(type) {
	case user.ProfileUpdated:
		_, err = tx.ExecContext(ctx, `UPDATE users SET display_name = $2 WHERE id = $1`, id, ev.DisplayName)
	case user.RoleGranted:
		_, err = tx.ExecContext(ctx, `UPDATE users SET roles = array(SELECT DISTINCT unnest(roles || $2::text) ORDER BY 1) WHERE id = $1`, id, ev.Role)
	}
	return err
}

// applyWorkspace keeps one row per workspace, guarded by its stream's
// version, and one per member.
func applyWorkspace(ctx context.Context, tx Execer, e eventstore.Event, id string, ev domain.Event) error {
	var err error
	if ev, ok := ev.(workspace.Created); ok {
		created, err := insertNew(ctx, tx, `INSERT INTO workspaces (id, owner_id, name, description, config, created_at, updated_at, version)
			VALUES ($1, $2, $3, $4, $5, $6, $6, $7)`, id, ev.OwnerID, ev.Name, ev.Description, jsonOrEmpty(ev.Config), e.RecordedAt, e.StreamVersion)
		if err != nil || !created {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO workspace_members (workspace_id, user_id, role, added_at) VALUES ($1, $2, 'owner', $3)
			ON CONFLICT (workspace_id, user_id) DO NOTHING`, id, ev.OwnerID, e.RecordedAt)
		return err
	}
	if ok, err := advance(ctx, tx, "workspaces", id, e.StreamVersion, e.RecordedAt); !ok || err != nil {
		return err
	}
	switch ev := ev.(type) {
	case workspace.Updated:
		_, err = tx.ExecContext(ctx, `UPDATE workspaces SET name = coalesce($2, name), description = coalesce($3, description),
			config = coalesce($4::jsonb, config) WHERE id = $1`, id, ev.Name, ev.Description, nullJSON(ev.Config))
	case workspace.MemberAdded:
		_, err = tx.ExecContext(ctx, `INSERT INTO workspace_members (workspace_id, user_id, role, added_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = excluded.role`, id, ev.UserID, ev.Role, e.RecordedAt)
	case workspace.MemberRemoved:
		_, err = tx.ExecContext(ctx, `DELETE FROM workspace_members WHERE workspace_id = $1 AND user_id = $2`, id, ev.UserID)
	case workspace.Archived:
		_, err = tx.ExecContext(ctx, `UPDATE workspaces SET archived = true WHERE id = $1`, id)
	}
	return err
}

// applyConversation keeps one row per conversation, guarded by its
// stream's version, and one per message.
func applyConversation(ctx context.Context, tx Execer, e eventstore.Event, id string, ev domain.Event) error {
	var err error
	if ev, ok := ev.(conversation.Created); ok {
		_, err := insertNew(ctx, tx, `INSERT INTO conversations (id, workspace_id, created_by, title, modality, metadata,
			created_at, updated_at, last_activity_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $7, $8)`,
			id, ev.WorkspaceID, ev.CreatedBy, ev.Title, ev.Modality, jsonOrEmpty(ev.Metadata), e.RecordedAt, e.StreamVersion)
		return err
	}
	// One statement per event: the version guard and the event's changes
	// in the same UPDATE. A conversation's row is the hottest row of the
	// read models; each extra UPDATE would leave one more row version for
	// the next to step over until vacuum.
	switch ev := ev.(type) {
	case conversation.Updated:
		_, err = tx.ExecContext(ctx, `UPDATE conversations SET version = $2, updated_at = $3,
				title = coalesce($4, title), metadata = coalesce($5::jsonb, metadata)
			WHERE id = $1 AND version < $2`, id, e.StreamVersion, e.RecordedAt, ev.Title, nullJSON(ev.Metadata))
	case conversation.MessagePosted:
		_, err = tx.ExecContext(ctx, `WITH moved AS (
				UPDATE conversations SET version = $2, updated_at = $3, message_count = message_count + 1, last_activity_at = $3
				WHERE id = $1 AND version < $2 RETURNING workspace_id)
			INSERT INTO messages (id, conversation_id, workspace_id, author_id, role, content, metadata, created_at, position, stream_version)
			SELECT $4, $1, workspace_id, $5, $6, $7, $8, $3, $9, $2 FROM moved
			ON CONFLICT (id) DO NOTHING`,
			id, e.StreamVersion, e.RecordedAt, ev.MessageID, ev.AuthorID, ev.Role, ev.Content, jsonOrEmpty(ev.Metadata), e.GlobalPosition)
	case conversation.Archived:
		_, err = tx.ExecContext(ctx, `UPDATE conversations SET version = $2, updated_at = $3, archived = true
			WHERE id = $1 AND version < $2`, id, e.StreamVersion, e.RecordedAt)
	default:
		_, err = advance(ctx, tx, "conversations", id, e.StreamVersion, e.RecordedAt)
	}
	if err != nil {
		return fmt.Errorf("conversation %s: %w", id, err)
	}
	return nil
}

// sessionsProjector builds the sessions and the API keys: the streams of two
// types under one name.
type sessionsProjector struct{}

// sessionStreams apply the events of each of sessionsProjector's stream
// types.
var sessionStreams = []streamProjector{
	{streamType: session.StreamType, decode: session.Decode, apply: applySession},
	{streamType: apikey.StreamType, decode: apikey.Decode, apply: applyAPIKey},
}

// Name returns the projector's name (its checkpoint's).
func (sessionsProjector) Name() string { return SessionsProjector }

// Wants reports whether e belongs to a session or an API key.
func (sessionsProjector) Wants(e eventstore.Event) bool {
	return e.StreamType == session.StreamType || e.StreamType == apikey.StreamType
}

// Tables returns the read-model tables the projector writes.
func (sessionsProjector) Tables() []string { return []string{"sessions", "api_keys"} }

// Description says what the projector builds.
func (sessionsProjector) Description() string { return "sessions and API keys" }

// Apply applies an event of a session or an API key.
func (sessionsProjector) Apply(ctx context.Context, tx Execer, e eventstore.Event) error {
	for _, p := range sessionStreams {
		if e.StreamType == p.streamType {
			return p.Apply(ctx, tx, e)
		}
	}
	return nil
}

// applySession keeps one row per session, guarded by its stream's version.
func applySession(ctx context.Context, tx Execer, e eventstore.Event, id string, ev domain.Event) error {
	if ev, ok := ev.(session.Started); ok {
		_, err := insertNew(ctx, tx, `INSERT INTO sessions (id, user_id, user_agent, ip, created_at, expires_at, version)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, id, ev.UserID, ev.UserAgent, ev.IP, e.RecordedAt, ev.ExpiresAt, e.StreamVersion)
		return err
	}
	if ok, err := advanceVersion(ctx, tx, "sessions", id, e.StreamVersion); !ok || err != nil {
		return err
	}
	var err error
	switch ev := ev.(type) {
	case session.Refreshed:
		_, err = tx.ExecContext(ctx, `UPDATE sessions SET last_refreshed_at = $2, expires_at = $3 WHERE id = $1`, id, e.RecordedAt, ev.ExpiresAt)
	case session.Revoked:
		_, err = tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = $2, revoked_reason = $3 WHERE id = $1`, id, e.RecordedAt, ev.Reason)
	}
	return err
}

// applyAPIKey keeps one row per API key, guarded by its stream's version.
func applyAPIKey(ctx context.Context, tx Execer, e eventstore.Event, id string, ev domain.Event) error {
	if ev, ok := ev.(apikey.Issued); ok {
		_, err := insertNew(ctx, tx, `INSERT INTO api_keys (id, user_id, name, prefix, key_hash, scopes, created_at, expires_at, version)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, id, ev.UserID, ev.Name, ev.Prefix, ev.KeyHash, pq.Array(ev.Scopes),
			e.RecordedAt, ev.ExpiresAt, e.StreamVersion)
		return err
	}
	if ok, err := advanceVersion(ctx, tx, "api_keys", id, e.StreamVersion); !ok || err != nil {
		return err
	}
	if _, ok := ev.(apikey.Revoked); ok {
		_, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = $2 WHERE id = $1`, id, e.RecordedAt)
		return err
	}
	return nil
}

func jsonOrEmpty(raw []byte) string {
	if len(raw) == 0 {
		return "{}"
	}
	return string(raw)
}

func nullJSON(raw []byte) sql.NullString {
	if len(raw) == 0 {
		return sql.NullString{}
	}
	return sql.NullString{String: string(raw), Valid: true}
}
