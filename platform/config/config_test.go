package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/engramhq/engram/platform/config"
)

const strongSecret = "k3Jf9x2LqP0vZ8sYt6WbN4mHc1RgAeUd7Tq5"

func TestLoadDefaults(t *testing.T) {
	cfg, err := config.Load(map[string]string{})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := config.Config{
		Env:                      config.Development,
		HTTPAddr:                 "127.0.0.1:8080",
		HTTPReadTimeout:          15 * time.Second,
		HTTPWriteTimeout:         30 * time.Second,
		HTTPIdleTimeout:          120 * time.Second,
		ShutdownTimeout:          20 * time.Second,
		BodyLimit:                1 << 20,
		CommandConcurrency:       128,
		CommandQueue:             256,
		CommandQueueTimeout:      time.Second,
		CommandQueueTarget:       50 * time.Millisecond,
		ReadCacheBytes:           64 << 20,
		DatabaseURL:              "postgres://127.0.0.1:5432/engram?sslmode=disable",
		DatabaseMaxConns:         32,
		AutoMigrate:              true,
		RedisURL:                 "redis://127.0.0.1:6379/0",
		RedisPrefix:              "engram:",
		JWTIssuer:                "engram",
		JWTAudience:              "engram-api",
		AccessTokenTTL:           15 * time.Minute,
		RefreshTokenTTL:          720 * time.Hour,
		LoginMaxAttempts:         10,
		LoginWindow:              config.LoginAttemptWindow,
		LogLevel:                 slog.LevelInfo,
		LogFormat:                "text",
		SSEHeartbeat:             15 * time.Second,
		SSEMaxConnectionsPerUser: 16,
		SSEMaxLifetime:           time.Hour,
		SSEBuffer:                256,
		DevSeed:                  true,
		ReadYourWritesTimeout:    5 * time.Second,
		ProjectionPollInterval:   100 * time.Millisecond,
		ProjectionMaxLag:         5000,
		Router:                   config.RouterRules,
		TaskTimeout:              2 * time.Minute,
		TaskAttempts:             3,
		TaskWorkers:              64,
		TaskMaxAge:               10 * time.Minute,
	}
	if !cfg.JWTSecretGenerated || len(cfg.JWTSecret) < config.MinJWTSecretLength {
		t.Errorf("JWT secret: generated=%v length=%d, want a generated secret of at least %d bytes",
			cfg.JWTSecretGenerated, len(cfg.JWTSecret), config.MinJWTSecretLength)
	}
	other, _ := config.Load(map[string]string{})
	if other.JWTSecret == cfg.JWTSecret {
		t.Error("two generated secrets are equal")
	}
	cfg.JWTSecret, cfg.JWTSecretGenerated = "", false
	if got, wantS := fmt.Sprintf("%+v", cfg), fmt.Sprintf("%+v", want); got != wantS {
		t.Errorf("defaults:\n got %s\nwant %s", got, wantS)
	}
}

func TestLoadEnvironmentDependentDefaults(t *testing.T) {
	tests := []struct {
		env                  string
		devSeed, autoMigrate bool
	}{
		{"development", true, true},
		{"test", false, true},
		{"production", false, false},
		{"PRODUCTION", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			cfg, err := config.Load(map[string]string{"ENGRAM_ENV": tt.env, "ENGRAM_JWT_SECRET": strongSecret})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if cfg.DevSeed != tt.devSeed || cfg.AutoMigrate != tt.autoMigrate {
				t.Errorf("DevSeed=%v AutoMigrate=%v, want %v %v", cfg.DevSeed, cfg.AutoMigrate, tt.devSeed, tt.autoMigrate)
			}
			if cfg.JWTSecretGenerated || string(cfg.JWTSecret) != strongSecret {
				t.Error("the given secret was not kept")
			}
		})
	}
}

