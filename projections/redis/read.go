package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// HotMessages is a page of a conversation's messages read from Redis.
type HotMessages struct {
	// WorkspaceID is the conversation's workspace.
	WorkspaceID string
	// Role is the reader's role in it ("" for none).
	Role string
	// Items are the messages after the requested position, oldest first:
	// up to the count asked for.
	Items []MessageRow
}

// Messages reads up to count of a conversation's messages after position
// after, with the reader's role in its workspace. It reports false when
// Redis cannot answer as SQL would: Redis out, the model not live or behind
// minPosition, the conversation unknown to it, or messages before the
// window asked for.
func (rm *ReadModels) Messages(ctx context.Context, conversationID, userID string, after int64, count int, minPosition int64) (HotMessages, bool) {
	var out HotMessages
	ok := rm.read(ctx, rm.messages, minPosition, func(ctx context.Context, log, rtx, rpos string) ([]any, error) {
		// The reader's membership comes from the workspaces model, which
		// must have reached minPosition too.
		wtx, wpos := "", ""
		if minPosition > 0 {
			var ok bool
			if wtx, wpos, ok = rm.required(ctx, rm.workspaces, minPosition); !ok {
				return []any{"behind"}, nil
			}
		}
		return readMessagesScript.Run(ctx, rm.client(), []string{rm.messages.meta(), rm.workspaces.meta()}, log, rtx, rpos, wtx, wpos,
			rm.messages.base(), rm.workspaces.base(), conversationID, userID, after, count).Slice()
	}, func(res []any) error {
		out.WorkspaceID, out.Role = fmt.Sprint(res[1]), fmt.Sprint(res[2])
		out.Items = make([]MessageRow, 0, len(res)-3)
		for _, raw := range res[3:] {
			var m MessageRow
			if err := json.Unmarshal([]byte(fmt.Sprint(raw)), &m); err != nil {
				return fmt.Errorf("decode a message: %w", err)
			}
			out.Items = append(out.Items, m)
		}
		return nil
	})
	return out, ok
}

// Workspaces reads the first count workspaces of a user, newest first
// (created_at, then id, descending), with the user's role in each. It
// reports false when Redis cannot answer as SQL would.
func (rm *ReadModels) Workspaces(ctx context.Context, userID string, count int, minPosition int64) ([]WorkspaceRow, bool) {
	var out []WorkspaceRow
	ok := rm.read(ctx, rm.workspaces, minPosition, func(ctx context.Context, log, rtx, rpos string) ([]any, error) {
		return readWorkspacesScript.Run(ctx, rm.client(), []string{rm.workspaces.meta()}, log, rtx, rpos,
			rm.workspaces.base(), userID, count).Slice()
	}, func(res []any) error {
		const per = 10 // id, the fields, role
		rows := res[1:]
		if len(rows)%per != 0 {
			return fmt.Errorf("%d values for rows of %d", len(rows), per)
		}
		out = make([]WorkspaceRow, 0, len(rows)/per)
		for i := 0; i < len(rows); i += per {
			f := func(k int) string { return fmt.Sprint(rows[i+k]) }
			w := WorkspaceRow{ID: f(0), OwnerID: f(1), Name: f(2), Description: f(3), Config: json.RawMessage(f(4)),
				Archived: f(5) == "1", Role: f(9)}
			var err error
			if w.CreatedAt, err = time.Parse(time.RFC3339Nano, f(6)); err != nil {
				return fmt.Errorf("workspace %s: created_at: %w", w.ID, err)
			}
			if w.UpdatedAt, err = time.Parse(time.RFC3339Nano, f(7)); err != nil {
				return fmt.Errorf("workspace %s: updated_at: %w", w.ID, err)
			}
			if w.Version, err = strconv.Atoi(f(8)); err != nil {
				return fmt.Errorf("workspace %s: version: %w", w.ID, err)
			}
			out = append(out, w)
		}
		return nil
	})
	return out, ok
}

// required returns the cursor the model must have reached to have applied
// everything up to position: once the consumer group has handled that
// position, the last event it sent to Redis. It reports false when the
// group has not handled it yet (or the position is unknown: the SQL path
// reports that).
func (rm *ReadModels) required(ctx context.Context, m *model, position int64) (string, string, bool) {
	var covered bool
	var tx string
	var pos int64
	err := rm.db.QueryRowContext(ctx, `SELECT (o.last_processed_transaction_id, o.offset_acked) >= (e.tx_id, e.global_position),
			coalesce(r.tx_id::text, '0'), coalesce(r.global_position, 0)
		FROM events e
		JOIN consumer_offsets o ON o.consumer_group = $2
		LEFT JOIN redis_read_model_cursors r ON r.consumer_group = $2
		WHERE e.global_position = $1`, position, m.group).Scan(&covered, &tx, &pos)
	if err != nil || !covered {
		return "", "", false
	}
	return tx, strconv.FormatInt(pos, 10), true
}

// read runs one read script and decodes its answer; it reports whether
// Redis answered.
func (rm *ReadModels) read(ctx context.Context, m *model, minPosition int64,
	run func(ctx context.Context, log, rtx, rpos string) ([]any, error), decode func([]any) error) (served bool) {
	defer func() {
		if rm.onRead != nil {
			rm.onRead(m.name, served)
		}
	}()
	if !rm.up() {
		return false
	}
	log, err := rm.log(ctx)
	if err != nil || log == "" {
		return false
	}
	rtx, rpos := "", ""
	if minPosition > 0 {
		var ok bool
		if rtx, rpos, ok = rm.required(ctx, m, minPosition); !ok {
			return false
		}
	}
	rctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	res, err := run(rctx, log, rtx, rpos)
	if err != nil {
		// A slow answer sends this read to SQL; only a failure says that
		// Redis is gone (a consumer group finds a Redis that hangs).
		if !errors.Is(err, context.DeadlineExceeded) {
			rm.failed(ctx, "read "+m.name, err)
		}
		return false
	}
	if len(res) == 0 || res[0] != "ok" {
		return false
	}
	if err := decode(res); err != nil {
		rm.logger.Error("redis read model answered something undecodable; using SQL", "model", m.group, "err", err)
		return false
	}
	return true
}
