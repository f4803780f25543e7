package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/apikey"
	"github.com/engramhq/engram/domain/auditlog"
	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/domain/memory"
	"github.com/engramhq/engram/domain/session"
	"github.com/engramhq/engram/domain/task"
	"github.com/engramhq/engram/domain/user"
	"github.com/engramhq/engram/domain/workspace"
)

// Kinds of Difference.
const (
	// DiffMissingRow: the log says the row exists, the read model has none.
	DiffMissingRow = "missing_row"
	// DiffExtraRow: the read model has a row the log does not account for.
	DiffExtraRow = "extra_row"
	// DiffColumn: the row exists but a column differs from the log's fold.
	DiffColumn = "column"
	// DiffParked: the projector gave up on an event, so its model does not
	// reflect it.
	DiffParked = "parked"
	// DiffUndecodable: an event below the checkpoint cannot be decoded.
	DiffUndecodable = "undecodable"
)

// maxListedDifferences bounds the differences listed per read model; the
// count is always complete.
const maxListedDifferences = 1000

// ProjectionsReport is the answer of VerifyProjections: each read model
// compared with the log.
type ProjectionsReport struct {
	// OK is true when every read model agrees with the log.
	OK         bool              `json:"ok"`
	ReadModels []ReadModelReport `json:"read_models"`
}

// ReadModelReport is one projector's read model compared with the log up to
// its checkpoint.
type ReadModelReport struct {
	// Name is the projector (and consumer group).
	Name   string   `json:"name"`
	Tables []string `json:"tables"`
	// Started is false when the projector has no checkpoint yet: its
	// tables must then be empty.
	Started bool `json:"started"`
	// CheckpointTxID and CheckpointPosition are the projector's checkpoint
	// in commit order: the model is compared with the log up to it.
	CheckpointTxID     uint64 `json:"checkpoint_tx_id"`
	CheckpointPosition int64  `json:"checkpoint_position"`
	// Events is the number of events folded, Rows the number of rows read.
	Events int64 `json:"events"`
	Rows   int64 `json:"rows"`
	// DifferenceCount counts every difference; Differences lists at most
	// the first thousand.
	DifferenceCount int          `json:"difference_count"`
	Differences     []Difference `json:"differences"`
}

// Difference is one way in which a read model disagrees with the log.
type Difference struct {
	// Kind is one of the Diff constants.
	Kind  string `json:"kind"`
	Table string `json:"table,omitempty"`
	// Key names the row: its id, or "workspace_id/user_id" for members.
	Key    string `json:"key,omitempty"`
	Column string `json:"column,omitempty"`
	// Want is what the log says, Got what the read model holds.
	Want string `json:"want,omitempty"`
	Got  string `json:"got,omitempty"`
	// StreamID and Position name the stream the row comes from and the
	// event that last made the row (a message: the event that posted it;
	// a memory item: its last event; otherwise the stream's last event
	// folded); for a parked or undecodable event, that event.
	StreamID string `json:"stream_id,omitempty"`
	Position int64  `json:"position,omitempty"`
	// Detail says more: a parked event's error.
	Detail string `json:"detail,omitempty"`
}

// String renders d on one line, e.g. "conversations 9a0b…: message_count
// is 36, the log says 37 (stream conversation-9a0b… at position 1717)".
func (d Difference) String() string {
	var b strings.Builder
	switch d.Kind {
	case DiffMissingRow:
		fmt.Fprintf(&b, "missing from %s: %s", d.Table, d.Key)
	case DiffExtraRow:
		fmt.Fprintf(&b, "extra in %s: %s", d.Table, d.Key)
	case DiffColumn:
		fmt.Fprintf(&b, "%s %s: %s is %s, the log says %s", d.Table, d.Key, d.Column, d.Got, d.Want)
	case DiffParked:
		fmt.Fprintf(&b, "parked event at position %d", d.Position)
	case DiffUndecodable:
		fmt.Fprintf(&b, "undecodable event at position %d", d.Position)
	default:
		fmt.Fprintf(&b, "%s %s %s", d.Kind, d.Table, d.Key)
	}
	if d.StreamID != "" {
		fmt.Fprintf(&b, " (stream %s", d.StreamID)
		if d.Position > 0 && d.Kind != DiffParked && d.Kind != DiffUndecodable {
			fmt.Fprintf(&b, " at position %d", d.Position)
		}
		b.WriteString(")")
	}
	if d.Detail != "" {
		fmt.Fprintf(&b, ": %s", d.Detail)
	}
	return b.String()
}