func TestLoadOverrides(t *testing.T) {
	cfg, err := config.Load(map[string]string{
		"ENGRAM_ENV":                          "test",
		"ENGRAM_HTTP_ADDR":                    ":9090",
		"ENGRAM_DATABASE_URL":                 "postgresql://u:p@db:5432/x",
		"ENGRAM_REDIS_URL":                    "rediss://:pw@cache:6380/2",
		"ENGRAM_REDIS_PREFIX":                 "e2:",
		"ENGRAM_ACCESS_TOKEN_TTL":             "5m",
		"ENGRAM_LOG_LEVEL":                    "DEBUG",
		"ENGRAM_LOG_FORMAT":                   "json",
		"ENGRAM_LOG_DIR":                      "/var/log/engram",
		"ENGRAM_SSE_BUFFER":                   "1024",
		"ENGRAM_DEV_SEED":                     "true",
		"ENGRAM_AUTO_MIGRATE":                 "false",
		"ENGRAM_TRUSTED_PROXIES":              "10.0.0.0/8, 192.168.1.7 ,::1,172.16.5.4/12",
		"ENGRAM_BODY_LIMIT":                   "2048",
		"ENGRAM_PROJECTION_MAX_LAG":           "10",
		"ENGRAM_SSE_MAX_CONNECTIONS_PER_USER": "2",
	})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.HTTPAddr != ":9090" || cfg.RedisURL != "rediss://:pw@cache:6380/2" || cfg.RedisPrefix != "e2:" ||
		cfg.AccessTokenTTL != 5*time.Minute || cfg.LogLevel != slog.LevelDebug || cfg.LogFormat != "json" ||
		cfg.LogDir != "/var/log/engram" || cfg.SSEBuffer != 1024 || !cfg.DevSeed || cfg.AutoMigrate ||
		cfg.BodyLimit != 2048 || cfg.ProjectionMaxLag != 10 || cfg.SSEMaxConnectionsPerUser != 2 {
		t.Errorf("overrides not applied: %+v", cfg)
	}
	wantProxies := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.168.1.7/32"),
		netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("172.16.0.0/12"),
	}
	if !slices.Equal(cfg.TrustedProxies, wantProxies) {
		t.Errorf("TrustedProxies = %v, want %v", cfg.TrustedProxies, wantProxies)
	}
	if !cfg.TrustedProxies.Contains(netip.MustParseAddr("10.1.2.3")) ||
		!cfg.TrustedProxies.Contains(netip.MustParseAddr("::ffff:192.168.1.7")) ||
		cfg.TrustedProxies.Contains(netip.MustParseAddr("192.168.1.8")) {
		t.Error("TrustedProxies.Contains is wrong")
	}
}

