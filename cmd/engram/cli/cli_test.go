package cli

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/engramhq/engram/platform/config"
)

// runCLI runs the command line in-process and returns its exit status,
// standard output and standard error.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Run(t.Context(), args, Env{Stdout: &stdout, Stderr: &stderr})
	return code, stdout.String(), stderr.String()
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-v"}} {
		code, out, errOut := runCLI(t, args...)
		if code != 0 || errOut != "" {
			t.Fatalf("engram %s: exit %d, stderr %q", strings.Join(args, " "), code, errOut)
		}
		if want := "engram " + version("") + "\n"; out != want {
			t.Errorf("engram %s printed %q, want %q", strings.Join(args, " "), out, want)
		}
	}
}

func TestVersionFromLinkerFlag(t *testing.T) {
	if got := version("v1.2.3-4-gabcdef"); got != "v1.2.3-4-gabcdef" {
		t.Errorf("version = %q, want the one set at link time", got)
	}
	var stdout bytes.Buffer
	if code := Run(t.Context(), []string{"--version"}, Env{Stdout: &stdout, Version: "v1.2.3-4-gabcdef"}); code != 0 ||
		stdout.String() != "engram v1.2.3-4-gabcdef\n" {
		t.Errorf("engram --version: exit %d, printed %q", code, stdout.String())
	}
}

