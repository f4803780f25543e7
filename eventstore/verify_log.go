package eventstore

import (
	"bytes"
	"context"
	"time"
)

// VerifyReport summarises a verification of the log.
type VerifyReport struct {
	// Streams is the number of streams checked.
	Streams int64 `json:"streams_checked"`
	// Events is the number of events checked.
	Events int64 `json:"events_checked"`
	// Breaks is the number of breaks found.
	Breaks int64 `json:"breaks_found"`
}

// verifyPageSize is how many events VerifyLog reads per query.
const verifyPageSize = 2000

// VerifyLog recomputes the hash chain and checks the version sequence of
// every stream (or of the one stream streamID, when it is not empty), as
// VerifyStream does, calling onBreak for every break found. It walks the log
// in (stream_id, stream_version) order in pages of bounded size along the
// unique index, so its memory does not grow with the log; an error returned
// by onBreak stops the walk and is returned.
//
// A version missing at the end of a stream cannot be seen from the chain
// alone, nor can an event rewritten with its hashes recomputed; every other
// removed, inserted or changed event is reported. A signed checkpoint of the
// log (WalkLog) catches those too.
func (s *Store) VerifyLog(ctx context.Context, streamID string, onBreak func(Break) error) (VerifyReport, error) {
	var (
		report VerifyReport
		chain  chainCheck
		after  = struct {
			stream  string
			version int
		}{streamID, 0}
	)
	for {
		n, err := s.verifyPage(ctx, streamID, after.stream, after.version, func(e *Event, data, md string) error {
			if e.StreamID != chain.streamID {
				chain = chainCheck{streamID: e.StreamID, expected: 1}
				report.Streams++
			}
			report.Events++
			for _, b := range chain.check(e, data, md) {
				report.Breaks++
				if err := onBreak(b); err != nil {
					return err
				}
			}
			after.stream, after.version = e.StreamID, e.StreamVersion
			return nil
		})
		if err != nil {
			return report, err
		}
		if n < verifyPageSize {
			return report, nil
		}
	}
}

// verifyPage reads the page of events after (afterStream, afterVersion) and
// passes each to fn; it returns how many it read.
func (s *Store) verifyPage(ctx context.Context, onlyStream, afterStream string, afterVersion int, fn func(e *Event, data, md string) error) (int, error) {
	query := `SELECT ` + rawEventColumns + ` FROM events `
	args := []any{afterStream, afterVersion, verifyPageSize}
	if onlyStream == "" {
		query += `WHERE (stream_id, stream_version) > ($1, $2) ORDER BY stream_id, stream_version LIMIT $3`
	} else {
		query += `WHERE stream_id = $1 AND stream_version > $2 ORDER BY stream_version LIMIT $3`
	}
	return s.eachRaw(ctx, "verify log", query, args, fn)
}

// chainCheck follows one stream's hash chain and version sequence.
type chainCheck struct {
	streamID string
	expected int
	prev     []byte
}

// check verifies the next event of the stream and returns its breaks.
func (c *chainCheck) check(e *Event, data, md string) []Break {
	var breaks []Break
	e.RecordedAt = e.RecordedAt.UTC().Truncate(time.Microsecond)
	for ; c.expected < e.StreamVersion; c.expected++ {
		breaks = append(breaks, Break{StreamID: e.StreamID, Version: c.expected, Position: e.GlobalPosition, Reason: "missing version"})
	}
	c.expected = e.StreamVersion + 1
	if !bytes.Equal(e.PrevHash, c.prev) {
		breaks = append(breaks, Break{StreamID: e.StreamID, Version: e.StreamVersion, Position: e.GlobalPosition, Reason: "prev_hash mismatch"})
	}
	// An event that cannot even be canonicalised was not written by Append.
	if _, ok := verifyHash(e, []byte(data), []byte(md)); !ok {
		breaks = append(breaks, Break{StreamID: e.StreamID, Version: e.StreamVersion, Position: e.GlobalPosition, Reason: "hash mismatch"})
	}
	c.prev = e.Hash
	return breaks
}
