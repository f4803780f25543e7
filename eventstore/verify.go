package eventstore

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
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
	var (
		breaks   []Break
		prev     []byte
		expected = 1
	)
	_, err := s.eachRaw(ctx, "verify "+streamID, `SELECT `+rawEventColumns+` FROM events WHERE stream_id = $1 ORDER BY stream_version`,
		[]any{streamID}, func(e *Event, data, md string) error {
			for ; expected < e.StreamVersion; expected++ {
				breaks = append(breaks, Break{StreamID: streamID, Version: expected, Position: e.GlobalPosition, Reason: "missing version"})
			}
			expected = e.StreamVersion + 1
			if !bytes.Equal(e.PrevHash, prev) {
				breaks = append(breaks, Break{StreamID: streamID, Version: e.StreamVersion, Position: e.GlobalPosition, Reason: "prev_hash mismatch"})
			}
			if _, ok := verifyHash(e, []byte(data), []byte(md)); !ok {
				breaks = append(breaks, Break{StreamID: streamID, Version: e.StreamVersion, Position: e.GlobalPosition, Reason: "hash mismatch"})
			}
			prev = e.Hash
			return nil
		})
	if err != nil {
		return nil, err
	}
	return breaks, nil
}

// rawEventColumns are the columns verification reads: the stored event
// with its transaction id, and its data and metadata as PostgreSQL prints
// them, which is what was hashed.
const rawEventColumns = `global_position, tx_id::text, event_id, stream_id, stream_type, stream_version, type, schema_version,
	data::text, metadata::text, recorded_at, prev_hash, hash`

// eachRaw runs query, which selects rawEventColumns, and passes each event,
// with its data and metadata text, to fn; it returns how many events it
// read. what names the work in errors.
func (s *Store) eachRaw(ctx context.Context, what, query string, args []any, fn func(e *Event, data, md string) error) (int, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("eventstore: %s: %w", what, err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var (
			e            Event
			tx, data, md string
		)
		if err := rows.Scan(&e.GlobalPosition, &tx, &e.EventID, &e.StreamID, &e.StreamType, &e.StreamVersion,
			&e.Type, &e.SchemaVersion, &data, &md, &e.RecordedAt, &e.PrevHash, &e.Hash); err != nil {
			return n, fmt.Errorf("eventstore: %s: %w", what, err)
		}
		if e.TxID, err = strconv.ParseUint(tx, 10, 64); err != nil {
			return n, fmt.Errorf("eventstore: %s: transaction id %q: %w", what, tx, err)
		}
		e.RecordedAt = e.RecordedAt.UTC().Truncate(time.Microsecond)
		n++
		if err := fn(&e, data, md); err != nil {
			return n, err
		}
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("eventstore: %s: %w", what, err)
	}
	return n, nil
}
