package routing

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/engramhq/engram/cognition"
)

// Patterns routes by an ordered table of regular expressions: the first
// pattern that matches a message's content decides; a message no pattern
// matches is answered by the default expert. A pattern's group named
// "input" is what the expert gets (or what is remembered).
type Patterns struct {
	base
	rules []compiledRule
}

type compiledRule struct {
	re *regexp.Regexp
	Rule
}

var _ cognition.Router = (*Patterns)(nil)

// NewPatterns returns the Patterns router for c.Patterns. It refuses
// (listing every problem) patterns that do not compile, unknown actions and
// experts, and priorities outside 1–5.
func NewPatterns(c Config, experts []string) (*Patterns, error) {
	b, problems := newBase(c, experts)
	p := &Patterns{base: b}
	for i, pr := range c.Patterns {
		where := fmt.Sprintf("patterns[%d]", i)
		re, err := compile(where, pr.Pattern)
		if err != nil {
			problems = append(problems, err)
		}
		if pr.ExpertArgument {
			problems = append(problems, fmt.Errorf("%s: expert_argument is for commands", where))
		}
		problems = append(problems, b.check(where, pr.Rule)...)
		p.rules = append(p.rules, compiledRule{re: re, Rule: pr.Rule})
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return p, nil
}

// Route implements cognition.Router.
func (p *Patterns) Route(_ context.Context, m cognition.Message) (cognition.Decision, error) {
	content := strings.TrimSpace(m.Content)
	for i, r := range p.rules {
		match := r.re.FindStringSubmatch(content)
		if match == nil {
			continue
		}
		input := content
		if g := r.re.SubexpIndex("input"); g > 0 && match[g] != "" {
			input = strings.TrimSpace(match[g])
		}
		return p.decide(r.Rule, input, fmt.Sprintf("pattern %d matched", i)), nil
	}
	return p.fallback(content, "no pattern matched: answered by "+p.defaultExpert), nil
}