func TestLoadRedisURLUnsetVersusEmpty(t *testing.T) {
	unset, err := config.Load(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if unset.RedisURL != config.DefaultRedisURL {
		t.Errorf("unset: RedisURL = %q, want the default", unset.RedisURL)
	}
	empty, err := config.Load(map[string]string{"ENGRAM_REDIS_URL": ""})
	if err != nil {
		t.Fatal(err)
	}
	if empty.RedisURL != "" {
		t.Errorf("empty: RedisURL = %q, want empty (no Redis)", empty.RedisURL)
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	environ := map[string]string{
		"ENGRAM_ENV":                "staging",
		"ENGRAM_HTTP_ADDR":          "8080",
		"ENGRAM_DATABASE_URL":       "mysql://root:hunter2@db/engram",
		"ENGRAM_REDIS_URL":          "http://:hunter3@cache",
		"ENGRAM_ACCESS_TOKEN_TTL":   "fifteen",
		"ENGRAM_REFRESH_TOKEN_TTL":  "-1h",
		"ENGRAM_SSE_HEARTBEAT":      "0s",
		"ENGRAM_LOG_LEVEL":          "verbose",
		"ENGRAM_LOG_FORMAT":         "xml",
		"ENGRAM_SSE_BUFFER":         "lots",
		"ENGRAM_LOGIN_MAX_ATTEMPTS": "0",
		"ENGRAM_BODY_LIMIT":         "99999999999999999999",
		"ENGRAM_DEV_SEED":           "sometimes",
		"ENGRAM_TRUSTED_PROXIES":    "10.0.0.0/8,not-a-cidr,10.0.0.0/99",
	}
	_, err := config.Load(environ)
	if err == nil {
		t.Fatal("Load accepted bad values")
	}
	wantVars := []string{
		"ENGRAM_ENV", "ENGRAM_HTTP_ADDR", "ENGRAM_DATABASE_URL", "ENGRAM_REDIS_URL",
		"ENGRAM_ACCESS_TOKEN_TTL", "ENGRAM_REFRESH_TOKEN_TTL", "ENGRAM_SSE_HEARTBEAT",
		"ENGRAM_LOG_LEVEL", "ENGRAM_LOG_FORMAT", "ENGRAM_SSE_BUFFER", "ENGRAM_LOGIN_MAX_ATTEMPTS",
		"ENGRAM_BODY_LIMIT", "ENGRAM_DEV_SEED", "ENGRAM_TRUSTED_PROXIES",
		"ENGRAM_JWT_SECRET", // an unknown environment gets production's rules
	}
	var gotVars []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ve *config.VarError
		if !errors.As(e, &ve) {
			t.Errorf("problem %v is not a *config.VarError", e)
			continue
		}
		gotVars = append(gotVars, ve.Var)
	}
	slices.Sort(gotVars)
	slices.Sort(wantVars)
	if !slices.Equal(gotVars, wantVars) {
		t.Errorf("problems name\n %v\nwant\n %v\nerror:\n%v", gotVars, wantVars, err)
	}
	msg := err.Error()
	if lines := strings.Count(msg, "\n") + 1; lines != len(wantVars) {
		t.Errorf("error has %d lines, want one per problem (%d):\n%s", lines, len(wantVars), msg)
	}
	for _, leak := range []string{"hunter2", "hunter3"} {
		if strings.Contains(msg, leak) {
			t.Errorf("error leaks a password %q:\n%s", leak, msg)
		}
	}
	for _, value := range []string{`"staging"`, `"fifteen"`, `"verbose"`, `"not-a-cidr"`, `"sometimes"`} {
		if !strings.Contains(msg, value) {
			t.Errorf("error does not quote the bad value %s:\n%s", value, msg)
		}
	}
}

func TestLoadJWTSecret(t *testing.T) {
	tests := []struct {
		name      string
		env       string
		secret    string
		wantErr   bool
		wantWarn  bool
		generated bool
	}{
		{"production strong", "production", strongSecret, false, false, false},
		{"production missing", "production", "", true, false, false},
		{"production short", "production", "0123456789abcdef", true, false, false},
		{"production secret", "production", "secret", true, false, false},
		{"production CHANGEME", "production", "CHANGEME", true, false, false},
		{"production long placeholder", "production", "please-Change-Me-before-going-live-0123456789", true, false, false},
		{"production engram", "production", "Engram", true, false, false},
		{"production dev-secret", "production", "dev-secret", true, false, false},
		{"development missing", "development", "", false, false, true},
		{"test missing", "test", "", false, false, true},
		{"development short", "development", "short", false, true, false},
		{"development placeholder", "development", "changeme", false, true, false},
		{"development long placeholder", "development", "changeme-changeme-changeme-changeme", false, true, false},
		{"development strong", "development", strongSecret, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			environ := map[string]string{"ENGRAM_ENV": tt.env}
			if tt.secret != "" {
				environ["ENGRAM_JWT_SECRET"] = tt.secret
			}
			cfg, err := config.Load(environ)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				var ve *config.VarError
				if !errors.As(err, &ve) || ve.Var != "ENGRAM_JWT_SECRET" || !ve.Hidden {
					t.Errorf("err = %v, want a hidden ENGRAM_JWT_SECRET problem", err)
				}
				// Short secrets are ordinary words the message may contain.
				if len(tt.secret) >= 10 && strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tt.secret)) {
					t.Errorf("error reveals the secret: %v", err)
				}
				return
			}
			if got := len(cfg.Warnings) > 0; got != tt.wantWarn {
				t.Errorf("warnings = %q, want some: %v", cfg.Warnings, tt.wantWarn)
			}
			for _, w := range cfg.Warnings {
				if len(tt.secret) >= 10 && strings.Contains(strings.ToLower(w), strings.ToLower(tt.secret)) {
					t.Errorf("warning reveals the secret: %s", w)
				}
			}
			if cfg.JWTSecretGenerated != tt.generated {
				t.Errorf("JWTSecretGenerated = %v, want %v", cfg.JWTSecretGenerated, tt.generated)
			}
		})
	}
}

func TestLoadRefusesDevSeedInProduction(t *testing.T) {
	_, err := config.Load(map[string]string{
		"ENGRAM_ENV": "production", "ENGRAM_JWT_SECRET": strongSecret, "ENGRAM_DEV_SEED": "true",
	})
	var ve *config.VarError
	if !errors.As(err, &ve) || ve.Var != "ENGRAM_DEV_SEED" {
		t.Fatalf("err = %v, want an ENGRAM_DEV_SEED problem", err)
	}
}

