package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/engramhq/engram/platform/config"
)

func TestLoadCognition(t *testing.T) {
	cfg, err := config.Load(map[string]string{"ENGRAM_ENV": "test", "ENGRAM_ROUTER": "Patterns",
		"ENGRAM_ROUTER_RULES": ` {"default_expert":"echo"} `, "ENGRAM_LLM_BASE_URL": "http://127.0.0.1:11434/v1",
		"ENGRAM_LLM_MODEL": "llama3", "ENGRAM_LLM_API_KEY": "sk-very-secret", "ENGRAM_TASK_WORKERS": "8"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Router != config.RouterPatterns || cfg.RouterRules != `{"default_expert":"echo"}` || !cfg.LLMEnabled() ||
		cfg.LLMModel != "llama3" || string(cfg.LLMAPIKey) != "sk-very-secret" || cfg.TaskWorkers != 8 {
		t.Fatalf("config = %+v", cfg)
	}
	if _, isFile := cfg.RouterRulesFile(); isFile {
		t.Fatal("inline rules taken for a file")
	}
	if logged := cfg.LogValue().String(); strings.Contains(logged, "sk-very-secret") {
		t.Fatalf("the LLM API key is logged: %s", logged)
	}

	cfg, err = config.Load(map[string]string{"ENGRAM_ENV": "test", "ENGRAM_ROUTER_RULES": "@/etc/engram/rules.json"})
	if path, isFile := cfg.RouterRulesFile(); err != nil || !isFile || path != "/etc/engram/rules.json" || cfg.LLMEnabled() {
		t.Fatalf("rules file: %q %v %v", path, isFile, err)
	}
}

func TestLoadCognitionProblems(t *testing.T) {
	_, err := config.Load(map[string]string{"ENGRAM_ENV": "test", "ENGRAM_ROUTER": "magic", "ENGRAM_ROUTER_RULES": "{nope",
		"ENGRAM_LLM_BASE_URL": "ftp://x", "ENGRAM_TASK_TIMEOUT": "0s", "ENGRAM_TASK_MAX_AGE": "-1m", "ENGRAM_TASK_ATTEMPTS": "0",
		"ENGRAM_TASK_WORKERS": "1000"})
	var names []string
	for _, e := range unwrapAll(err) {
		var ve *config.VarError
		if errors.As(e, &ve) {
			names = append(names, ve.Var)
		}
	}
	want := []string{"ENGRAM_ROUTER", "ENGRAM_ROUTER_RULES", "ENGRAM_LLM_BASE_URL", "ENGRAM_LLM_MODEL", "ENGRAM_TASK_TIMEOUT",
		"ENGRAM_TASK_MAX_AGE", "ENGRAM_TASK_ATTEMPTS", "ENGRAM_TASK_WORKERS"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("problems = %v, want %v (%v)", names, want, err)
	}
	cfg, err := config.Load(map[string]string{"ENGRAM_ENV": "test", "ENGRAM_LLM_MODEL": "llama3"})
	if err != nil || cfg.LLMEnabled() || len(cfg.Warnings) != 1 {
		t.Fatalf("a model without a URL: %v, warnings %q", err, cfg.Warnings)
	}
}

func unwrapAll(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
