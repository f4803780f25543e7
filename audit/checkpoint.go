package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"time"

	"github.com/engramhq/engram/domain/auditlog"
	"github.com/engramhq/engram/eventstore"
)

// A checkpoint is a signed statement of the whole log as it stood: every
// event of every transaction that had ended when it was taken (those below
// its transaction horizon, see eventstore.Store.LogHorizon), in position
// order. Each event gives a leaf (eventstore.LogEntry.Leaf: its position,
// transaction, stream, version, hashes and exact content); every
// CheckpointBlockSize consecutive leaves give a block digest; the blocks give
// the head; the head, the horizon, the last position and the number of events
// are signed with Ed25519 by a key kept outside the database. Whoever changes,
// removes, adds or re-hashes a covered event changes a block digest, and
// cannot sign the head that would match.

// CheckpointFormat names the format of checkpoint files.
const CheckpointFormat = "engram-audit-checkpoint/1"

// CheckpointBlockSize is how many events a block of a checkpoint covers: the
// resolution at which a changed event is located.
const CheckpointBlockSize = 256

// maxBlockSize bounds the block size a checkpoint file may claim, and so the
// work of verifying one block.
const maxBlockSize = 1 << 16

// HorizonTimeout bounds how long a checkpoint waits for the transactions
// begun before it to end (see eventstore.Store.LogHorizon).
const HorizonTimeout = time.Minute

// Domain tags keep the inputs of each SHA-256 and of the signature apart.
const (
	blockTag     = "engram checkpoint block v1\x00"
	headTag      = "engram checkpoint head v1\x00"
	statementTag = "engram audit checkpoint v1\n"
)

// Errors of checkpoints; test them with errors.Is.
var (
	// ErrLogBroken means a hash chain of the log is broken: no checkpoint
	// is signed for a log that does not verify.
	ErrLogBroken = errors.New("audit: the event log has breaks")
	// ErrCheckpointInvalid means a checkpoint file is malformed, is not
	// consistent with itself, or its signature does not verify: it was
	// altered, or signed by another key.
	ErrCheckpointInvalid = errors.New("audit: invalid checkpoint")
)

// Checkpoint is a signed head of the log, as written to a checkpoint file.
type Checkpoint struct {
	// Format is CheckpointFormat.
	Format string `json:"format"`
	// CreatedAt is when the checkpoint was taken.
	CreatedAt time.Time `json:"created_at"`
	// TxHorizon is the transaction horizon: the checkpoint covers every
	// event of the transactions with a smaller id.
	TxHorizon uint64 `json:"tx_horizon,string"`
	// Position is the greatest position covered (0 for an empty log).
	Position int64 `json:"position"`
	// Events is the number of events covered.
	Events int64 `json:"events"`
	// BlockSize is how many events a block covers (its last block may
	// cover fewer).
	BlockSize int `json:"block_size"`
	// Head is the hexadecimal SHA-256 over the blocks.
	Head string `json:"head"`
	// PublicKey is the base64 of the Ed25519 public key that signed.
	PublicKey string `json:"public_key"`
	// Signature is the base64 Ed25519 signature of the statement (see
	// Statement).
	Signature string `json:"signature"`
	// Blocks are the blocks in position order.
	Blocks []CheckpointBlock `json:"blocks"`
}

// CheckpointBlock is the digest of consecutive covered events.
type CheckpointBlock struct {
	// Positions are the positions of the block's events.
	Positions Positions `json:"positions"`
	// Digest is the hexadecimal SHA-256 over the tag
	// "engram checkpoint block v1\x00" and the leaves of the block's events.
	Digest string `json:"digest"`
}

// Statement returns the bytes the signature covers: a short text naming the
// format, the time, the horizon, the last position, the number of events, the
// block size and the head, one "name: value" a line.
func (c *Checkpoint) Statement() []byte {
	var b bytes.Buffer
	b.WriteString(statementTag)
	fmt.Fprintf(&b, "created_at: %s\n", c.CreatedAt.UTC().Format(time.RFC3339Nano))
	fmt.Fprintf(&b, "tx_horizon: %d\n", c.TxHorizon)
	fmt.Fprintf(&b, "position: %d\n", c.Position)
	fmt.Fprintf(&b, "events: %d\n", c.Events)
	fmt.Fprintf(&b, "block_size: %d\n", c.BlockSize)
	fmt.Fprintf(&b, "head: %s\n", c.Head)
	return b.Bytes()
}

