package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"

	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/eventstore"
)

// BatchProjector is a projector that can apply many events at once. Rebuilds
// use it: a conversation's messages are most of the log, and a few
// statements per page beat several per event. ApplyBatch must leave the read
// model exactly as applying each event in order with Apply would.
type BatchProjector interface {
	Projector
	ApplyBatch(ctx context.Context, tx Execer, events []eventstore.Event) error
}

var (
	_ BatchProjector = conversationsProjector{}
	_ StreamLocal    = conversationsProjector{}
)

// StreamLocal reports true: a conversation's rows (and its messages)
// depend on its own stream only.
func (conversationsProjector) StreamLocal() bool { return true }

// ApplyBatch implements BatchProjector with two statements whatever the
// events: one inserts the conversations created, one moves every other
// conversation on (version, counts, title, metadata, archived: what its
// events do, in order) and inserts the messages of those it moved. A
// conversation the move cannot take (missing, or already past its first
// event here) gets its events one by one through Apply, which decides.
func (p conversationsProjector) ApplyBatch(ctx context.Context, tx Execer, events []eventstore.Event) error {
	b := &conversationBatch{p: p, streams: map[string]*batchStream{}}
	for _, e := range events {
		if e.StreamType != conversation.StreamType {
			continue
		}
		if err := b.add(e); err != nil {
			return fmt.Errorf("event %d (%s): %w", e.GlobalPosition, e.Type, err)
		}
	}
	if len(b.order) == 0 {
		return nil
	}
	if err := b.create(ctx, tx); err != nil {
		return err
	}
	return b.move(ctx, tx)
}

// conversationBatch is what a page of events does to each conversation.
type conversationBatch struct {
	p       conversationsProjector
	order   []string // conversation ids, first seen first
	streams map[string]*batchStream
}

// batchStream is one conversation's events of the page.
type batchStream struct {
	created      *conversation.Created // its first event, when it is the creation
	createdEvent eventstore.Event
	// one is set when the stream must go through Apply event by event (a
	// creation that is not its first event here).
	one bool

	events   []eventstore.Event // after the creation, in order
	messages []conversation.MessagePosted
	msgAt    []time.Time
	title    *string
	metadata []byte
	archived bool
}

func (b *conversationBatch) add(e eventstore.Event) error {
	ev, err := conversation.Decode(e.Type, e.SchemaVersion, e.Data)
	if err != nil {
		return err
	}
	id := idOf(e, conversation.StreamType)
	s := b.streams[id]
	if s == nil {
		s = &batchStream{}
		b.streams[id] = s
		b.order = append(b.order, id)
		if c, ok := ev.(conversation.Created); ok {
			s.created, s.createdEvent = &c, e
			return nil
		}
	}
	s.events = append(s.events, e)
	switch ev := ev.(type) {
	case conversation.Created:
		s.one = true
	case conversation.MessagePosted:
		s.messages = append(s.messages, ev)
		s.msgAt = append(s.msgAt, e.RecordedAt)
	case conversation.Updated:
		if ev.Title != nil {
			s.title = ev.Title
		}
		if ev.Metadata != nil {
			s.metadata = ev.Metadata
		}
	case conversation.Archived:
		s.archived = true
	}
	return nil
}