func TestVersionFromBuildInfo(t *testing.T) {
	tests := map[string]struct {
		info debug.BuildInfo
		want string
	}{
		"module version": {debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, "v1.4.0"},
		"clean checkout": {debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "false"},
		}}, "devel-0123456789ab"},
		"local changes": {debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"},
		}}, "devel-0123456789ab-dirty"},
		"no VCS information": {debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "devel"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := versionFrom(&tt.info); got != tt.want {
				t.Errorf("versionFrom = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRebuildWithoutNameListsTheReadModels(t *testing.T) {
	code, out, errOut := runCLI(t, "projections", "rebuild")
	if code != exitUsage {
		t.Errorf("exit %d, want %d", code, exitUsage)
	}
	if out != "" {
		t.Errorf("stdout = %q, want nothing", out)
	}
	names := rebuildableNames()
	if len(names) < 3 {
		t.Fatalf("rebuildable read models = %q, want the SQL and Redis ones", names)
	}
	for _, name := range names {
		if !strings.Contains(errOut, "\n  "+name+"\n") {
			t.Errorf("stderr does not list %q:\n%s", name, errOut)
		}
	}
}

// TestUsageMistakesExitWith2 runs command lines that are wrong before any
// work starts: each exits with status 2, says what is wrong, and touches
// no database (the configuration points at none).
func TestUsageMistakesExitWith2(t *testing.T) {
	t.Setenv("ENGRAM_DATABASE_URL", "postgres://127.0.0.1:1/nowhere?sslmode=disable&connect_timeout=1")
	t.Setenv("ENGRAM_REDIS_URL", "")
	tests := map[string]struct {
		args []string
		want []string // in stderr
	}{
		"unknown command":           {[]string{"serv"}, []string{`unknown command "serv" for "engram"`, `did you mean "serve"`, "Run 'engram --help' for usage."}},
		"unknown command, no hint":  {[]string{"frobnicate"}, []string{`unknown command "frobnicate" for "engram"`}},
		"unknown subcommand":        {[]string{"projections", "lsit"}, []string{`unknown command "lsit" for "engram projections"`, `did you mean "list"?`}},
		"unknown user subcommand":   {[]string{"user", "creat"}, []string{`unknown command "creat" for "engram user"`, `did you mean "create"?`}},
		"unknown flag":              {[]string{"migrate", "--force"}, []string{"unknown flag: --force", "Run 'engram migrate --help' for usage."}},
		"unexpected argument":       {[]string{"migrate", "now"}, []string{`"now"`}},
		"missing required flag":     {[]string{"user", "create", "--email", "a@example.com"}, []string{`"display-name" not set`}},
		"bad flag value":            {[]string{"projections", "rebuild", "--page-size", "many", "conversations"}, []string{"--page-size"}},
		"two read models":           {[]string{"projections", "rebuild", "a", "b"}, []string{"one read model, got 2"}},
		"unknown read model":        {[]string{"projections", "rebuild", "nonesuch"}, []string{`"nonesuch" is not a rebuildable read model`}},
		"bad --as-of":               {[]string{"projections", "rebuild", "--as-of", "yesterday", "--into", "past", "conversations"}, []string{"--as-of"}},
		"--as-of without --into":    {[]string{"projections", "rebuild", "--as-of", "12", "conversations"}, []string{"--as-of needs --into"}},
		"bad role":                  {[]string{"user", "grant", "--email", "a@example.com", "--role", "root"}, []string{`--role "root"`}},
		"no password on stdin":      {[]string{"user", "create", "--email", "a@example.com", "--display-name", "A"}, []string{"no password on standard input"}},
		"status takes no arguments": {[]string{"projections", "status", "now"}, []string{`"now"`}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			code, _, errOut := runCLI(t, tt.args...)
			if code != exitUsage {
				t.Errorf("engram %s: exit %d, want %d; stderr:\n%s", strings.Join(tt.args, " "), code, exitUsage, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("engram %s: stderr lacks %q:\n%s", strings.Join(tt.args, " "), w, errOut)
				}
			}
		})
	}
}

func TestInvalidConfigurationExitsWith2(t *testing.T) {
	t.Setenv("ENGRAM_ENV", "staging")
	code, _, errOut := runCLI(t, "migrate")
	if code != exitUsage {
		t.Errorf("exit %d, want %d", code, exitUsage)
	}
	if !strings.Contains(errOut, "invalid configuration") || !strings.Contains(errOut, "ENGRAM_ENV") {
		t.Errorf("stderr does not name the bad variable:\n%s", errOut)
	}
}

func TestFailureAtRunTimeExitsWith1(t *testing.T) {
	t.Setenv("ENGRAM_DATABASE_URL", "postgres://127.0.0.1:1/nowhere?sslmode=disable&connect_timeout=1")
	t.Setenv("ENGRAM_REDIS_URL", "")
	code, _, errOut := runCLI(t, "migrate")
	if code != exitFailure {
		t.Errorf("exit %d, want %d", code, exitFailure)
	}
	if !strings.Contains(errOut, "cannot reach PostgreSQL") {
		t.Errorf("stderr does not say what failed:\n%s", errOut)
	}
	if strings.Contains(errOut, "--help") {
		t.Errorf("a failure at run time is not a usage mistake:\n%s", errOut)
	}
}

func TestHelpSucceeds(t *testing.T) {
	for _, args := range [][]string{{}, {"--help"}, {"projections"}, {"help", "user"}} {
		code, out, errOut := runCLI(t, args...)
		if code != 0 {
			t.Errorf("engram %s: exit %d; stderr %q", strings.Join(args, " "), code, errOut)
		}
		if !strings.Contains(out, "Usage:") {
			t.Errorf("engram %s printed no usage:\n%s", strings.Join(args, " "), out)
		}
	}
}

// TestServeFailsFastOnPortClash takes the port first: serve must refuse at
// once, saying so, before it tries the database (which here does not
// answer: reaching it first would fail with another message, later).
func TestServeFailsFastOnPortClash(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	t.Setenv("ENGRAM_ENV", "test")
	t.Setenv("ENGRAM_HTTP_ADDR", taken.Addr().String())
	t.Setenv("ENGRAM_DATABASE_URL", "postgres://127.0.0.1:1/nowhere?sslmode=disable&connect_timeout=5")
	t.Setenv("ENGRAM_REDIS_URL", "")
	cfg, err := config.FromEnvironment()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	start := time.Now()
	err = serve(ctx, cfg, logger)
	if err == nil {
		t.Fatal("serve succeeded on a port already in use")
	}
	if !strings.Contains(err.Error(), "cannot listen on "+taken.Addr().String()) ||
		!strings.Contains(err.Error(), "address already in use") {
		t.Errorf("error = %q, want it to name the address in use", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("serve took %s to give up, want at once", took)
	}
	if strings.Contains(logs.String(), "PostgreSQL") || strings.Contains(logs.String(), "migration") {
		t.Errorf("serve went on before taking the port:\n%s", logs.String())
	}
}