// ReadModelNames returns the names of the read models VerifyProjections
// compares, in the order it reports them.
func ReadModelNames() []string {
	names := make([]string, len(readModels))
	for i, m := range readModels {
		names[i] = m.name
	}
	return names
}

// VerifyProjections compares each SQL read model (or the one named) with
// the log: in one snapshot it reads the projector's checkpoint, folds the
// events up to it with the aggregates' Apply, and names every row missing,
// every row extra and every column that differs, and every event the
// projector parked. A checkpoint past an event its model does not reflect
// shows as a difference. It records the read.
//
// It returns a CodeInvalid error when name is not a read model (see
// ReadModelNames).
func (s *Service) VerifyProjections(ctx context.Context, r Reader, name string) (ProjectionsReport, error) {
	models := readModels
	if name != "" {
		i := slices.IndexFunc(readModels, func(m readModel) bool { return m.name == name })
		if i < 0 {
			var v domain.Validation
			v.Add("name", "no read model is named %q; one of %s", name, strings.Join(ReadModelNames(), ", "))
			return ProjectionsReport{}, v.Err()
		}
		models = readModels[i : i+1]
	}
	out := ProjectionsReport{OK: true, ReadModels: make([]ReadModelReport, 0, len(models))}
	differences := 0
	for _, m := range models {
		rep, err := verifyReadModel(ctx, s.db, m)
		if err != nil {
			return ProjectionsReport{}, fmt.Errorf("audit: verify read model %s: %w", m.name, err)
		}
		differences += rep.DifferenceCount
		out.OK = out.OK && rep.DifferenceCount == 0
		out.ReadModels = append(out.ReadModels, rep)
	}
	filter := map[string]any{"read_models": name}
	if name == "" {
		filter["read_models"] = "all"
	}
	if err := s.record(ctx, r, auditlog.OperationVerify, auditlog.FormatJSON, filter, int64(differences), true); err != nil {
		return out, err
	}
	return out, nil
}

// readModel is what a projector builds and how the log says it should look.
type readModel struct {
	name        string
	streamTypes []string
	tables      []modelTable
	// expect folds one stream's events and returns the rows they make.
	expect func(s *foldedStream) []expectedRow
}

// modelTable reads a table as (key, row as JSON); extra derived columns may
// be added to the JSON by the query.
type modelTable struct {
	name  string
	query string
}

// expectedRow is a row as the log says it should be.
type expectedRow struct {
	table string
	key   string
	cols  map[string]any
	// position is the last event that made the row what it is (0: the
	// stream's last event).
	position int64
}

// A set is a text array whose order does not matter.
type set []string

// nullable returns nil for an empty string: the column is NULL then.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

