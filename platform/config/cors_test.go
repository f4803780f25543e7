package config_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/engramhq/engram/platform/config"
)

func TestLoadCORSAllowedOrigins(t *testing.T) {
	cfg, err := config.Load(map[string]string{"ENGRAM_ENV": "test"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.CORSAllowedOrigins) != 0 {
		t.Fatalf("default origins = %v, want none (same origin only)", cfg.CORSAllowedOrigins)
	}

	cfg, err = config.Load(map[string]string{"ENGRAM_ENV": "test",
		"ENGRAM_CORS_ALLOWED_ORIGINS": " https://App.Example.com , http://localhost:5173,,https://app.example.com/"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"https://app.example.com", "http://localhost:5173"}
	if !slices.Equal(cfg.CORSAllowedOrigins, want) {
		t.Fatalf("origins = %q, want %q", cfg.CORSAllowedOrigins, want)
	}

	for _, bad := range []string{"*", "https://*.example.com", "example.com", "ftp://example.com",
		"https://example.com/app", "https://user@example.com", "https://example.com?x=1", "https://"} {
		_, err := config.Load(map[string]string{"ENGRAM_ENV": "test", "ENGRAM_CORS_ALLOWED_ORIGINS": "https://ok.example.com," + bad})
		var ve *config.VarError
		if !errors.As(err, &ve) || ve.Var != "ENGRAM_CORS_ALLOWED_ORIGINS" || ve.Value != bad {
			t.Errorf("origin %q: error %v, want a VarError naming it", bad, err)
		}
	}
}
