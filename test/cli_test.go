package test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/engramhq/engram/test/enginetest"
)

// engramCLI runs the engram binary against inst's database, without Redis,
// with stdin, and returns its standard output, standard error and exit
// status.
func engramCLI(t *testing.T, inst *enginetest.Instance, stdin string, args ...string) (string, string, int) {
	t.Helper()
	return engramCLIEnv(t, inst, nil, stdin, args...)
}

// engramCLIEnv is engramCLI with env added to the environment (a variable
// set there replaces the default).
func engramCLIEnv(t *testing.T, inst *enginetest.Instance, env []string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, enginetest.Binary(t), args...)
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "USER=" + os.Getenv("USER"),
		"ENGRAM_ENV=test", "ENGRAM_DATABASE_URL=" + inst.DatabaseURL, "ENGRAM_JWT_SECRET=" + inst.JWTSecret,
		"ENGRAM_REDIS_URL=", "ENGRAM_LOG_FORMAT=json", "ENGRAM_LOG_LEVEL=warn",
	}, env...)
	cmd.Dir = t.TempDir()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return out.String(), errOut.String(), 0
	case errors.As(err, &exit):
		return out.String(), errOut.String(), exit.ExitCode()
	}
	t.Fatalf("engram %s: %v", strings.Join(args, " "), err)
	return "", "", -1
}
