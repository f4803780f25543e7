package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/engramhq/engram/platform/config"
)

func TestLoadAuditSigningKey(t *testing.T) {
	cfg, err := config.Load(map[string]string{"ENGRAM_ENV": "test", "ENGRAM_AUDIT_SIGNING_KEY": " /etc/engram/audit-key.pem "})
	if err != nil || cfg.AuditSigningKey != "/etc/engram/audit-key.pem" {
		t.Fatalf("key path = %q, %v", cfg.AuditSigningKey, err)
	}
	if !strings.Contains(cfg.LogValue().String(), "/etc/engram/audit-key.pem") {
		t.Fatalf("the key's path is not logged: %s", cfg.LogValue())
	}
	if cfg, err := config.Load(map[string]string{"ENGRAM_ENV": "test"}); err != nil || cfg.AuditSigningKey != "" {
		t.Fatalf("unset: %q, %v", cfg.AuditSigningKey, err)
	}

	const pemKey = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIGl1c3QtYS10ZXN0LWtleS1ub3QtYS1yZWFsLW9uZQ==\n-----END PRIVATE KEY-----\n"
	for _, value := range []string{pemKey, "MC4CAQAw\nBQYDK2Vw", "key\x00.pem"} {
		_, err := config.Load(map[string]string{"ENGRAM_ENV": "test", "ENGRAM_AUDIT_SIGNING_KEY": value})
		var ve *config.VarError
		if !errors.As(err, &ve) || ve.Var != "ENGRAM_AUDIT_SIGNING_KEY" || !ve.Hidden {
			t.Fatalf("%q: error %v", value, err)
		}
		if strings.Contains(err.Error(), "MC4CAQAw") {
			t.Fatalf("the key leaks into the error: %v", err)
		}
	}
}
