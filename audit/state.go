package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/auditlog"
	"github.com/engramhq/engram/domain/catalog"
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
// and Apply, renders the aggregate without secrets (both as the stream
// type's catalogue entry says), and records the read.
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
	k, ok := catalog.Lookup(head.StreamType)
	if !ok || k.NewFold == nil {
		v.Add("stream_id", "streams of type %q have no aggregate state", head.StreamType)
	}
	if p.Version > head.Version {
		v.Add("version", "the stream has %d events", head.Version)
	}
	if err := v.Err(); err != nil {
		return State{}, err
	}

	f := k.NewFold()
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
	state, err := json.Marshal(f.State())
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
func (s *Service) foldPage(ctx context.Context, streamID string, after, upTo int, at time.Time, k catalog.Kind, f catalog.Fold, out *State) (int, bool, error) {
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
		e, err := k.Decode(typ, schema, data)
		if err != nil {
			return n, false, fmt.Errorf("version %d: %w", version, err)
		}
		f.Apply(e)
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