func TestLoadPprofAddrMustBeLoopback(t *testing.T) {
	for _, tt := range []struct {
		addr string
		ok   bool
	}{
		{"", true}, {"127.0.0.1:6060", true}, {"[::1]:6060", true}, {"localhost:6060", true},
		{"0.0.0.0:6060", false}, {":6060", false}, {"10.1.2.3:6060", false}, {"6060", false},
	} {
		cfg, err := config.Load(map[string]string{"ENGRAM_ENV": "test", "ENGRAM_PPROF_ADDR": tt.addr})
		var ve *config.VarError
		switch {
		case tt.ok && (err != nil || cfg.PprofAddr != tt.addr):
			t.Errorf("ENGRAM_PPROF_ADDR=%q: %v, PprofAddr %q", tt.addr, err, cfg.PprofAddr)
		case !tt.ok && (!errors.As(err, &ve) || ve.Var != "ENGRAM_PPROF_ADDR"):
			t.Errorf("ENGRAM_PPROF_ADDR=%q: err = %v, want an ENGRAM_PPROF_ADDR problem", tt.addr, err)
		}
	}
}

func TestConfigNeverPrintsSecrets(t *testing.T) {
	cfg, err := config.Load(map[string]string{
		"ENGRAM_JWT_SECRET":   strongSecret,
		"ENGRAM_DATABASE_URL": "postgres://engram:dbpass1@db/engram?sslmode=disable",
		"ENGRAM_REDIS_URL":    "redis://default:redispass2@cache:6379/0",
	})
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "config", cfg)
	asJSON, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"slog":  logged.String(),
		"json":  string(asJSON),
		"%v":    fmt.Sprintf("%v", cfg),
		"%+v":   fmt.Sprintf("%+v", cfg),
		"%#v":   fmt.Sprintf("%#v", cfg),
		"%s":    fmt.Sprintf("%s", cfg.JWTSecret), //nolint:staticcheck // the %s verb itself is under test
		"%q":    fmt.Sprintf("%q", cfg.JWTSecret),
		"slogs": slogString(cfg.JWTSecret),
	}
	for name, out := range outputs {
		for _, secret := range []string{strongSecret, "dbpass1", "redispass2"} {
			if name != "slog" && secret != strongSecret {
				continue // Only LogValue masks URL passwords.
			}
			if strings.Contains(out, secret) {
				t.Errorf("%s output reveals %q: %s", name, secret, out)
			}
		}
	}
	var entry struct {
		Config map[string]any `json:"config"`
	}
	if err := json.Unmarshal(logged.Bytes(), &entry); err != nil {
		t.Fatal(err)
	}
	if got := entry.Config["database_url"]; got != "postgres://engram:xxxxx@db/engram?sslmode=disable" {
		t.Errorf("database_url logged as %v", got)
	}
	if got := entry.Config["redis_url"]; got != "redis://default:xxxxx@cache:6379/0" {
		t.Errorf("redis_url logged as %v", got)
	}
	if _, ok := entry.Config["jwt_secret"]; ok {
		t.Error("jwt_secret is logged")
	}
	if string(cfg.JWTSecret.Bytes()) != strongSecret {
		t.Error("Bytes does not return the secret")
	}
}

func slogString(v any) string {
	var b bytes.Buffer
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "v", v)
	return b.String()
}

func TestFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, k := range []string{"ENGRAM_HTTP_ADDR", "ENGRAM_LOG_LEVEL", "ENGRAM_ENV", "ENGRAM_JWT_SECRET"} {
		t.Setenv(k, "") // registers restoration
		os.Unsetenv(k)
	}

	if _, err := config.FromEnvironment(); err != nil {
		t.Fatalf("without .env: %v", err)
	}

	dotEnv := "ENGRAM_HTTP_ADDR=127.0.0.1:7070\nENGRAM_LOG_LEVEL=debug\n"
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte(dotEnv), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ENGRAM_LOG_LEVEL", "warn")
	cfg, err := config.FromEnvironment()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != "127.0.0.1:7070" {
		t.Errorf("HTTPAddr = %q, want the .env value", cfg.HTTPAddr)
	}
	if cfg.LogLevel != slog.LevelWarn {
		t.Errorf("LogLevel = %v, want the real environment to win over .env", cfg.LogLevel)
	}
	if os.Getenv("ENGRAM_HTTP_ADDR") != "" {
		t.Error("FromEnvironment changed the process environment")
	}

	bad := "ENGRAM_JWT_SECRET=\"topsecretvalue\nENGRAM_X=1\n"
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = config.FromEnvironment()
	if err == nil {
		t.Fatal("a malformed .env was accepted")
	}
	if strings.Contains(err.Error(), "topsecretvalue") {
		t.Errorf("error reveals .env contents: %v", err)
	}
}