// create inserts the conversations created in the page, as Apply does.
func (b *conversationBatch) create(ctx context.Context, tx Execer) error {
	var ids, ws, by, titles, modalities, metadata, at []string
	var versions []int64
	for _, id := range b.order {
		s := b.streams[id]
		if s.created == nil || s.one {
			continue
		}
		c := s.created
		ids, ws, by, titles, modalities = append(ids, id), append(ws, c.WorkspaceID), append(by, c.CreatedBy), append(titles, c.Title), append(modalities, c.Modality)
		metadata, at, versions = append(metadata, jsonOrEmpty(c.Metadata)), append(at, timestamp(s.createdEvent.RecordedAt)), append(versions, int64(s.createdEvent.StreamVersion))
	}
	if len(ids) == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO conversations (id, workspace_id, created_by, title, modality, metadata,
			created_at, updated_at, last_activity_at, version)
		SELECT id, ws, by, title, modality, metadata, at, at, at, version
		FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::jsonb[], $7::timestamptz[], $8::int[])
			AS v(id, ws, by, title, modality, metadata, at, version)
		ON CONFLICT (id) DO NOTHING`,
		pq.Array(ids), pq.Array(ws), pq.Array(by), pq.Array(titles), pq.Array(modalities), pq.Array(metadata), pq.Array(at), pq.Array(versions))
	if err != nil {
		return fmt.Errorf("insert %d conversations: %w", len(ids), err)
	}
	return nil
}

// move advances the conversations with events after their creation, and
// inserts the messages of those it advanced, in one statement; the others
// get their events through Apply.
func (b *conversationBatch) move(ctx context.Context, tx Execer) error {
	var ids, lastAt, lastMsgAt, titles, metadata []any
	var firsts, lasts, counts []int64
	var archived []bool
	var m messageColumns
	for _, id := range b.order {
		s := b.streams[id]
		if s.one || len(s.events) == 0 {
			continue
		}
		last := s.events[len(s.events)-1]
		ids, lastAt = append(ids, id), append(lastAt, timestamp(last.RecordedAt))
		firsts, lasts, counts = append(firsts, int64(s.events[0].StreamVersion)), append(lasts, int64(last.StreamVersion)), append(counts, int64(len(s.messages)))
		lastMsgAt, titles, metadata, archived = append(lastMsgAt, nil), append(titles, nil), append(metadata, nil), append(archived, s.archived)
		if n := len(s.msgAt); n > 0 {
			lastMsgAt[len(lastMsgAt)-1] = timestamp(s.msgAt[n-1])
		}
		if s.title != nil {
			titles[len(titles)-1] = *s.title
		}
		if s.metadata != nil {
			metadata[len(metadata)-1] = string(s.metadata)
		}
		m.add(id, s)
	}
	moved := map[string]bool{}
	if len(ids) > 0 {
		// The messages go in with their conversation's move, and only
		// with it: a conversation the move does not take has them
		// applied by Apply below. A one-row answer keeps this within
		// Execer: the moved conversations come back as an array.
		var movedIDs []string
		err := tx.QueryRowContext(ctx, `WITH moved AS (
				UPDATE conversations c SET version = v.last_version, updated_at = v.last_at,
					message_count = c.message_count + v.messages,
					last_activity_at = CASE WHEN v.messages > 0 THEN v.last_message_at ELSE c.last_activity_at END,
					title = coalesce(v.title, c.title), metadata = coalesce(v.metadata, c.metadata),
					archived = c.archived OR v.archived
				FROM unnest($1::uuid[], $2::int[], $3::int[], $4::timestamptz[], $5::int[], $6::timestamptz[], $7::text[],
					$8::jsonb[], $9::bool[])
					AS v(id, first_version, last_version, last_at, messages, last_message_at, title, metadata, archived)
				WHERE c.id = v.id AND c.version < v.first_version
				RETURNING c.id, c.workspace_id),
			inserted AS (
				INSERT INTO messages (id, conversation_id, workspace_id, author_id, role, content, metadata,
					created_at, position, stream_version)
				SELECT m.id, m.conversation_id, moved.workspace_id, m.author_id, m.role, m.content, m.metadata,
					m.created_at, m.position, m.stream_version
				FROM unnest($10::uuid[], $11::uuid[], $12::text[], $13::text[], $14::text[], $15::jsonb[],
					$16::timestamptz[], $17::bigint[], $18::int[])
					AS m(id, conversation_id, author_id, role, content, metadata, created_at, position, stream_version)
				JOIN moved ON moved.id = m.conversation_id
				ON CONFLICT (id) DO NOTHING)
			SELECT coalesce(array_agg(id::text), '{}') FROM moved`,
			pq.Array(ids), pq.Array(firsts), pq.Array(lasts), pq.Array(lastAt), pq.Array(counts), pq.Array(lastMsgAt),
			pq.Array(titles), pq.Array(metadata), pq.Array(archived),
			pq.Array(m.ids), pq.Array(m.conv), pq.Array(m.author), pq.Array(m.role), pq.Array(m.content),
			pq.Array(m.meta), pq.Array(m.at), pq.Array(m.pos), pq.Array(m.version),
		).Scan(pq.Array(&movedIDs))
		if err != nil {
			return fmt.Errorf("advance %d conversations and insert %d messages: %w", len(ids), len(m.ids), err)
		}
		for _, id := range movedIDs {
			moved[id] = true
		}
	}
	for _, id := range b.order {
		s := b.streams[id]
		if moved[id] || len(s.events) == 0 && !s.one {
			continue
		}
		if s.one && s.created != nil {
			if err := b.p.Apply(ctx, tx, s.createdEvent); err != nil {
				return fmt.Errorf("event %d (%s): %w", s.createdEvent.GlobalPosition, s.createdEvent.Type, err)
			}
		}
		for _, e := range s.events {
			if err := b.p.Apply(ctx, tx, e); err != nil {
				return fmt.Errorf("event %d (%s): %w", e.GlobalPosition, e.Type, err)
			}
		}
	}
	return nil
}

// messageColumns are the messages of a page, column by column.
type messageColumns struct {
	ids, conv, author, role, content, meta, at []string
	pos, version                               []int64
}

// add appends the messages of conversation id's events.
func (c *messageColumns) add(id string, s *batchStream) {
	k := 0
	for _, e := range s.events {
		if e.Type != conversation.EventMessagePosted {
			continue
		}
		m := s.messages[k]
		k++
		c.ids, c.conv, c.author, c.role = append(c.ids, m.MessageID), append(c.conv, id), append(c.author, m.AuthorID), append(c.role, m.Role)
		c.content, c.meta, c.at = append(c.content, m.Content), append(c.meta, jsonOrEmpty(m.Metadata)), append(c.at, timestamp(e.RecordedAt))
		c.pos, c.version = append(c.pos, e.GlobalPosition), append(c.version, int64(e.StreamVersion))
	}
}

// timestamp renders t for a timestamptz array, rounded to the microsecond
// as PostgreSQL rounds a time passed as a parameter.
func timestamp(t time.Time) string {
	return t.UTC().Round(time.Microsecond).Format("2006-01-02 15:04:05.999999Z07:00")
}
