package audit

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/engramhq/engram/domain"
)

// Limits of a query.
const (
	// DefaultLimit is the page size when none is asked for.
	DefaultLimit = 100
	// MaxLimit is the largest page.
	MaxLimit = 1000
	// MaxTypes is the most event types one filter may name.
	MaxTypes = 50
	// maxNameBytes bounds stream ids, stream types, event types and actors.
	maxNameBytes = 256
)

// Filter selects events of the log. Zero fields select everything.
type Filter struct {
	// FromPosition and ToPosition bound the global position, both inclusive.
	FromPosition int64
	ToPosition   int64
	// StreamID selects one stream.
	StreamID string
	// StreamType selects the streams of one aggregate type, e.g. "user".
	StreamType string
	// Types selects events of any of these types, e.g. "user.role_granted".
	Types []string
	// ActorID selects the events recorded on behalf of one actor.
	ActorID string
	// From (inclusive) and To (exclusive) bound the recording time.
	From time.Time
	To   time.Time
}

// Check records every invalid field of f in v, under the names of the HTTP
// query parameters.
func (f Filter) Check(v *domain.Validation) {
	v.Check(f.FromPosition >= 0, "from_position", "must be a positive integer")
	v.Check(f.ToPosition >= 0, "to_position", "must be a positive integer")
	if f.FromPosition > 0 && f.ToPosition > 0 && f.FromPosition > f.ToPosition {
		v.Add("to_position", "must not be below from_position")
	}
	name(v, "stream_id", f.StreamID)
	name(v, "stream_type", f.StreamType)
	name(v, "actor_id", f.ActorID)
	if len(f.Types) > MaxTypes {
		v.Add("type", "names at most %d event types", MaxTypes)
	}
	for _, t := range f.Types {
		if t == "" {
			v.Add("type", "must not be empty")
			break
		}
		if !name(v, "type", t) {
			break
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		v.Add("to", "must be after from")
	}
}

// name checks an optional identifier-like filter value.
func name(v *domain.Validation, field, value string) bool {
	switch {
	case value == "":
		return true
	case len(value) > maxNameBytes:
		v.Add(field, "must be at most %d bytes", maxNameBytes)
		return false
	}
	return v.ID(field, value)
}

// MarshalJSON renders the fields that are set, as recorded with each read.
func (f Filter) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	if f.FromPosition > 0 {
		m["from_position"] = f.FromPosition
	}
	if f.ToPosition > 0 {
		m["to_position"] = f.ToPosition
	}
	if f.StreamID != "" {
		m["stream_id"] = f.StreamID
	}
	if f.StreamType != "" {
		m["stream_type"] = f.StreamType
	}
	if len(f.Types) > 0 {
		m["type"] = f.Types
	}
	if f.ActorID != "" {
		m["actor_id"] = f.ActorID
	}
	if !f.From.IsZero() {
		m["from"] = f.From.UTC().Format(time.RFC3339Nano)
	}
	if !f.To.IsZero() {
		m["to"] = f.To.UTC().Format(time.RFC3339Nano)
	}
	return json.Marshal(m)
}

// Query asks for events of the log: a filter, where to continue and how many.
type Query struct {
	Filter Filter
	// Cursor continues after the last event of a previous page.
	Cursor string
	// Limit is the page size of Events (DefaultLimit when 0, at most
	// MaxLimit) and the most events an Export writes (no limit when 0).
	Limit int
}

// recorded is the part of a query recorded with a read.
type recorded struct {
	Filter
	Cursor string
	Limit  int
}

func (q recorded) MarshalJSON() ([]byte, error) {
	var m map[string]any
	b, err := q.Filter.MarshalJSON()
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if q.Cursor != "" {
		m["cursor"] = q.Cursor
	}
	if q.Limit > 0 {
		m["limit"] = q.Limit
	}
	return json.Marshal(m)
}

// Check records every invalid field of q in v: its filter's, its cursor's
// and its limit's; paged says whether Limit is a page size (at most MaxLimit)
// or the most events of an export.
func (q Query) Check(v *domain.Validation, paged bool) {
	q.Filter.Check(v)
	_, ok := decodeCursor(q.Cursor)
	v.Check(ok, "cursor", "is not a cursor returned by this API")
	if paged {
		v.Check(q.Limit >= 0 && q.Limit <= MaxLimit, "limit", "must be an integer from 1 to %d", MaxLimit)
	} else {
		v.Check(q.Limit >= 0, "limit", "must be a positive integer")
	}
}

// check validates q and returns its cursor.
func (q Query) check(paged bool) (cursor, error) {
	var v domain.Validation
	q.Check(&v, paged)
	if err := v.Err(); err != nil {
		return cursor{}, err
	}
	c, _ := decodeCursor(q.Cursor)
	return c, nil
}

// cursor is the position and stream version of the last event of a page.
type cursor struct {
	Position int64 `json:"p"`
	Version  int   `json:"v"`
}

func (c cursor) String() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (cursor, bool) {
	if s == "" {
		return cursor{}, true
	}
	if len(s) > 128 {
		return cursor{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, false
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil || c.Position < 1 || c.Version < 1 {
		return cursor{}, false
	}
	return c, true
}

// where renders the filter as SQL conditions on events after c, with the
// order that the keyset cursor follows: stream version within one stream
// (along the stream's unique index), global position otherwise.
func (f Filter) where(c cursor) (conds string, order string, args []any) {
	var parts []string
	add := func(cond string, v any) {
		args = append(args, v)
		parts = append(parts, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	after := max(c.Position, f.FromPosition-1)
	if after > 0 {
		add("global_position > ?", after)
	}
	if f.ToPosition > 0 {
		add("global_position <= ?", f.ToPosition)
	}
	order = "global_position"
	if f.StreamID != "" {
		add("stream_id = ?", f.StreamID)
		if c.Version > 0 {
			add("stream_version > ?", c.Version)
		}
		order = "stream_version"
	}
	if f.StreamType != "" {
		add("stream_type = ?", f.StreamType)
	}
	switch len(f.Types) {
	case 0:
	case 1:
		add("type = ?", f.Types[0])
	default:
		add("type = ANY(?)", pq.Array(f.Types))
	}
	if f.ActorID != "" {
		add("metadata->>'actor_id' = ?", f.ActorID)
	}
	if !f.From.IsZero() {
		add("recorded_at >= ?", f.From)
	}
	if !f.To.IsZero() {
		add("recorded_at < ?", f.To)
	}
	if len(parts) == 0 {
		return "true", order, nil
	}
	return strings.Join(parts, " AND "), order, args
}
