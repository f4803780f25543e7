package cognition

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/memory"
)

// Item is one item of a workspace's memory.
type Item struct {
	ID          string
	WorkspaceID string
	// Type is message, entity, file or event.
	Type     string
	Content  string
	Metadata json.RawMessage
	// ExpiresAt is nil for an item that never expires.
	ExpiresAt *time.Time
	// SourceMessageID names the message the item was taken from, if any.
	SourceMessageID string
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// Expired reports whether the item has expired at now.
func (it Item) Expired(now time.Time) bool {
	return it.ExpiresAt != nil && !it.ExpiresAt.After(now)
}

// Limits of a memory query.
const (
	DefaultLimit  = 20
	MaxLimit      = 200
	MaxQueryWords = 32
	MaxQueryRunes = 500
)

// Query selects items of a workspace's memory. Every filter given must
// hold; the zero Query selects the most recent items that have not expired.
type Query struct {
	// Types keeps items of these types (all types when empty).
	Types []string
	// Words keeps items whose content holds every word of it (or, with
	// AnyWord, at least one). Words are runs of letters and digits,
	// compared without regard to case (see Words).
	Words   string
	AnyWord bool
	// From and To keep items created at or after From and before To; a
	// zero time is no bound.
	From, To time.Time
	// Metadata keeps items whose metadata has each key with that value (a
	// string, or the text of a number or boolean).
	Metadata map[string]string
	// Before continues a listing after the item it names (newest first).
	Before *Cursor
	// Limit is the most items returned: DefaultLimit when 0, at most
	// MaxLimit.
	Limit int
	// IncludeExpired keeps items whose expiry has passed.
	IncludeExpired bool
	// Now is the time expiry is judged at (time.Now when zero).
	Now time.Time
}

// Cursor is the position of an item in a listing: newest first, by creation
// time and then id.
type Cursor struct {
	CreatedAt time.Time
	ID        string
}

// Validate reports every problem of the query at once, as a
// domain.CodeInvalid error naming the query parameters (type, q, from, to,
// metadata, limit).
func (q Query) Validate() error {
	var v domain.Validation
	for _, t := range q.Types {
		if !slices.Contains(memory.Types, t) {
			v.Add("type", "must be one of: %s", strings.Join(memory.Types, ", "))
			break
		}
	}
	if p := domain.TextProblem(q.Words); p != "" {
		v.Add("q", "%s", p)
	} else if utf8.RuneCountInString(q.Words) > MaxQueryRunes {
		v.Add("q", "must be at most %d characters", MaxQueryRunes)
	}
	v.Check(q.From.IsZero() || q.To.IsZero() || q.From.Before(q.To), "to", "must be after from")
	for k, val := range q.Metadata {
		if k == "" || domain.TextProblem(k) != "" || domain.TextProblem(val) != "" || len(k) > 200 || len(val) > 1000 {
			v.Add("metadata", "keys must be 1–200 bytes and values at most 1,000, valid UTF-8 without NUL")
			break
		}
	}
	v.Check(q.Limit >= 0 && q.Limit <= MaxLimit, "limit", "must be an integer from 1 to %d", MaxLimit)
	return v.Err()
}

// Normalized returns the query with its defaults applied: Limit, Now and
// Types (sorted, without repeats).
func (q Query) Normalized() Query {
	if q.Limit <= 0 {
		q.Limit = DefaultLimit
	}
	q.Limit = min(q.Limit, MaxLimit)
	if q.Now.IsZero() {
		q.Now = time.Now()
	}
	q.Types = slices.Compact(slices.Sorted(slices.Values(q.Types)))
	return q
}

// Words splits text into the words a memory search looks for: runs of
// letters and digits, lower-cased, each once, at most MaxQueryWords.
func Words(text string) []string {
	var out []string
	for _, w := range strings.FieldsFunc(text, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		w = strings.ToLower(w)
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
		if len(out) == MaxQueryWords {
			break
		}
	}
	return out
}

// SearchText returns the words of text (see Words) as a Query.Words that
// always validates: at most MaxQueryWords words and MaxQueryRunes
// characters. Experts use it to search the memory for what a message is
// about, whatever its length.
func SearchText(text string) string {
	var b strings.Builder
	for _, w := range Words(text) {
		if utf8.RuneCountInString(b.String())+1+utf8.RuneCountInString(w) > MaxQueryRunes {
			break
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(w)
	}
	return b.String()
}

// Memory is a workspace's whiteboard, as its readers see it. Items get
// there as memory.* events; each implementation is a projection of them
// (see the postgres and inmem packages) and must pass the memorytest suite.
type Memory interface {
	// Search returns the workspace's items that match q, newest first (by
	// creation time, then id). Deleted items are never returned, expired
	// ones only with q.IncludeExpired. It fails with a domain.CodeInvalid
	// error when q does not Validate.
	Search(ctx context.Context, workspaceID string, q Query) ([]Item, error)
}
