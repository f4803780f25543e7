package routing

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"

	"github.com/engramhq/engram/cognition"
)

// Rules is the default router. A message starting with a known command word
// is routed by that command's rule, with the rest of the message as input;
// everything else is answered by the default expert. Built in:
//
//	/remember <name>: <fact>   process: the fact is remembered as an entity
//	/recall <words>            delegate to the memory expert
//	/task <expert> <input>     delegate to the named expert
//
// An unknown command or expert is answered by the default expert, with a
// reason that says so.
type Rules struct {
	base
	commands map[string]Rule
}

var _ cognition.Router = (*Rules)(nil)

// NewRules returns the Rules router for c: its commands are
// DefaultCommands with c.Commands added. It refuses (listing every problem)
// unknown actions and experts, priorities outside 1–5 and command words
// that do not start with "/" or hold white space.
func NewRules(c Config, experts []string) (*Rules, error) {
	b, problems := newBase(c, experts)
	commands := DefaultCommands()
	maps.Copy(commands, c.Commands)
	for _, word := range slices.Sorted(maps.Keys(commands)) {
		where := "commands." + word
		if len(word) < 2 || word[0] != '/' || strings.IndexFunc(word, unicode.IsSpace) >= 0 || strings.ToLower(word) != word {
			problems = append(problems, fmt.Errorf("%s: a command is \"/\" and a lower-case word", where))
		}
		r := commands[word]
		if r.Action == cognition.ActionDelegate && r.Expert == "" && !r.ExpertArgument {
			r.Expert = b.defaultExpert
		}
		problems = append(problems, b.check(where, r)...)
		commands[word] = r
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return &Rules{base: b, commands: commands}, nil
}

// Route implements cognition.Router.
func (r *Rules) Route(_ context.Context, m cognition.Message) (cognition.Decision, error) {
	content := strings.TrimSpace(m.Content)
	if !strings.HasPrefix(content, "/") {
		return r.fallback(content, "no command: answered by "+r.defaultExpert), nil
	}
	word, rest := cut(content)
	word = strings.ToLower(word)
	rule, ok := r.commands[word]
	if !ok {
		return r.fallback(content, fmt.Sprintf("unknown command %s: answered by %s", word, r.defaultExpert)), nil
	}
	if rule.ExpertArgument {
		expert, input := cut(rest)
		expert = strings.ToLower(expert)
		switch {
		case expert == "":
			return r.fallback(content, fmt.Sprintf("%s names no expert: answered by %s", word, r.defaultExpert)), nil
		case !slices.Contains(r.experts, expert):
			return r.fallback(content, fmt.Sprintf("%s: no expert named %q: answered by %s", word, expert, r.defaultExpert)), nil
		}
		rule.Expert = expert
		return r.decide(rule, input, fmt.Sprintf("%s: delegated to %s", word, expert)), nil
	}
	return r.decide(rule, rest, "command "+word), nil
}

// cut splits s at its first white space: the first word and the rest,
// trimmed.
func cut(s string) (string, string) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, unicode.IsSpace)
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimSpace(s[i:])
}