var readModels = []readModel{
	{
		name:        "users",
		streamTypes: []string{user.StreamType},
		tables:      []modelTable{{"users", `SELECT id::text, to_jsonb(t) FROM users t`}},
		expect: func(s *foldedStream) []expectedRow {
			u := &user.User{}
			if !s.fold(user.Decode, user.EventRegistered, u.Apply) {
				return nil
			}
			return []expectedRow{{table: "users", key: u.ID(), cols: map[string]any{
				"email": u.Email(), "display_name": u.DisplayName(), "roles": set(u.Roles()),
				"version": s.version, "created_at": s.firstAt, "updated_at": s.lastAt,
			}}}
		},
	},
	{
		name:        "workspaces",
		streamTypes: []string{workspace.StreamType},
		tables: []modelTable{
			{"workspaces", `SELECT id::text, to_jsonb(t) FROM workspaces t`},
			{"workspace_members", `SELECT workspace_id::text || '/' || user_id::text, to_jsonb(t) FROM workspace_members t`},
		},
		expect: func(s *foldedStream) []expectedRow {
			w := &workspace.Workspace{}
			if !s.fold(workspace.Decode, workspace.EventCreated, w.Apply) {
				return nil
			}
			rows := []expectedRow{{table: "workspaces", key: w.ID(), cols: map[string]any{
				"owner_id": w.OwnerID(), "name": w.Name(), "description": w.Description(), "config": domain.ObjectOrEmpty(w.Config()),
				"archived": w.Archived(), "version": s.version, "created_at": s.firstAt, "updated_at": s.lastAt,
			}}}
			for userID, role := range w.Members() {
				rows = append(rows, expectedRow{table: "workspace_members", key: w.ID() + "/" + userID,
					cols: map[string]any{"role": role}})
			}
			return rows
		},
	},
	{
		name:        "conversations",
		streamTypes: []string{conversation.StreamType},
		tables: []modelTable{
			{"conversations", `SELECT id::text, to_jsonb(t) FROM conversations t`},
			{"messages", `SELECT id::text, to_jsonb(t) FROM messages t`},
		},
		expect: expectConversation,
	},
	{
		name:        "sessions",
		streamTypes: []string{session.StreamType, apikey.StreamType},
		tables: []modelTable{
			{"sessions", `SELECT id::text, to_jsonb(t) || jsonb_build_object('revoked', revoked_at IS NOT NULL) FROM sessions t`},
			{"api_keys", `SELECT id::text, to_jsonb(t) - 'key_hash' || jsonb_build_object('revoked', revoked_at IS NOT NULL) FROM api_keys t`},
		},
		expect: func(s *foldedStream) []expectedRow {
			if s.streamType == apikey.StreamType {
				k := &apikey.APIKey{}
				if !s.fold(apikey.Decode, apikey.EventIssued, k.Apply) {
					return nil
				}
				var expires any
				if at := k.ExpiresAt(); at != nil {
					expires = *at
				}
				return []expectedRow{{table: "api_keys", key: k.ID(), cols: map[string]any{
					"user_id": k.UserID(), "name": k.Name(), "prefix": k.Prefix(), "scopes": k.Scopes(), "expires_at": expires,
					"revoked": k.Revoked(), "version": s.version, "created_at": s.firstAt,
				}}}
			}
			ss := &session.Session{}
			if !s.fold(session.Decode, session.EventStarted, ss.Apply) {
				return nil
			}
			var reason any
			if ss.Revoked() {
				reason = ss.RevokeReason()
			}
			return []expectedRow{{table: "sessions", key: ss.ID(), cols: map[string]any{
				"user_id": ss.UserID(), "user_agent": ss.UserAgent(), "ip": ss.IP(), "expires_at": ss.ExpiresAt(),
				"revoked": ss.Revoked(), "revoked_reason": reason, "version": s.version, "created_at": s.firstAt,
			}}}
		},
	},
	{
		name:        "tasks",
		streamTypes: []string{task.StreamType},
		tables:      []modelTable{{"tasks", `SELECT id::text, to_jsonb(t) FROM tasks t`}},
		expect: func(s *foldedStream) []expectedRow {
			t := &task.Task{}
			if !s.fold(task.Decode, task.EventSubmitted, t.Apply) {
				return nil
			}
			return []expectedRow{{table: "tasks", key: t.ID(), cols: map[string]any{
				"workspace_id": t.WorkspaceID(), "conversation_id": t.ConversationID(), "message_id": t.MessageID(),
				"requested_by": t.RequestedBy(), "expert": t.Expert(), "input": t.Input(), "priority": t.Priority(),
				"status": t.Status(), "output": nullable(t.Output()), "reply_message_id": nullable(t.ReplyMessageID()),
				"version": s.version, "submitted_at": s.firstAt,
			}}}
		},
	},
	{
		name:        "memory",
		streamTypes: []string{memory.StreamType},
		tables:      []modelTable{{"memory_items", `SELECT id::text, to_jsonb(t) - 'words' || jsonb_build_object('deleted', deleted_at IS NOT NULL) FROM memory_items t`}},
		expect:      expectMemory,
	},
}

// expectConversation folds a conversation and lists its messages.
func expectConversation(s *foldedStream) []expectedRow {
	c := &conversation.Conversation{}
	var messages []expectedRow
	lastActivity := time.Time{}
	s.foldEach(conversation.Decode, conversation.EventCreated, c.Apply, func(e domain.Event, ev *streamEvent) {
		m, ok := e.(conversation.MessagePosted)
		if !ok {
			return
		}
		lastActivity = ev.recordedAt
		messages = append(messages, expectedRow{table: "messages", key: m.MessageID, position: ev.position, cols: map[string]any{
			"conversation_id": c.ID(), "workspace_id": c.WorkspaceID(), "author_id": m.AuthorID, "role": m.Role,
			"content": m.Content, "metadata": domain.ObjectOrEmpty(m.Metadata), "created_at": ev.recordedAt,
			"position": ev.position, "stream_version": ev.version,
		}})
	})
	if !s.created {
		return nil
	}
	if lastActivity.IsZero() {
		lastActivity = s.firstAt
	}
	row := expectedRow{table: "conversations", key: c.ID(), cols: map[string]any{
		"workspace_id": c.WorkspaceID(), "created_by": c.CreatedBy(), "title": c.Title(), "modality": c.Modality(),
		"metadata": domain.ObjectOrEmpty(c.Metadata()), "archived": c.Archived(), "message_count": c.MessageCount(),
		"version": s.version, "created_at": s.firstAt, "updated_at": s.lastAt, "last_activity_at": lastActivity,
	}}
	return append([]expectedRow{row}, messages...)
}

