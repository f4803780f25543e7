package experts

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/engramhq/engram/cognition"
)

// Recall answers recall questions ("/recall Ada") from the workspace
// memory: the items holding every word asked about, or else any of its
// significant words; asked about nothing, it summarises the memory. The
// message asking, and the assistant's own replies, are not answers.
type Recall struct {
	memory cognition.Memory
	now    func() time.Time
}

var _ cognition.Expert = (*Recall)(nil)

// RecallLimit is the most items a recall answer lists.
const RecallLimit = 10

// NewRecall returns the memory expert reading m; now is the clock (time.Now
// when nil).
func NewRecall(m cognition.Memory, now func() time.Time) *Recall {
	if now == nil {
		now = time.Now
	}
	return &Recall{memory: m, now: now}
}

// Name returns "memory".
func (*Recall) Name() string { return "memory" }

// Capabilities returns ["recall", "summarize"].
func (*Recall) Capabilities() []string { return []string{"recall", "summarize"} }

// Handle answers from the memory.
func (r *Recall) Handle(ctx context.Context, t cognition.Task, p cognition.Progress) (cognition.Result, error) {
	p.Status(ctx, "Searching the workspace memory...")
	now := r.now()
	question := strings.TrimSpace(t.Input)
	if len(cognition.Words(question)) == 0 {
		c, err := cognition.BuildContext(ctx, r.memory, t.WorkspaceID, now)
		if err != nil {
			return cognition.Result{}, err
		}
		return cognition.Result{Output: c.Summary}, nil
	}
	items, err := r.search(ctx, t, cognition.Query{Words: cognition.SearchText(question), Now: now})
	if err == nil && len(items) == 0 {
		if words := significant(question); words != "" {
			items, err = r.search(ctx, t, cognition.Query{Words: words, AnyWord: true, Now: now})
		}
	}
	if err != nil {
		return cognition.Result{}, err
	}
	if len(items) == 0 {
		return cognition.Result{Output: fmt.Sprintf("I don't remember anything about “%s”.", cognition.Excerpt(question, 80))}, nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Here is what I remember about “%s”:", cognition.Excerpt(question, 80))
	for _, it := range items {
		fmt.Fprintf(&b, "\n- [%s] %s", it.Type, cognition.Describe(it, 300))
	}
	return cognition.Result{Output: b.String()}, nil
}

// search returns up to RecallLimit items matching q, without the asking
// message and the assistant's replies.
func (r *Recall) search(ctx context.Context, t cognition.Task, q cognition.Query) ([]cognition.Item, error) {
	q.Limit = 2 * RecallLimit
	items, err := r.memory.Search(ctx, t.WorkspaceID, q)
	if err != nil {
		return nil, fmt.Errorf("recall: %w", err)
	}
	items = slices.DeleteFunc(items, func(it cognition.Item) bool {
		return it.SourceMessageID == t.MessageID || role(it) == "assistant"
	})
	return items[:min(len(items), RecallLimit)], nil
}

func role(it cognition.Item) string {
	var md struct {
		Role string `json:"role"`
	}
	_ = json.Unmarshal(it.Metadata, &md)
	return md.Role
}

// stopWords are words too common to recall anything by.
var stopWords = map[string]bool{
	"a": true, "about": true, "an": true, "and": true, "are": true, "can": true, "do": true, "does": true, "for": true,
	"from": true, "how": true, "i": true, "in": true, "is": true, "it": true, "know": true, "me": true, "my": true,
	"of": true, "on": true, "or": true, "remember": true, "tell": true, "that": true, "the": true, "this": true,
	"to": true, "was": true, "what": true, "when": true, "where": true, "who": true, "with": true, "you": true, "your": true,
}

// significant returns the words of question that are not stop words.
func significant(question string) string {
	var out []string
	for _, w := range cognition.Words(question) {
		if !stopWords[w] {
			out = append(out, w)
		}
	}
	return cognition.SearchText(strings.Join(out, " "))
}
