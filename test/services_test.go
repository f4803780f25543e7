package test

import (
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/engramhq/engram/test/pgtest"
	"github.com/engramhq/engram/test/redistest"
)

// services runs scripts/services.sh with env (and nothing else of the
// test's environment but PATH) and returns its exit status and output.
func services(t *testing.T, env ...string) (int, string) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "scripts", "services.sh")
	cmd := exec.Command("bash", script)
	cmd.Dir = t.TempDir() // no .env there
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(out)
		}
		t.Fatalf("run %s: %v", script, err)
	}
	return 0, string(out)
}

// The script checks the servers the configuration names, not fixed ports.
func TestServicesScriptHonoursTheURLs(t *testing.T) {
	pgtest.SkipIfShort(t)
	if _, err := exec.LookPath("pg_isready"); err != nil {
		t.Skip("pg_isready is not installed")
	}
	admin, err := url.Parse(pgtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	redisURL, err := url.Parse(redistest.URL())
	if err != nil {
		t.Fatal(err)
	}
	redistest.Client(t, "") // skips or fails when the test Redis does not answer

	t.Run("servers of the URLs", func(t *testing.T) {
		code, out := services(t, "ENGRAM_DATABASE_URL="+admin.String(), "ENGRAM_REDIS_URL="+redisURL.String())
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		for _, want := range []string{"PostgreSQL is answering on " + admin.Host, "Redis is answering on " + redisURL.Host} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("no Redis", func(t *testing.T) {
		code, out := services(t, "ENGRAM_DATABASE_URL="+admin.String(), "ENGRAM_REDIS_URL=")
		if code != 0 || !strings.Contains(out, "ENGRAM_REDIS_URL is empty") {
			t.Errorf("exit %d, want 0 and no Redis checked:\n%s", code, out)
		}
	})
	t.Run("remote PostgreSQL not answering", func(t *testing.T) {
		// 192.0.2.0/24 is reserved for documentation: nothing answers there,
		// and the script must not try to start or install anything for it.
		code, out := services(t, "ENGRAM_DATABASE_URL=postgres://u:secret@192.0.2.1:6543/engram", "ENGRAM_REDIS_URL=")
		if code != 1 {
			t.Errorf("exit %d, want 1:\n%s", code, out)
		}
		if !strings.Contains(out, "192.0.2.1:6543") || strings.Contains(out, "secret") || strings.Contains(out, "installing") {
			t.Errorf("output should name 192.0.2.1:6543 only:\n%s", out)
		}
	})
}
