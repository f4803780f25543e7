// Package routing holds Engram's routers: Rules, the default, which reads
// slash commands (/remember, /recall, /task <expert>) and answers everything
// else with the default expert; and Patterns, which matches messages against
// an ordered table of regular expressions. Both are deterministic and are
// configured with the same JSON document (ENGRAM_ROUTER_RULES).
package routing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/engramhq/engram/cognition"
)

// Router kinds, the values of ENGRAM_ROUTER.
const (
	KindRules    = "rules"
	KindPatterns = "patterns"
)

// Config configures the routers. Unset fields keep their defaults.
type Config struct {
	// DefaultExpert answers what no rule routes elsewhere.
	DefaultExpert string `json:"default_expert,omitempty"`
	// DefaultPriority is the priority of decisions whose rule gives none
	// (default 3).
	DefaultPriority int `json:"default_priority,omitempty"`
	// Commands are the slash commands of the Rules router, by command word
	// ("/remember"). They are added to the built-in ones (DefaultCommands),
	// replacing a built-in one of the same word.
	Commands map[string]Rule `json:"commands,omitempty"`
	// Patterns are the rules of the Patterns router, tried in order.
	Patterns []PatternRule `json:"patterns,omitempty"`
}

// Rule is what a matched rule decides.
type Rule struct {
	// Action is respond, process, delegate or ignore.
	Action string `json:"action"`
	// Expert handles respond and delegate (default: the default expert).
	Expert string `json:"expert,omitempty"`
	// ExpertArgument makes the word after the command name the expert, as
	// in "/task echo hello".
	ExpertArgument bool `json:"expert_argument,omitempty"`
	// Priority is 1–5 (default: DefaultPriority).
	Priority int `json:"priority,omitempty"`
	// Reason is recorded with the decision (default: says which rule).
	Reason string `json:"reason,omitempty"`
}

// PatternRule is a rule of the Patterns router.
type PatternRule struct {
	// Pattern is a Go regular expression (RE2 syntax) matched against the
	// message's content. A group named "input" is what the expert gets;
	// without one it gets the whole content.
	Pattern string `json:"pattern"`
	Rule
}

// DefaultCommands are the built-in commands of the Rules router.
func DefaultCommands() map[string]Rule {
	return map[string]Rule{
		"/remember": {Action: cognition.ActionProcess, Priority: 2, Reason: "/remember: store it in the workspace memory"},
		"/recall":   {Action: cognition.ActionDelegate, Expert: "memory", Reason: "/recall: ask the workspace memory"},
		"/task":     {Action: cognition.ActionDelegate, ExpertArgument: true, Priority: 4},
	}
}

// Parse reads a Config from JSON: a document of exactly the fields of
// Config. Empty input is the empty Config.
func Parse(raw []byte) (Config, error) {
	var c Config
	if len(bytes.TrimSpace(raw)) == 0 {
		return c, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("router rules: %w", err)
	}
	if dec.More() {
		return Config{}, errors.New("router rules: more than one JSON value")
	}
	return c, nil
}

// New returns the router of the given kind (rules or patterns) configured
// with c. Its experts must be among experts; defaultExpert answers when c
// names no default expert.
func New(kind string, c Config, defaultExpert string, experts []string) (cognition.Router, error) {
	if c.DefaultExpert == "" {
		c.DefaultExpert = defaultExpert
	}
	switch kind {
	case KindRules, "":
		return NewRules(c, experts)
	case KindPatterns:
		return NewPatterns(c, experts)
	}
	return nil, fmt.Errorf("router %q: must be %s or %s", kind, KindRules, KindPatterns)
}

// base is what both routers share: the defaults and the known experts.
type base struct {
	defaultExpert   string
	defaultPriority int
	experts         []string
}

func newBase(c Config, experts []string) (base, []error) {
	b := base{defaultExpert: c.DefaultExpert, defaultPriority: c.DefaultPriority, experts: experts}
	var problems []error
	if b.defaultPriority == 0 {
		b.defaultPriority = cognition.DefaultPriority
	}
	if b.defaultPriority < cognition.MinPriority || b.defaultPriority > cognition.MaxPriority {
		problems = append(problems, fmt.Errorf("default_priority %d: must be between %d and %d", b.defaultPriority, cognition.MinPriority, cognition.MaxPriority))
	}
	if !slices.Contains(experts, b.defaultExpert) {
		problems = append(problems, fmt.Errorf("default_expert %q: no such expert (known: %s)", b.defaultExpert, strings.Join(experts, ", ")))
	}
	return b, problems
}

// check validates a rule as read from the configuration.
func (b base) check(where string, r Rule) []error {
	var problems []error
	switch r.Action {
	case cognition.ActionRespond, cognition.ActionDelegate:
		if r.Expert != "" && !slices.Contains(b.experts, r.Expert) {
			problems = append(problems, fmt.Errorf("%s: expert %q: no such expert (known: %s)", where, r.Expert, strings.Join(b.experts, ", ")))
		}
	case cognition.ActionProcess, cognition.ActionIgnore:
		if r.Expert != "" || r.ExpertArgument {
			problems = append(problems, fmt.Errorf("%s: action %s takes no expert", where, r.Action))
		}
	default:
		problems = append(problems, fmt.Errorf("%s: action %q: must be respond, process, delegate or ignore", where, r.Action))
	}
	if r.Priority != 0 && (r.Priority < cognition.MinPriority || r.Priority > cognition.MaxPriority) {
		problems = append(problems, fmt.Errorf("%s: priority %d: must be between %d and %d", where, r.Priority, cognition.MinPriority, cognition.MaxPriority))
	}
	if len(r.Reason) > 500 {
		problems = append(problems, fmt.Errorf("%s: reason: must be at most 500 bytes", where))
	}
	return problems
}

// decide turns a matched rule into a decision.
func (b base) decide(r Rule, input, reason string) cognition.Decision {
	d := cognition.Decision{Action: r.Action, Expert: r.Expert, Priority: r.Priority, Reason: r.Reason, Input: input}
	if d.Priority == 0 {
		d.Priority = b.defaultPriority
	}
	if d.Reason == "" {
		d.Reason = reason
	}
	if d.Expert == "" && (d.Action == cognition.ActionRespond || d.Action == cognition.ActionDelegate) {
		d.Expert = b.defaultExpert
	}
	return d
}

// fallback answers a message no rule routes.
func (b base) fallback(content, reason string) cognition.Decision {
	return cognition.Decision{Action: cognition.ActionRespond, Expert: b.defaultExpert, Priority: b.defaultPriority,
		Reason: reason, Input: content}
}

// compile compiles a pattern, reporting a problem instead of failing.
func compile(where, pattern string) (*regexp.Regexp, error) {
	if pattern == "" {
		return nil, fmt.Errorf("%s: pattern is required", where)
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return re, nil
}