// memoryItem is an item as its events leave it.
type memoryItem struct {
	workspaceID, itemType, content, source string
	metadata                               json.RawMessage
	expiresAt                              *time.Time
	deleted                                bool
	version                                int
	position                               int64
	createdAt, updatedAt                   time.Time
}

// expectMemory folds the items of a memory stream as the projector keeps
// them: the first store of an item wins, updates change the fields they
// carry, a deletion marks the row.
func expectMemory(s *foldedStream) []expectedRow {
	workspaceID := strings.TrimPrefix(s.streamID, memory.StreamType+"-")
	items := map[string]*memoryItem{}
	var order []string
	for i := range s.events {
		ev := &s.events[i]
		e, err := memory.Decode(ev.eventType, ev.schemaVersion, ev.data)
		if err != nil {
			s.undecodable(ev, err)
			continue
		}
		switch e := e.(type) {
		case memory.ItemStored:
			if _, ok := items[e.ItemID]; ok {
				continue
			}
			items[e.ItemID] = &memoryItem{workspaceID: workspaceID, itemType: e.Type, content: e.Content,
				source: e.SourceMessageID, metadata: e.Metadata, expiresAt: e.ExpiresAt, version: ev.version,
				position: ev.position, createdAt: ev.recordedAt, updatedAt: ev.recordedAt}
			order = append(order, e.ItemID)
		case memory.ItemUpdated:
			it, ok := items[e.ItemID]
			if !ok {
				continue
			}
			if e.Content != nil {
				it.content = *e.Content
			}
			if len(e.Metadata) > 0 {
				it.metadata = e.Metadata
			}
			if e.ExpiresAt != nil {
				it.expiresAt = e.ExpiresAt
			}
			it.updatedAt, it.version, it.position = ev.recordedAt, ev.version, ev.position
		case memory.ItemDeleted:
			if it, ok := items[e.ItemID]; ok {
				it.deleted, it.updatedAt, it.version, it.position = true, ev.recordedAt, ev.version, ev.position
			}
		}
	}
	rows := make([]expectedRow, 0, len(order))
	for _, id := range order {
		it := items[id]
		var expires any
		if it.expiresAt != nil {
			expires = *it.expiresAt
		}
		rows = append(rows, expectedRow{table: "memory_items", key: id, position: it.position, cols: map[string]any{
			"workspace_id": it.workspaceID, "type": it.itemType, "content": it.content, "metadata": domain.ObjectOrEmpty(it.metadata),
			"expires_at": expires, "source_message_id": nullable(it.source), "deleted": it.deleted, "version": it.version,
			"created_at": it.createdAt, "updated_at": it.updatedAt,
		}})
	}
	return rows
}

// streamEvent is an event as the verification reads it.
type streamEvent struct {
	version       int
	position      int64
	eventType     string
	schemaVersion int
	data          []byte
	recordedAt    time.Time
}

// foldedStream is one stream's events up to the checkpoint, and what the
// fold learnt of them.
type foldedStream struct {
	streamID, streamType string
	events               []streamEvent
	report               *ReadModelReport

	created      bool // the first event creates the aggregate
	version      int  // the last event's version
	firstAt      time.Time
	lastAt       time.Time
	lastPosition int64
}

// fold applies every event with apply after decoding it with decode; an
// event it cannot decode is reported. It reports, as created also tells,
// whether the stream begins with the creation event.
func (s *foldedStream) fold(decode func(string, int, []byte) (domain.Event, error), creation string, apply func(domain.Event)) bool {
	s.foldEach(decode, creation, apply, nil)
	return s.created
}

