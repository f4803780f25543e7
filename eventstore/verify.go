package eventstore

import (
	"bytes"
	"context"
	"fmt"
	"time"
)

// Break is one defect found when verifying a stream.
type Break struct {
	StreamID string `json:"stream_id"`
	Version  int    `json:"stream_version"`
	Position int64  `json:"global_position"`
	// Reason says what is wrong: "hash mismatch", "prev_hash mismatch" or
	// "missing version".
	Reason string `json:"reason"`
}

// VerifyStream recomputes the hash chain and checks the version sequence of a
// stream. It returns every break found (none means the stream is intact).
func (s *Store) VerifyStream(ctx context.Context, streamID string) ([]Break, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT global_position, event_id, stream_id, stream_type,
		stream_version, type, schema_version, data::text, metadata::text, recorded_at, prev_hash, hash
		FROM events WHERE stream_id = $1 ORDER BY stream_version`, streamID)
	if err != nil {
		return nil, fmt.Errorf("eventstore: verify %s: %w", streamID, err)
	}
	defer rows.Close()
	var (
		breaks   []Break
		prev     []byte
		expected = 1
	)
	for rows.Next() {
		var (
			e        Event
			data, md string
		)
		if err := rows.Scan(&e.GlobalPosition, &e.EventID, &e.StreamID, &e.StreamType, &e.StreamVersion,
			&e.Type, &e.SchemaVersion, &data, &md, &e.RecordedAt, &e.PrevHash, &e.Hash); err != nil {
			return nil, fmt.Errorf("eventstore: verify %s: %w", streamID, err)
		}
		e.RecordedAt = e.RecordedAt.UTC().Truncate(time.Microsecond)
		for ; expected < e.StreamVersion; expected++ {
			breaks = append(breaks, Break{StreamID: streamID, Version: expected, Position: e.GlobalPosition, Reason: "missing version"})
		}
		expected = e.StreamVersion + 1
		if !bytes.Equal(e.PrevHash, prev) {
			breaks = append(breaks, Break{StreamID: streamID, Version: e.StreamVersion, Position: e.GlobalPosition, Reason: "prev_hash mismatch"})
		}
		if _, ok := verifyHash(&e, []byte(data), []byte(md)); !ok {
			breaks = append(breaks, Break{StreamID: streamID, Version: e.StreamVersion, Position: e.GlobalPosition, Reason: "hash mismatch"})
		}
		prev = e.Hash
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("eventstore: verify %s: %w", streamID, err)
	}
	return breaks, nil
}