// HeadOf computes the head of blocks: SHA-256 over the tag
// "engram checkpoint head v1\x00" and, for each block, the length of its
// positions' text form (4 bytes, big-endian), that text and its digest.
func HeadOf(blocks []CheckpointBlock) (string, error) {
	h := sha256.New()
	h.Write([]byte(headTag))
	var n [4]byte
	for i, b := range blocks {
		d, err := hex.DecodeString(b.Digest)
		if err != nil || len(d) != sha256.Size {
			return "", fmt.Errorf("block %d: digest %q is not a hexadecimal SHA-256", i+1, b.Digest)
		}
		text := b.Positions.String()
		binary.BigEndian.PutUint32(n[:], uint32(len(text)))
		h.Write(n[:])
		h.Write([]byte(text))
		h.Write(d)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ReadCheckpoint reads a checkpoint file. It checks the syntax only: call
// Check before trusting it.
func ReadCheckpoint(r io.Reader) (*Checkpoint, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var c Checkpoint
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckpointInvalid, err)
	}
	return &c, nil
}

// Check verifies that the checkpoint is consistent with itself and that its
// signature verifies with pub, or, when pub is nil, with the key the
// checkpoint names (which proves only that the file is intact: compare that
// key with the one you trust). It returns the key that verified. Every
// failure wraps ErrCheckpointInvalid.
func (c *Checkpoint) Check(pub ed25519.PublicKey) (ed25519.PublicKey, error) {
	fail := func(format string, args ...any) (ed25519.PublicKey, error) {
		return nil, fmt.Errorf("%w: %s", ErrCheckpointInvalid, fmt.Sprintf(format, args...))
	}
	if c.Format != CheckpointFormat {
		return fail("format %q, want %q", c.Format, CheckpointFormat)
	}
	if c.BlockSize < 1 || c.BlockSize > maxBlockSize {
		return fail("block_size %d is not between 1 and %d", c.BlockSize, maxBlockSize)
	}
	var events, last int64
	for i, b := range c.Blocks {
		n := b.Positions.Count()
		if n == 0 || n > int64(c.BlockSize) || (i < len(c.Blocks)-1 && n != int64(c.BlockSize)) {
			return fail("block %d covers %d events, block_size is %d", i+1, n, c.BlockSize)
		}
		if b.Positions.First() <= last {
			return fail("block %d does not follow block %d", i+1, i)
		}
		events, last = events+n, b.Positions.Last()
	}
	if events != c.Events || last != c.Position {
		return fail("the blocks cover %d events up to position %d; the checkpoint says %d up to %d", events, last, c.Events, c.Position)
	}
	head, err := HeadOf(c.Blocks)
	if err != nil {
		return fail("%v", err)
	}
	if head != c.Head {
		return fail("the blocks do not give the head %s", c.Head)
	}
	own, err := ParsePublicKey([]byte(c.PublicKey))
	if err != nil {
		return fail("public_key: %v", err)
	}
	if pub == nil {
		pub = own
	} else if !pub.Equal(own) {
		return fail("signed by key %s, not by the key given (%s)", Fingerprint(own), Fingerprint(pub))
	}
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil || !ed25519.Verify(pub, c.Statement(), sig) {
		return fail("the signature does not verify with key %s: the checkpoint was altered", Fingerprint(pub))
	}
	return pub, nil
}

// blockBuilder accumulates the leaves of one block.
type blockBuilder struct {
	positions Positions
	digest    hash.Hash
}

func newBlockBuilder() *blockBuilder {
	b := &blockBuilder{digest: sha256.New()}
	b.digest.Write([]byte(blockTag))
	return b
}

func (b *blockBuilder) add(e eventstore.LogEntry) {
	b.positions.Add(e.Position)
	b.digest.Write(e.Leaf)
}

func (b *blockBuilder) block() CheckpointBlock {
	return CheckpointBlock{Positions: b.positions, Digest: hex.EncodeToString(b.digest.Sum(nil))}
}

