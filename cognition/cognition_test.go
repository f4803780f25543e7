package cognition_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/engramhq/engram/cognition"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/domaintest"
)

func TestWords(t *testing.T) {
	tests := []struct {
		text string
		want []string
	}{
		{"", nil},
		{" ?! ", nil},
		{"Ada's job: state-of-the-art", []string{"ada", "s", "job", "state", "of", "the", "art"}},
		{"Paris PARIS paris", []string{"paris"}},
		{"Zürich 2030", []string{"zürich", "2030"}},
	}
	for _, tt := range tests {
		if got := cognition.Words(tt.text); !slices.Equal(got, tt.want) {
			t.Errorf("Words(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
	var many []string
	for i := range 100 {
		many = append(many, fmt.Sprintf("w%d", i))
	}
	if n := len(cognition.Words(strings.Join(many, " "))); n != cognition.MaxQueryWords {
		t.Errorf("%d words, want at most %d", n, cognition.MaxQueryWords)
	}
}

func TestSearchText(t *testing.T) {
	long := strings.Repeat("abcdefghijklmnopqrstuvwxyz0123456789 ", 40) // 40 times the same word
	if got := cognition.SearchText(long); got != "abcdefghijklmnopqrstuvwxyz0123456789" {
		t.Fatalf("SearchText(repeated) = %q", got)
	}
	var words []string
	for i := range 100 {
		words = append(words, fmt.Sprintf("%s%03d", strings.Repeat("w", 20), i))
	}
	got := cognition.SearchText(strings.Join(words, " "))
	if err := (cognition.Query{Words: got}).Validate(); err != nil || got == "" {
		t.Fatalf("SearchText of a long text = %d runes: %v", len(got), err)
	}
}

func TestQueryValidate(t *testing.T) {
	now := time.Now()
	err := cognition.Query{Types: []string{"entity", "fact"}, Words: strings.Repeat("w", cognition.MaxQueryRunes+1),
		From: now, To: now.Add(-time.Second), Metadata: map[string]string{"": "x"}, Limit: -1}.Validate()
	fields := domaintest.InvalidFields(t, err)
	if !slices.Equal(fields, []string{"type", "q", "to", "metadata", "limit"}) {
		t.Fatalf("fields = %v", fields)
	}
	if err := (cognition.Query{Types: []string{"message"}, Words: "ok", Limit: cognition.MaxLimit}).Validate(); err != nil {
		t.Fatal(err)
	}
	q := cognition.Query{Types: []string{"file", "entity", "file"}}.Normalized()
	if q.Limit != cognition.DefaultLimit || q.Now.IsZero() || !slices.Equal(q.Types, []string{"entity", "file"}) {
		t.Fatalf("normalized = %+v", q)
	}
}

func TestDecisionValidate(t *testing.T) {
	for _, d := range []cognition.Decision{
		{Action: "respond", Expert: "echo", Priority: 3},
		{Action: "process", Priority: 1},
		{Action: "ignore", Priority: 5},
	} {
		if err := d.Validate(); err != nil {
			t.Errorf("%+v: %v", d, err)
		}
	}
	for _, d := range []cognition.Decision{
		{Action: "dance", Priority: 3},
		{Action: "delegate", Priority: 3},
		{Action: "respond", Expert: "echo", Priority: 6},
	} {
		if err := d.Validate(); domain.ErrorCode(err) != domain.CodeInvalid {
			t.Errorf("%+v accepted", d)
		}
	}
}

// listMemory is a Memory over a fixed list, newest first, that honours the
// type filter only.
type listMemory []cognition.Item

func (m listMemory) Search(_ context.Context, _ string, q cognition.Query) ([]cognition.Item, error) {
	var out []cognition.Item
	for _, it := range m {
		if len(q.Types) == 0 || slices.Contains(q.Types, it.Type) {
			out = append(out, it)
		}
	}
	return out[:min(len(out), q.Limit)], nil
}

func TestBuildContext(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	mem := listMemory{
		{ID: "3", Type: "message", Content: "Lunch\nis at   noon", CreatedAt: now.Add(-5 * time.Minute)},
		{ID: "2", Type: "entity", Content: "Ada: wrote the first program", Metadata: json.RawMessage(`{"name":"Ada"}`), CreatedAt: now.Add(-time.Hour)},
		{ID: "1", Type: "entity", Content: "Ada: a mathematician", Metadata: json.RawMessage(`{"name":"Ada"}`), CreatedAt: now.Add(-2 * time.Hour)},
		{ID: "0", Type: "entity", Content: "Paris is a city", Metadata: json.RawMessage(`{}`), CreatedAt: now.Add(-3 * time.Hour)},
	}
	c, err := cognition.BuildContext(context.Background(), mem, "w", now)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Recent) != 4 || c.Entities["Ada"].ID != "2" || c.Entities["Paris is a city"].ID != "0" || len(c.Entities) != 2 {
		t.Fatalf("context = %+v", c)
	}
	want := "Known entities: Ada, Paris is a city. 4 recent item(s); the latest, a message from 5 minute(s) ago: “Lunch is at noon”."
	if c.Summary != want {
		t.Fatalf("summary = %q, want %q", c.Summary, want)
	}
	empty, err := cognition.BuildContext(context.Background(), listMemory{}, "w", now)
	if err != nil || empty.Summary != "Nothing is remembered in this workspace yet." {
		t.Fatalf("empty = %+v, %v", empty, err)
	}
	if got := cognition.Describe(mem[2], 100); got != "Ada: a mathematician" {
		t.Fatalf("Describe = %q", got)
	}
	if got := cognition.Describe(cognition.Item{Type: "entity", Content: "a city", Metadata: json.RawMessage(`{"name":"Paris"}`)}, 100); got != "Paris: a city" {
		t.Fatalf("Describe = %q", got)
	}
	if got := cognition.Excerpt("a long line of text", 10); got != "a long li…" {
		t.Fatalf("Excerpt = %q", got)
	}
}
