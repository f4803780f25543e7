package config

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Router kinds (ENGRAM_ROUTER).
const (
	RouterRules    = "rules"
	RouterPatterns = "patterns"
)

// RouterRulesFile reports whether ENGRAM_ROUTER_RULES names a file
// ("@path") rather than holding the rules, and returns the path.
func (c Config) RouterRulesFile() (string, bool) {
	return strings.CutPrefix(c.RouterRules, "@")
}

// LLMEnabled reports whether the llm expert is configured.
func (c Config) LLMEnabled() bool { return c.LLMBaseURL != "" }

// cognition validates the variables of the router, the experts and the
// task worker.
func (v *validator) cognition(cfg *Config) {
	cfg.Router = strings.ToLower(strings.TrimSpace(cfg.Router))
	switch cfg.Router {
	case RouterRules, RouterPatterns:
	default:
		v.add("ENGRAM_ROUTER", v.environ["ENGRAM_ROUTER"], "must be rules or patterns")
	}
	cfg.RouterRules = strings.TrimSpace(cfg.RouterRules)
	if path, isFile := cfg.RouterRulesFile(); isFile {
		if strings.TrimSpace(path) == "" {
			v.add("ENGRAM_ROUTER_RULES", cfg.RouterRules, "@ must be followed by the path of a JSON file")
		}
	} else if cfg.RouterRules != "" {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(cfg.RouterRules), &obj); err != nil {
			v.add("ENGRAM_ROUTER_RULES", cfg.RouterRules, "must be a JSON object (or @path of a JSON file)")
		}
	}

	cfg.LLMBaseURL = strings.TrimSpace(cfg.LLMBaseURL)
	cfg.LLMModel = strings.TrimSpace(cfg.LLMModel)
	if cfg.LLMBaseURL != "" {
		u, err := url.Parse(cfg.LLMBaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add("ENGRAM_LLM_BASE_URL", redactURL(cfg.LLMBaseURL), "must be an http or https URL, e.g. https://api.openai.com/v1")
		}
		if cfg.LLMModel == "" {
			v.add("ENGRAM_LLM_MODEL", "", "is required when ENGRAM_LLM_BASE_URL is set")
		}
	} else if cfg.LLMModel != "" || cfg.LLMAPIKey != "" {
		cfg.Warnings = append(cfg.Warnings, "ENGRAM_LLM_MODEL or ENGRAM_LLM_API_KEY is set without ENGRAM_LLM_BASE_URL: the llm expert stays off")
	}

	positive(v, "duration", []setting[time.Duration]{
		{"ENGRAM_TASK_TIMEOUT", cfg.TaskTimeout},
		{"ENGRAM_TASK_MAX_AGE", cfg.TaskMaxAge},
	})
	for _, n := range []struct {
		name  string
		value int
		max   int
	}{
		{"ENGRAM_TASK_ATTEMPTS", cfg.TaskAttempts, 10},
		{"ENGRAM_TASK_WORKERS", cfg.TaskWorkers, 256},
	} {
		v.check(n.name, n.value > 0 && n.value <= n.max, "must be a whole number from 1 to "+strconv.Itoa(n.max))
	}
}