// foldEach is fold calling each, when set, after every event applied.
func (s *foldedStream) foldEach(decode func(string, int, []byte) (domain.Event, error), creation string,
	apply func(domain.Event), each func(domain.Event, *streamEvent)) {
	if len(s.events) == 0 {
		return
	}
	s.created = s.events[0].eventType == creation && s.events[0].version == 1
	for i := range s.events {
		ev := &s.events[i]
		e, err := decode(ev.eventType, ev.schemaVersion, ev.data)
		if err != nil {
			s.undecodable(ev, err)
			continue
		}
		apply(e)
		if each != nil {
			each(e, ev)
		}
	}
}

func (s *foldedStream) undecodable(ev *streamEvent, err error) {
	addDifference(s.report, Difference{Kind: DiffUndecodable, StreamID: s.streamID, Position: ev.position, Detail: err.Error()})
}

func addDifference(r *ReadModelReport, d Difference) {
	r.DifferenceCount++
	if len(r.Differences) < maxListedDifferences {
		r.Differences = append(r.Differences, d)
	}
}

// verifyReadModel compares one read model with the log, all in one
// repeatable-read snapshot: a projector commits its rows with its
// checkpoint, so in one snapshot they must agree exactly.
func verifyReadModel(ctx context.Context, db *sqlx.DB, m readModel) (rep ReadModelReport, err error) {
	rep = ReadModelReport{Name: m.name, Differences: []Difference{}}
	for _, t := range m.tables {
		rep.Tables = append(rep.Tables, t.name)
	}
	tx, err := db.BeginTxx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return rep, err
	}
	defer func() { _ = tx.Rollback() }()

	var txID string
	err = tx.QueryRowContext(ctx, `SELECT last_processed_transaction_id::text, offset_acked FROM consumer_offsets
		WHERE consumer_group = $1`, m.name).Scan(&txID, &rep.CheckpointPosition)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		txID = "0"
	case err != nil:
		return rep, fmt.Errorf("checkpoint: %w", err)
	default:
		rep.Started = true
	}
	if rep.CheckpointTxID, err = strconv.ParseUint(txID, 10, 64); err != nil {
		return rep, fmt.Errorf("checkpoint transaction id %q: %w", txID, err)
	}

	actual := map[string]map[string]map[string]any{}
	for _, t := range m.tables {
		rows, err := readTable(ctx, tx, t)
		if err != nil {
			return rep, fmt.Errorf("read %s: %w", t.name, err)
		}
		rep.Rows += int64(len(rows))
		actual[t.name] = rows
	}

	if err := parked(ctx, tx, &rep); err != nil {
		return rep, err
	}

	if err := foldLog(ctx, tx, m, &rep, func(s *foldedStream) error {
		for _, want := range m.expect(s) {
			compareRow(&rep, want, actual[want.table], s)
		}
		return nil
	}); err != nil {
		return rep, err
	}
	for _, t := range m.tables {
		keys := make([]string, 0, len(actual[t.name]))
		for k := range actual[t.name] {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			addDifference(&rep, Difference{Kind: DiffExtraRow, Table: t.name, Key: k})
		}
	}
	return rep, nil
}

// readTable reads every row of a table, keyed.
func readTable(ctx context.Context, tx *sqlx.Tx, t modelTable) (map[string]map[string]any, error) {
	rows, err := tx.QueryContext(ctx, t.query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]map[string]any{}
	for rows.Next() {
		var key string
		var raw []byte
		if err := rows.Scan(&key, &raw); err != nil {
			return nil, err
		}
		var row map[string]any
		if err := json.Unmarshal(raw, &row); err != nil {
			return nil, fmt.Errorf("row %s: %w", key, err)
		}
		out[key] = row
	}
	return out, rows.Err()
}

