package audit

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/auditlog"
	"github.com/engramhq/engram/eventstore"
)

// Item is one event of the log as auditors see it, in the API and in
// exports alike: its envelope, with its data without secrets, and its place
// in the hash chain.
type Item struct {
	eventstore.Envelope
	// Hash and PrevHash are hexadecimal; PrevHash is null for version 1.
	Hash     string  `json:"hash"`
	PrevHash *string `json:"prev_hash"`
}

// Page is one page of events.
type Page struct {
	Items []Item
	// NextCursor continues the list; empty on the last page.
	NextCursor string
}

// exportPageSize is how many events an export reads per query.
const exportPageSize = 1000

// Events returns one page of the events selected by q, in global position
// order, and records the read. It returns a CodeInvalid *domain.Error listing
// every invalid field of q.
func (s *Service) Events(ctx context.Context, r Reader, q Query) (Page, error) {
	return s.page(ctx, r, auditlog.OperationEvents, q)
}

// StreamEvents returns one page of the events of a stream selected by q, in
// version order, and records the read. It returns a CodeNotFound error when
// the stream has no events.
func (s *Service) StreamEvents(ctx context.Context, r Reader, streamID string, q Query) (Page, error) {
	if err := s.checkStream(ctx, streamID); err != nil {
		return Page{}, err
	}
	q.Filter.StreamID = streamID
	return s.page(ctx, r, auditlog.OperationStreamEvents, q)
}

func (s *Service) page(ctx context.Context, r Reader, operation string, q Query) (Page, error) {
	c, err := q.check(true)
	if err != nil {
		return Page{}, err
	}
	limit := q.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	page := Page{Items: make([]Item, 0, min(limit, 64))}
	var next cursor
	err = s.each(ctx, q.Filter, c, limit+1, func(it Item) error {
		if len(page.Items) == limit {
			page.NextCursor = next.String()
			return nil
		}
		page.Items = append(page.Items, it)
		next = cursor{Position: it.GlobalPosition, Version: it.StreamVersion}
		return nil
	})
	if err != nil {
		return Page{}, err
	}
	if err := s.record(ctx, r, operation, auditlog.FormatJSON, recorded{q.Filter, q.Cursor, q.Limit}, int64(len(page.Items)), true); err != nil {
		return Page{}, err
	}
	return page, nil
}

// Export passes every event selected by q to write, in global position
// order (at most q.Limit when it is set), reading the log in pages of
// bounded size: memory does not grow with the export. It records the read
// when it ends, with the number of events written and whether the export
// was complete, and returns that number. An error from write stops the
// export and is returned.
func (s *Service) Export(ctx context.Context, r Reader, q Query, write func(Item) error) (int64, error) {
	c, err := q.check(false)
	if err != nil {
		return 0, err
	}
	return s.export(ctx, r, q, c, write)
}

// ExportStream is Export for the events of one stream, in version order. It
// returns a CodeNotFound error, writing nothing, when the stream has no events.
func (s *Service) ExportStream(ctx context.Context, r Reader, streamID string, q Query, write func(Item) error) (int64, error) {
	if err := s.checkStream(ctx, streamID); err != nil {
		return 0, err
	}
	q.Filter.StreamID = streamID
	return s.Export(ctx, r, q, write)
}

func (s *Service) export(ctx context.Context, r Reader, q Query, c cursor, write func(Item) error) (int64, error) {
	var n int64
	complete := false
	var err error
	for {
		var last *cursor
		size := exportPageSize
		if q.Limit > 0 {
			size = min(size, q.Limit-int(n))
		}
		got := 0
		err = s.each(ctx, q.Filter, c, size, func(it Item) error {
			got++
			if err := write(it); err != nil {
				return err
			}
			n++
			last = &cursor{Position: it.GlobalPosition, Version: it.StreamVersion}
			return nil
		})
		if err != nil {
			break
		}
		if got < size || (q.Limit > 0 && n >= int64(q.Limit)) {
			complete = true
			break
		}
		c = *last
	}
	if rerr := s.record(ctx, r, auditlog.OperationExport, auditlog.FormatNDJSON, recorded{q.Filter, q.Cursor, q.Limit}, n, complete); rerr != nil {
		return n, errors.Join(err, rerr)
	}
	return n, err
}

// Count returns how many events q's filter selects after its cursor (to
// size a progress bar).
func (s *Service) Count(ctx context.Context, q Query) (int64, error) {
	c, err := q.check(false)
	if err != nil {
		return 0, err
	}
	conds, _, args := q.Filter.where(c)
	var n int64
	if err := s.db.GetContext(ctx, &n, `SELECT count(*) FROM events WHERE `+conds, args...); err != nil {
		return 0, fmt.Errorf("audit: count: %w", err)
	}
	if q.Limit > 0 {
		n = min(n, int64(q.Limit))
	}
	return n, nil
}

// each reads up to limit events selected by f after c and passes each, with
// its secrets removed, to fn.
func (s *Service) each(ctx context.Context, f Filter, c cursor, limit int, fn func(Item) error) error {
	conds, order, args := f.where(c)
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, `SELECT global_position, event_id, stream_id, stream_type, stream_version,
		type, schema_version, data, metadata, recorded_at, prev_hash, hash FROM events
		WHERE `+conds+` ORDER BY `+order+` LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return fmt.Errorf("audit: read events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return err
		}
		if err := fn(it); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: read events: %w", err)
	}
	return nil
}

func scanItem(rows *sql.Rows) (Item, error) {
	var (
		it             Item
		data, md       []byte
		prevHash, hash []byte
	)
	if err := rows.Scan(&it.GlobalPosition, &it.EventID, &it.StreamID, &it.StreamType, &it.StreamVersion,
		&it.Type, &it.SchemaVersion, &data, &md, &it.RecordedAt, &prevHash, &hash); err != nil {
		return Item{}, fmt.Errorf("audit: read events: %w", err)
	}
	redacted, err := redactData(it.StreamType, it.Type, it.SchemaVersion, data)
	if err != nil {
		return Item{}, fmt.Errorf("audit: event %d: %w", it.GlobalPosition, err)
	}
	it.Data = redacted
	it.Metadata = json.RawMessage(md)
	it.RecordedAt = it.RecordedAt.UTC()
	it.Hash = hex.EncodeToString(hash)
	if prevHash != nil {
		p := hex.EncodeToString(prevHash)
		it.PrevHash = &p
	}
	return it, nil
}

// checkStream returns a CodeNotFound error unless the stream has events.
func (s *Service) checkStream(ctx context.Context, streamID string) error {
	var v domain.Validation
	if !name(&v, "stream_id", streamID) || streamID == "" {
		return domain.Errorf(domain.CodeNotFound, "stream not found")
	}
	var exists bool
	if err := s.db.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM events WHERE stream_id = $1)`, streamID); err != nil {
		return fmt.Errorf("audit: stream %s: %w", streamID, err)
	}
	if !exists {
		return domain.Errorf(domain.CodeNotFound, "stream %s not found", streamID)
	}
	return nil
}
