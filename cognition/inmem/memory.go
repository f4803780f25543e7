// Package inmem is an in-memory cognition.Memory: a projection of memory.*
// events kept in a map, for tests, tools and single-process experiments. It
// forgets everything when the process ends; feed it the log from the start
// to rebuild it.
package inmem

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"

	"github.com/engramhq/engram/cognition"
	"github.com/engramhq/engram/domain/catalog"
	"github.com/engramhq/engram/domain/memory"
	"github.com/engramhq/engram/eventstore"
)

// Memory is an in-memory workspace memory. It is safe for concurrent use.
type Memory struct {
	mu         sync.RWMutex
	workspaces map[string]*workspace
}

type workspace struct {
	version int // memory stream version applied
	items   map[string]*entry
}

type entry struct {
	item    cognition.Item
	words   map[string]bool
	deleted bool
}

var _ cognition.Memory = (*Memory)(nil)

// New returns an empty Memory.
func New() *Memory { return &Memory{workspaces: map[string]*workspace{}} }

// Apply applies one event: events of memory streams change the memory, all
// others are ignored. An event the memory has already applied (at or below
// its workspace's stream version) changes nothing.
func (m *Memory) Apply(_ context.Context, e eventstore.Event) error {
	if e.StreamType != memory.StreamType {
		return nil
	}
	ev, err := memory.Decode(e.Type, e.SchemaVersion, e.Data)
	if err != nil {
		return err
	}
	workspaceID := catalog.Memories.ID(e.StreamID)
	m.mu.Lock()
	defer m.mu.Unlock()
	ws := m.workspaces[workspaceID]
	if ws == nil {
		ws = &workspace{items: map[string]*entry{}}
		m.workspaces[workspaceID] = ws
	}
	if e.StreamVersion <= ws.version {
		return nil
	}
	ws.version = e.StreamVersion
	switch ev := ev.(type) {
	case memory.ItemStored:
		if _, ok := ws.items[ev.ItemID]; ok {
			return nil
		}
		it := cognition.Item{ID: ev.ItemID, WorkspaceID: workspaceID, Type: ev.Type, Content: ev.Content,
			Metadata: bytes.Clone(ev.Metadata), ExpiresAt: ev.ExpiresAt, SourceMessageID: ev.SourceMessageID,
			CreatedAt: e.RecordedAt, UpdatedAt: e.RecordedAt}
		ws.items[ev.ItemID] = &entry{item: it, words: wordSet(ev.Content)}
	case memory.ItemUpdated:
		if en, ok := ws.items[ev.ItemID]; ok {
			if ev.Content != nil {
				en.item.Content = *ev.Content
				en.words = wordSet(*ev.Content)
			}
			if ev.Metadata != nil {
				en.item.Metadata = bytes.Clone(ev.Metadata)
			}
			if ev.ExpiresAt != nil {
				en.item.ExpiresAt = ev.ExpiresAt
			}
			en.item.UpdatedAt = e.RecordedAt
		}
	case memory.ItemDeleted:
		if en, ok := ws.items[ev.ItemID]; ok {
			en.deleted = true
		}
	}
	return nil
}

// Search implements cognition.Memory.
func (m *Memory) Search(_ context.Context, workspaceID string, q cognition.Query) ([]cognition.Item, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	q = q.Normalized()
	words := cognition.Words(q.Words)
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := []cognition.Item{}
	ws := m.workspaces[workspaceID]
	if ws == nil {
		return out, nil
	}
	for _, en := range ws.items {
		if matches(en, q, words) {
			it := en.item
			it.Metadata = bytes.Clone(it.Metadata)
			out = append(out, it)
		}
	}
	slices.SortFunc(out, func(a, b cognition.Item) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	if len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

func matches(en *entry, q cognition.Query, words []string) bool {
	it := en.item
	switch {
	case en.deleted:
		return false
	case len(q.Types) > 0 && !slices.Contains(q.Types, it.Type):
		return false
	case !q.From.IsZero() && it.CreatedAt.Before(q.From):
		return false
	case !q.To.IsZero() && !it.CreatedAt.Before(q.To):
		return false
	case !q.IncludeExpired && it.Expired(q.Now):
		return false
	case q.Before != nil && !before(it, *q.Before):
		return false
	case len(words) > 0 && !hasWords(en.words, words, q.AnyWord):
		return false
	}
	return metadataMatches(it.Metadata, q.Metadata)
}

func before(it cognition.Item, c cognition.Cursor) bool {
	if !it.CreatedAt.Equal(c.CreatedAt) {
		return it.CreatedAt.Before(c.CreatedAt)
	}
	return it.ID < c.ID
}

func hasWords(have map[string]bool, want []string, any bool) bool {
	for _, w := range want {
		if have[w] == any {
			return any
		}
	}
	return !any
}

func wordSet(content string) map[string]bool {
	set := map[string]bool{}
	for _, w := range cognition.Words(content) {
		set[w] = true
	}
	return set
}

// metadataMatches reports whether every key of want has its value in md: a
// string itself, or the text of a number or boolean.
func metadataMatches(md json.RawMessage, want map[string]string) bool {
	if len(want) == 0 {
		return true
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(md, &obj) != nil {
		return false
	}
	for k, v := range want {
		text, ok := scalarText(obj[k])
		if !ok || text != v {
			return false
		}
	}
	return true
}

// scalarText renders a JSON scalar as PostgreSQL's ->> does: a string
// without quotes, a number or boolean as written. It reports false for an
// absent value, null, an object or an array, which match nothing.
func scalarText(raw json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	t := strings.TrimSpace(string(raw))
	if t == "" || t == "null" || t[0] == '{' || t[0] == '[' {
		return "", false
	}
	return t, true
}
