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
// use it: a conversation's messages are most of the log, and one statement
// per page beats several per event. ApplyBatch must leave the read model
// exactly as applying each event in order with Apply would.
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

// ApplyBatch implements BatchProjector: runs of messages and routing
// decisions (which only move their conversation on) are written with two
// statements per run; every other event goes through Apply.
func (p conversationsProjector) ApplyBatch(ctx context.Context, tx Execer, events []eventstore.Event) error {
	run := &messageRun{p: p, streams: map[string]*runStream{}}
	for _, e := range events {
		if e.StreamType != conversation.StreamType {
			continue
		}
		if e.Type == conversation.EventMessagePosted || e.Type == conversation.EventRoutingDecided {
			if err := run.add(e); err != nil {
				return err
			}
			continue
		}
		if err := run.flush(ctx, tx); err != nil {
			return err
		}
		if err := p.Apply(ctx, tx, e); err != nil {
			return fmt.Errorf("event %d (%s): %w", e.GlobalPosition, e.Type, err)
		}
	}
	return run.flush(ctx, tx)
}

// messageRun gathers consecutive messages and routing decisions.
type messageRun struct {
	p       conversationsProjector
	order   []string // conversation ids, first seen first
	streams map[string]*runStream
}

// runStream is what a run does to one conversation.
type runStream struct {
	events   []eventstore.Event
	messages []conversation.MessagePosted
	msgAt    []time.Time
	first    int // stream version of the first event of the run
}

func (r *messageRun) add(e eventstore.Event) error {
	ev, err := conversation.Decode(e.Type, e.SchemaVersion, e.Data)
	if err != nil {
		return fmt.Errorf("event %d (%s): %w", e.GlobalPosition, e.Type, err)
	}
	id := idOf(e, conversation.StreamType)
	s := r.streams[id]
	if s == nil {
		s = &runStream{first: e.StreamVersion}
		r.streams[id] = s
		r.order = append(r.order, id)
	}
	s.events = append(s.events, e)
	if m, ok := ev.(conversation.MessagePosted); ok {
		s.messages = append(s.messages, m)
		s.msgAt = append(s.msgAt, e.RecordedAt)
	}
	return nil
}

// flush writes the run: one UPDATE moves every conversation on (guarded by
// its version, as Apply is), one INSERT adds the messages of those it moved.
// The conversations it could not move (missing, or already past the run's
// first event) get their events one by one through Apply, which decides.
func (r *messageRun) flush(ctx context.Context, tx Execer) error {
	if len(r.order) == 0 {
		return nil
	}
	defer func() {
		r.order = r.order[:0]
		clear(r.streams)
	}()
	n := len(r.order)
	ids, firsts, lasts, lastAt, counts, lastMsgAt := make([]string, n), make([]int64, n), make([]int64, n),
		make([]string, n), make([]int64, n), make([]string, n)
	for i, id := range r.order {
		s := r.streams[id]
		last := s.events[len(s.events)-1]
		ids[i], firsts[i], lasts[i], lastAt[i] = id, int64(s.first), int64(last.StreamVersion), timestamp(last.RecordedAt)
		counts[i] = int64(len(s.messages))
		if len(s.msgAt) > 0 {
			lastMsgAt[i] = timestamp(s.msgAt[len(s.msgAt)-1])
		}
	}
	moved, err := r.move(ctx, tx, ids, firsts, lasts, lastAt, counts, lastMsgAt)
	if err != nil {
		return err
	}

	var mIDs, mConv, mWS, mAuthor, mRole, mContent, mMeta, mAt []string
	var mPos, mVersion []int64
	for _, id := range r.order {
		s := r.streams[id]
		ws, ok := moved[id]
		if !ok {
			for _, e := range s.events {
				if err := r.p.Apply(ctx, tx, e); err != nil {
					return fmt.Errorf("event %d (%s): %w", e.GlobalPosition, e.Type, err)
				}
			}
			continue
		}
		k := 0
		for _, e := range s.events {
			if e.Type != conversation.EventMessagePosted {
				continue
			}
			m := s.messages[k]
			k++
			mIDs, mConv, mWS, mAuthor, mRole = append(mIDs, m.MessageID), append(mConv, id), append(mWS, ws), append(mAuthor, m.AuthorID), append(mRole, m.Role)
			mContent, mMeta, mAt = append(mContent, m.Content), append(mMeta, jsonOrEmpty(m.Metadata)), append(mAt, timestamp(e.RecordedAt))
			mPos, mVersion = append(mPos, e.GlobalPosition), append(mVersion, int64(e.StreamVersion))
		}
	}
	if len(mIDs) == 0 {
		return nil
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO messages (id, conversation_id, workspace_id, author_id, role, content, metadata,
			created_at, position, stream_version)
		SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::jsonb[],
			$8::timestamptz[], $9::bigint[], $10::int[])
		ON CONFLICT (id) DO NOTHING`,
		pq.Array(mIDs), pq.Array(mConv), pq.Array(mWS), pq.Array(mAuthor), pq.Array(mRole), pq.Array(mContent),
		pq.Array(mMeta), pq.Array(mAt), pq.Array(mPos), pq.Array(mVersion))
	if err != nil {
		return fmt.Errorf("insert %d messages: %w", len(mIDs), err)
	}
	return nil
}

// move advances the conversations of the run and returns the workspace of
// each one it advanced.
func (r *messageRun) move(ctx context.Context, tx Execer, ids []string, firsts, lasts []int64, lastAt []string,
	counts []int64, lastMsgAt []string) (map[string]string, error) {
	// A one-row function result keeps this within Execer: the moved
	// conversations come back as two arrays.
	var movedIDs, movedWS []string
	err := tx.QueryRowContext(ctx, `WITH moved AS (
			UPDATE conversations c SET version = v.last_version, updated_at = v.last_at,
				message_count = c.message_count + v.messages,
				last_activity_at = CASE WHEN v.messages > 0 THEN v.last_message_at ELSE c.last_activity_at END
			FROM unnest($1::uuid[], $2::int[], $3::int[], $4::timestamptz[], $5::int[], $6::timestamptz[])
				AS v(id, first_version, last_version, last_at, messages, last_message_at)
			WHERE c.id = v.id AND c.version < v.first_version
			RETURNING c.id::text AS id, c.workspace_id::text AS workspace_id)
		SELECT coalesce(array_agg(id), '{}'), coalesce(array_agg(workspace_id), '{}') FROM moved`,
		pq.Array(ids), pq.Array(firsts), pq.Array(lasts), pq.Array(lastAt), pq.Array(counts), pq.Array(nullable(lastMsgAt)),
	).Scan(pq.Array(&movedIDs), pq.Array(&movedWS))
	if err != nil {
		return nil, fmt.Errorf("advance %d conversations: %w", len(ids), err)
	}
	moved := make(map[string]string, len(movedIDs))
	for i, id := range movedIDs {
		moved[id] = movedWS[i]
	}
	return moved, nil
}

// timestamp renders t for a timestamptz array, to the microsecond.
func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.999999Z07:00") }

// nullable turns empty strings into SQL NULLs inside an array.
func nullable(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		if s != "" {
			out[i] = s
		}
	}
	return out
}
