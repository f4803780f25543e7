package cognition

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/engramhq/engram/domain/memory"
)

// Context is what a workspace remembers, distilled for a reader (a person,
// or an expert building a prompt).
type Context struct {
	// Recent are the most recent items, newest first.
	Recent []Item
	// Entities maps each known entity's name to its latest item.
	Entities map[string]Item
	// Summary says the above in a few sentences.
	Summary string
}

// Sizes of a synthesised context.
const (
	ContextRecent   = 10
	ContextEntities = 100
	summaryRunes    = 120
)

// BuildContext synthesises the context of a workspace's memory at now: its
// recent items, a map of its entities and a short summary. Expired items
// are left out.
func BuildContext(ctx context.Context, m Memory, workspaceID string, now time.Time) (Context, error) {
	recent, err := m.Search(ctx, workspaceID, Query{Limit: ContextRecent, Now: now})
	if err != nil {
		return Context{}, fmt.Errorf("recent memory of %s: %w", workspaceID, err)
	}
	entities, err := m.Search(ctx, workspaceID, Query{Types: []string{memory.TypeEntity}, Limit: ContextEntities, Now: now})
	if err != nil {
		return Context{}, fmt.Errorf("entities of %s: %w", workspaceID, err)
	}
	c := Context{Recent: recent, Entities: map[string]Item{}}
	for _, e := range entities { // newest first: the first of a name wins
		name := EntityName(e)
		if _, seen := c.Entities[name]; !seen {
			c.Entities[name] = e
		}
	}
	c.Summary = summarize(c, now)
	return c, nil
}

// EntityName returns the name of an entity item: its metadata "name", or
// its content when it has none.
func EntityName(it Item) string {
	var md map[string]any
	if json.Unmarshal(it.Metadata, &md) == nil {
		if name, ok := md[memory.MetadataName].(string); ok && strings.TrimSpace(name) != "" {
			return strings.TrimSpace(name)
		}
	}
	return Excerpt(it.Content, 60)
}

// Describe returns an item as one line for a reader: its content, on one
// line and cut to n characters, led by the entity's name when the content
// does not start with it.
func Describe(it Item, n int) string {
	text := Excerpt(it.Content, n)
	if it.Type != memory.TypeEntity {
		return text
	}
	name := EntityName(it)
	if strings.HasPrefix(strings.ToLower(text), strings.ToLower(name)) {
		return text
	}
	return name + ": " + text
}

// summarize writes a short, deterministic summary of c.
func summarize(c Context, now time.Time) string {
	if len(c.Recent) == 0 && len(c.Entities) == 0 {
		return "Nothing is remembered in this workspace yet."
	}
	var b strings.Builder
	if len(c.Entities) > 0 {
		names := make([]string, 0, len(c.Entities))
		for name := range c.Entities {
			names = append(names, name)
		}
		sort.Strings(names)
		if len(names) > 10 {
			names = append(names[:10], fmt.Sprintf("and %d more", len(c.Entities)-10))
		}
		fmt.Fprintf(&b, "Known entities: %s. ", strings.Join(names, ", "))
	}
	if len(c.Recent) > 0 {
		latest := c.Recent[0]
		fmt.Fprintf(&b, "%d recent item(s); the latest, %s from %s ago: “%s”.", len(c.Recent), withArticle(latest.Type),
			age(now.Sub(latest.CreatedAt)), Excerpt(latest.Content, summaryRunes))
	}
	return strings.TrimSpace(b.String())
}

// withArticle returns "a message", "an entity" …
func withArticle(word string) string {
	if word != "" && strings.ContainsRune("aeiou", rune(word[0])) {
		return "an " + word
	}
	return "a " + word
}

func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "less than a minute"
	case d < time.Hour:
		return fmt.Sprintf("%d minute(s)", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hour(s)", int(d/time.Hour))
	}
	return fmt.Sprintf("%d day(s)", int(d/(24*time.Hour)))
}

// Excerpt returns text on one line, cut to at most n characters (with "…"
// when cut).
func Excerpt(text string, n int) string {
	text = strings.Join(strings.Fields(text), " ")
	if utf8.RuneCountInString(text) <= n {
		return text
	}
	r := []rune(text)
	return strings.TrimSpace(string(r[:n-1])) + "…"
}
