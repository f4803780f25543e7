package eventstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"
)

// LogEntry is one event as a checkpoint of the whole log covers it.
type LogEntry struct {
	// Position is the event's global position.
	Position int64
	// StreamID and Version name the event in its stream.
	StreamID string
	Version  int
	// Leaf is SHA-256 over the event's position, transaction id, stream id,
	// stream version, prev_hash, hash and the digest of its canonical content
	// with numbers exact: it changes when anything stored of the
	// event changes, hashes recomputed or not.
	Leaf []byte
	// HashOK reports whether the event's stored hash is reproduced from its
	// content and prev_hash (by either hash scheme).
	HashOK bool
}

// LogHorizon returns a transaction horizon that covers every event committed
// before it was called: a transaction id it takes (and ends at once), greater
// than that of every transaction that could write before it. It waits, polling, until every transaction begun by then has ended (a
// transaction held open keeps it waiting until ctx ends). Every transaction
// below the horizon has then ended and every later one has an id at least as
// large, so the events of the transactions below it are final: a later
// reading of them finds exactly the same set, unless someone bypassed the
// event store.
func (s *Store) LogHorizon(ctx context.Context) (uint64, error) {
	var raw string
	if err := s.db.GetContext(ctx, &raw, `SELECT pg_current_xact_id()::text`); err != nil {
		return 0, fmt.Errorf("eventstore: log horizon: %w", err)
	}
	horizon, err := strconv.ParseUint(raw, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("eventstore: log horizon %q: %w", raw, err)
	}
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		var ended bool
		if err := s.db.GetContext(ctx, &ended, `SELECT pg_snapshot_xmin(pg_current_snapshot()) >= $1::text::xid8`, raw); err != nil {
			return 0, fmt.Errorf("eventstore: log horizon: %w", err)
		}
		if ended {
			return horizon, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, fmt.Errorf("eventstore: log horizon: waiting for the transactions open since before it to end: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// WalkLog calls fn, in global position order, for every event written by a
// transaction below horizon (see LogHorizon), with the event's leaf. It reads
// the log in pages of bounded size, so its memory does not grow with the log;
// an error returned by fn stops the walk and is returned.
func (s *Store) WalkLog(ctx context.Context, horizon uint64, fn func(LogEntry) error) error {
	after := int64(0)
	for {
		n, err := s.walkPage(ctx, horizon, after, func(e *Event, data, md string) error {
			after = e.GlobalPosition
			leaf, hashOK := leafOf(e, data, md)
			return fn(LogEntry{Position: e.GlobalPosition, StreamID: e.StreamID, Version: e.StreamVersion, Leaf: leaf, HashOK: hashOK})
		})
		if err != nil {
			return err
		}
		if n < verifyPageSize {
			return nil
		}
	}
}

// walkPage passes each event after position after and below horizon, of
// one page, to fn and returns how many it read.
func (s *Store) walkPage(ctx context.Context, horizon uint64, after int64, fn func(e *Event, data, md string) error) (int, error) {
	return s.eachRaw(ctx, "walk log", `SELECT `+rawEventColumns+` FROM events
		WHERE global_position > $1 AND tx_id < $2::text::xid8 ORDER BY global_position LIMIT $3`,
		[]any{after, strconv.FormatUint(horizon, 10), verifyPageSize}, fn)
}

// leafTag separates leaves from every other SHA-256 input of the log.
const leafTag = "engram checkpoint leaf v1\x00"

// leafOf computes the leaf of a stored event (GlobalPosition, TxID, the
// fields its hash covers, PrevHash and Hash set) whose data and metadata are
// the JSON documents as stored:
//
//	SHA-256("engram checkpoint leaf v1\x00" ‖ u64 position ‖ u64 tx_id ‖
//	        u32 len ‖ stream_id ‖ u64 stream_version ‖ u32 len ‖ prev_hash ‖
//	        u32 len ‖ hash ‖ SHA-256(canonical event, numbers exact))
//
// with big-endian integers. The content digest binds every number exactly
// even for events hashed with the legacy scheme. Content that cannot be
// canonicalised (no event Append wrote) is digested as stored, so that the
// leaf still differs from any intact event's. leafOf also reports whether
// the event's stored hash is reproduced from its content.
func leafOf(e *Event, data, metadata string) (leaf []byte, hashOK bool) {
	var content []byte
	if doc, err := exactDocument(e, []byte(data), []byte(metadata), false); err == nil {
		sum := sha256.Sum256(doc)
		content, hashOK = sum[:], bytes.Equal(digest(e.PrevHash, doc), e.Hash)
	} else {
		sum := sha256.Sum256([]byte("uncanonical\x00" + data + "\x00" + metadata))
		content = sum[:]
	}
	if !hashOK {
		doc, err := legacyDocument(e, []byte(data), []byte(metadata))
		hashOK = err == nil && bytes.Equal(digest(e.PrevHash, doc), e.Hash)
	}
	h := sha256.New()
	var n [8]byte
	put64 := func(v uint64) {
		binary.BigEndian.PutUint64(n[:], v)
		h.Write(n[:])
	}
	putBytes := func(b []byte) {
		binary.BigEndian.PutUint32(n[:4], uint32(len(b)))
		h.Write(n[:4])
		h.Write(b)
	}
	h.Write([]byte(leafTag))
	put64(uint64(e.GlobalPosition))
	put64(e.TxID)
	putBytes([]byte(e.StreamID))
	put64(uint64(e.StreamVersion))
	putBytes(e.PrevHash)
	putBytes(e.Hash)
	h.Write(content)
	return h.Sum(nil), hashOK
}