// Checkpoint verifies every hash chain of the log (calling onBreak for each
// break, as Verify does) and, when none is broken, returns a checkpoint of
// every event of the transactions that had ended, signed with key. A broken
// log is not signed: the error then wraps ErrLogBroken. The read is recorded.
func (s *Service) Checkpoint(ctx context.Context, r Reader, key ed25519.PrivateKey, onBreak func(eventstore.Break) error) (*Checkpoint, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("audit: checkpoint: an Ed25519 signing key is required")
	}
	created := time.Now().UTC().Truncate(time.Microsecond)
	// The horizon first: every event it covers was committed before the
	// chains are walked, so each is verified.
	hctx, cancel := context.WithTimeout(ctx, HorizonTimeout)
	horizon, err := s.store.LogHorizon(hctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("audit: checkpoint: a transaction begun before it is still open after %s (see pg_stat_activity): %w", HorizonTimeout, err)
		}
		return nil, err
	}
	report, err := s.store.VerifyLog(ctx, "", onBreak)
	if err != nil {
		return nil, err
	}
	if report.Breaks > 0 {
		return nil, fmt.Errorf("%w: %d breaks, no checkpoint signed", ErrLogBroken, report.Breaks)
	}
	c := &Checkpoint{Format: CheckpointFormat, CreatedAt: created, TxHorizon: horizon, BlockSize: CheckpointBlockSize, Blocks: []CheckpointBlock{}}
	cur, inBlock := newBlockBuilder(), 0
	err = s.store.WalkLog(ctx, horizon, func(e eventstore.LogEntry) error {
		if !e.HashOK {
			// Changed since the chains were verified.
			return fmt.Errorf("%w: the hash of the event at position %d no longer matches it, no checkpoint signed", ErrLogBroken, e.Position)
		}
		cur.add(e)
		c.Events, c.Position = c.Events+1, e.Position
		if inBlock++; inBlock == CheckpointBlockSize {
			c.Blocks = append(c.Blocks, cur.block())
			cur, inBlock = newBlockBuilder(), 0
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if inBlock > 0 {
		c.Blocks = append(c.Blocks, cur.block())
	}
	if c.Head, err = HeadOf(c.Blocks); err != nil {
		return nil, fmt.Errorf("audit: checkpoint: %w", err)
	}
	c.PublicKey = base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, c.Statement()))

	filter := map[string]any{"checkpoint": "write", "position": c.Position, "head": c.Head}
	if err := s.record(ctx, r, auditlog.OperationVerify, auditlog.FormatJSON, filter, c.Events, true); err != nil {
		return nil, err
	}
	return c, nil
}

// CheckpointChange is a difference between the log and a checkpoint.
type CheckpointChange struct {
	// Change is ChangeDeleted, ChangeInserted or ChangeAltered.
	Change string `json:"change"`
	// Positions are the positions concerned: those of the events deleted
	// or inserted, or those of the block in which an event was altered.
	Positions Positions `json:"positions"`
	// Events is how many events were deleted or inserted, or how many
	// the altered blocks cover.
	Events int64 `json:"events"`
}

// The kinds of CheckpointChange.
const (
	// ChangeDeleted: events the checkpoint covers are gone (a stream's
	// last event removed, the log truncated, …).
	ChangeDeleted = "deleted"
	// ChangeInserted: events the checkpoint does not know appear among
	// those it covers.
	ChangeInserted = "inserted"
	// ChangeAltered: the same positions hold different events — content,
	// stream, version, transaction or hashes changed, hashes recomputed or
	// not.
	ChangeAltered = "altered"
)

// CheckpointReport summarises a verification against a checkpoint.
type CheckpointReport struct {
	// Position and Events are those the checkpoint covers.
	Position int64 `json:"position"`
	Events   int64 `json:"events"`
	// Found is the number of covered events found in the log.
	Found int64 `json:"events_found"`
	// Changes is the number of changes reported.
	Changes int64 `json:"changes_found"`
	// SignedBy is the fingerprint of the key that signed the checkpoint.
	SignedBy string `json:"signed_by"`
}