// parked adds the events the projector parked.
func parked(ctx context.Context, tx *sqlx.Tx, rep *ReadModelReport) error {
	rows, err := tx.QueryContext(ctx, `SELECT global_position, type, error FROM parked_events
		WHERE consumer_group = $1 ORDER BY global_position`, rep.Name)
	if err != nil {
		return fmt.Errorf("parked events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var d Difference
		var typ string
		if err := rows.Scan(&d.Position, &typ, &d.Detail); err != nil {
			return fmt.Errorf("parked events: %w", err)
		}
		d.Kind, d.Detail = DiffParked, typ+": "+d.Detail
		addDifference(rep, d)
	}
	return rows.Err()
}

// foldLog reads the model's streams up to the checkpoint, stream by stream
// in version order, and hands each to fn.
func foldLog(ctx context.Context, tx *sqlx.Tx, m readModel, rep *ReadModelReport, fn func(*foldedStream) error) error {
	rows, err := tx.QueryContext(ctx, `SELECT stream_id, stream_type, stream_version, global_position, type, schema_version,
			data, recorded_at FROM events
		WHERE stream_type = ANY($1) AND (tx_id, global_position) <= ($2::text::xid8, $3)
		ORDER BY stream_id, stream_version`,
		pq.Array(m.streamTypes), strconv.FormatUint(rep.CheckpointTxID, 10), rep.CheckpointPosition)
	if err != nil {
		return fmt.Errorf("read the log: %w", err)
	}
	defer rows.Close()
	var cur *foldedStream
	flush := func() error {
		if cur == nil {
			return nil
		}
		last := cur.events[len(cur.events)-1]
		cur.version, cur.lastAt, cur.lastPosition = last.version, last.recordedAt, last.position
		cur.firstAt = cur.events[0].recordedAt
		return fn(cur)
	}
	for rows.Next() {
		var streamID, streamType string
		var ev streamEvent
		if err := rows.Scan(&streamID, &streamType, &ev.version, &ev.position, &ev.eventType, &ev.schemaVersion,
			&ev.data, &ev.recordedAt); err != nil {
			return fmt.Errorf("read the log: %w", err)
		}
		ev.recordedAt = ev.recordedAt.UTC()
		rep.Events++
		if cur == nil || cur.streamID != streamID {
			if err := flush(); err != nil {
				return err
			}
			cur = &foldedStream{streamID: streamID, streamType: streamType, report: rep}
		}
		cur.events = append(cur.events, ev)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the log: %w", err)
	}
	return flush()
}

// compareRow checks one expected row against the read model's and removes
// it from actual.
func compareRow(rep *ReadModelReport, want expectedRow, actual map[string]map[string]any, s *foldedStream) {
	position := want.position
	if position == 0 {
		position = s.lastPosition
	}
	got, ok := actual[want.key]
	if !ok {
		addDifference(rep, Difference{Kind: DiffMissingRow, Table: want.table, Key: want.key, StreamID: s.streamID, Position: position})
		return
	}
	delete(actual, want.key)
	cols := make([]string, 0, len(want.cols))
	for c := range want.cols {
		cols = append(cols, c)
	}
	slices.Sort(cols)
	for _, c := range cols {
		if !sameValue(want.cols[c], got[c]) {
			addDifference(rep, Difference{Kind: DiffColumn, Table: want.table, Key: want.key, Column: c,
				Want: render(want.cols[c]), Got: render(got[c]), StreamID: s.streamID, Position: position})
		}
	}
}

// sameValue compares a value the fold expects with one read from a row's
// JSON (to_jsonb).
func sameValue(want, got any) bool {
	switch w := want.(type) {
	case nil:
		return got == nil
	case string:
		g, ok := got.(string)
		return ok && g == w
	case bool:
		g, ok := got.(bool)
		return ok && g == w
	case int:
		g, ok := got.(float64)
		return ok && g == float64(w)
	case int64:
		g, ok := got.(float64)
		return ok && g == float64(w)
	case time.Time:
		g, ok := got.(string)
		if !ok {
			return false
		}
		t, err := time.Parse(time.RFC3339Nano, g)
		return err == nil && t.Equal(w.Truncate(time.Microsecond))
	case set:
		g, ok := stringsOf(got)
		return ok && slices.Equal(slices.Sorted(slices.Values(g)), slices.Sorted(slices.Values(w)))
	case []string:
		g, ok := stringsOf(got)
		return ok && slices.Equal(g, w)
	case json.RawMessage:
		var v any
		if err := json.Unmarshal(w, &v); err != nil {
			return false
		}
		return reflect.DeepEqual(v, got)
	}
	return reflect.DeepEqual(want, got)
}

func stringsOf(v any) ([]string, bool) {
	if v == nil {
		return []string{}, true
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, len(arr))
	for i, x := range arr {
		s, ok := x.(string)
		if !ok {
			return nil, false
		}
		out[i] = s
	}
	return out, true
}

// render shows a value in a report, cut short when long.
func render(v any) string {
	var s string
	switch v := v.(type) {
	case nil:
		s = "null"
	case time.Time:
		s = v.UTC().Format(time.RFC3339Nano)
	case json.RawMessage:
		s = string(v)
	default:
		raw, err := json.Marshal(v)
		if err != nil {
			s = fmt.Sprint(v)
		} else {
			s = string(raw)
		}
	}
	if r := []rune(s); len(r) > 120 {
		s = string(r[:120]) + "…"
	}
	return s
}