// VerifyCheckpoint checks the checkpoint (see Checkpoint.Check, with pub)
// and then the log against it, calling onChange for every change found, in
// position order, adjacent changes of one kind merged. Events written after
// the checkpoint are not looked at: a log that has only grown passes. It
// walks the log in bounded memory and records the read.
func (s *Service) VerifyCheckpoint(ctx context.Context, r Reader, c *Checkpoint, pub ed25519.PublicKey,
	onChange func(CheckpointChange) error) (CheckpointReport, error) {
	key, err := c.Check(pub)
	if err != nil {
		return CheckpointReport{}, err
	}
	report := CheckpointReport{Position: c.Position, Events: c.Events, SignedBy: Fingerprint(key)}
	var pending *CheckpointChange
	flush := func() error {
		if pending == nil {
			return nil
		}
		ch := *pending
		pending = nil
		report.Changes++
		return onChange(ch)
	}
	emit := func(kind string, ps Positions) error {
		if len(ps) == 0 {
			return nil
		}
		if pending != nil && pending.Change == kind {
			merged := append(Positions{}, pending.Positions...)
			ps.each(func(p int64) bool { merged.Add(p); return true })
			pending.Positions, pending.Events = merged, merged.Count()
			return nil
		}
		if err := flush(); err != nil {
			return err
		}
		pending = &CheckpointChange{Change: kind, Positions: ps, Events: ps.Count()}
		return nil
	}

	next := 0 // the block the walk is in or before
	cur := newBlockBuilder()
	finish := func() error {
		want, got := c.Blocks[next], cur
		next, cur = next+1, newBlockBuilder()
		missing, extra := difference(want.Positions, got.positions)
		report.Found += want.Positions.Count() - missing.Count()
		if err := emit(ChangeDeleted, missing); err != nil {
			return err
		}
		if err := emit(ChangeInserted, extra); err != nil {
			return err
		}
		if len(missing) == 0 && len(extra) == 0 && hex.EncodeToString(got.digest.Sum(nil)) != want.Digest {
			return emit(ChangeAltered, want.Positions)
		}
		if len(missing) == 0 && len(extra) == 0 {
			return flush() // an intact block separates changes
		}
		return nil
	}
	err = s.store.WalkLog(ctx, c.TxHorizon, func(e eventstore.LogEntry) error {
		for next < len(c.Blocks) && e.Position > c.Blocks[next].Positions.Last() {
			if err := finish(); err != nil {
				return err
			}
		}
		if next < len(c.Blocks) && e.Position >= c.Blocks[next].Positions.First() {
			cur.add(e)
			return nil
		}
		// Between two blocks, or beyond the last: no event was there.
		var ps Positions
		ps.Add(e.Position)
		return emit(ChangeInserted, ps)
	})
	for err == nil && next < len(c.Blocks) {
		err = finish()
	}
	if err == nil {
		err = flush()
	}
	if err != nil {
		return report, err
	}
	filter := map[string]any{"checkpoint": c.Head, "position": c.Position}
	if err := s.record(ctx, r, auditlog.OperationVerify, auditlog.FormatJSON, filter, report.Changes, true); err != nil {
		return report, err
	}
	return report, nil
}

// difference returns the positions of want missing from got, and those of
// got missing from want.
func difference(want, got Positions) (missing, extra Positions) {
	in := func(ps Positions, p int64) bool {
		for _, r := range ps {
			if p >= r.First && p <= r.Last {
				return true
			}
		}
		return false
	}
	want.each(func(p int64) bool {
		if !in(got, p) {
			missing.Add(p)
		}
		return true
	})
	got.each(func(p int64) bool {
		if !in(want, p) {
			extra.Add(p)
		}
		return true
	})
	return missing, extra
}

// String describes a change for a person, e.g. "2 events deleted at
// positions 9-10".
func (ch CheckpointChange) String() string {
	where := "positions " + ch.Positions.String()
	if ch.Positions.Count() == 1 {
		where = "position " + ch.Positions.String()
	}
	switch ch.Change {
	case ChangeDeleted, ChangeInserted:
		return plural(ch.Events, "event", "events") + " " + ch.Change + " at " + where
	default:
		return "at least one event altered among " + where + " (" + plural(ch.Events, "event", "events") + ")"
	}
}

// plural returns "1 event", "2 events".
func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.FormatInt(n, 10) + " " + many
}
