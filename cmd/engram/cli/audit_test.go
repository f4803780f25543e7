package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/test/pgtest"
)

// auditCLI is a fresh database with a few streams, and the environment of
// the command line pointing at it.
type auditCLI struct {
	dir   string
	db    *sqlx.DB
	store *eventstore.Store
}

func newAuditCLI(t *testing.T) *auditCLI {
	t.Helper()
	url := pgtest.NewURL(t)
	db, err := sqlx.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	store, err := eventstore.New(db)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Chdir(dir) // no .env of the developer's
	for k, v := range map[string]string{"ENGRAM_ENV": "test", "ENGRAM_DATABASE_URL": url, "ENGRAM_LOG_LEVEL": "error",
		"ENGRAM_REDIS_URL": "", "ENGRAM_AUDIT_SIGNING_KEY": ""} {
		t.Setenv(k, v)
	}
	c := &auditCLI{dir: dir, db: db, store: store}
	for _, id := range []string{"a", "b"} {
		c.append(t, id, 0, 3)
	}
	return c
}

// append writes n events to stream gadget-<id> at expected version.
func (c *auditCLI) append(t *testing.T, id string, expected, n int) {
	t.Helper()
	batch := make([]eventstore.NewEvent, n)
	for i := range batch {
		batch[i] = eventstore.NewEvent{ID: uuid.NewString(), Type: "gadget.tuned", Data: json.RawMessage(fmt.Sprintf(`{"dial":%d}`, expected+i))}
	}
	if _, err := c.store.Append(context.Background(), eventstore.Stream{ID: "gadget-" + id, Type: "gadget"}, expected, batch, eventstore.Metadata{ActorID: "u"}); err != nil {
		t.Fatal(err)
	}
}

func (c *auditCLI) path(name string) string { return filepath.Join(c.dir, name) }

func wantExit(t *testing.T, want int, args ...string) (string, string) {
	t.Helper()
	code, stdout, stderr := runCLI(t, args...)
	if code != want {
		t.Fatalf("engram %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, stdout, stderr)
	}
	return stdout, stderr
}

func TestAuditCheckpointAndVerifyExitStatus(t *testing.T) {
	c := newAuditCLI(t)
	key, cp := c.path("key.pem"), c.path("checkpoint.json")

	// Without a key nothing is signed.
	_, stderr := wantExit(t, 2, "audit", "checkpoint", "-o", cp)
	if !strings.Contains(stderr, "ENGRAM_AUDIT_SIGNING_KEY is not set") {
		t.Fatalf("stderr: %s", stderr)
	}
	stdout, _ := wantExit(t, 0, "audit", "keygen", "-o", key)
	if info, err := os.Stat(key); err != nil || info.Mode().Perm() != 0o600 || !strings.Contains(stdout, "SHA256:") {
		t.Fatalf("key file: %v, %v; stdout %s", info, err, stdout)
	}
	wantExit(t, 2, "audit", "keygen", "-o", key) // never overwrites a key
	wantExit(t, 2, "audit", "keygen")
	t.Setenv("ENGRAM_AUDIT_SIGNING_KEY", key)

	// A key others may read is refused.
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr := wantExit(t, 2, "audit", "checkpoint", "-o", cp); !strings.Contains(stderr, "chmod 600") {
		t.Fatalf("stderr: %s", stderr)
	}
	if err := os.Chmod(key, 0o600); err != nil {
		t.Fatal(err)
	}

	_, stderr = wantExit(t, 0, "audit", "checkpoint", "-o", cp)
	if !strings.Contains(stderr, "checkpoint of 6 events up to position 6") {
		t.Fatalf("stderr: %s", stderr)
	}
	wantExit(t, 2, "audit", "checkpoint", "-o", cp) // never overwrites a checkpoint

	// An untouched log that has grown passes, with the public key's file or
	// its base64, or the key the checkpoint names.
	c.append(t, "a", 3, 2)
	c.append(t, "c", 0, 1)
	stdout, _ = wantExit(t, 0, "audit", "verify", "--checkpoint", cp, "--public-key", key+".pub")
	if !strings.Contains(stdout, "6 events up to position 6, 6 found: every event it covers is intact") {
		t.Fatalf("stdout: %s", stdout)
	}
	var file struct {
		PublicKey string `json:"public_key"`
	}
	raw, err := os.ReadFile(cp)
	if err != nil || json.Unmarshal(raw, &file) != nil {
		t.Fatalf("checkpoint file: %v", err)
	}
	wantExit(t, 0, "audit", "verify", "--checkpoint", cp, "--public-key", file.PublicKey)
	if _, stderr := wantExit(t, 0, "audit", "verify", "--checkpoint", cp); !strings.Contains(stderr, "compare it with the key you trust") {
		t.Fatalf("stderr: %s", stderr)
	}

	// Bad flags and files.
	wantExit(t, 2, "audit", "verify", "--checkpoint", cp, "--stream", "gadget-a")
	wantExit(t, 2, "audit", "verify", "--public-key", file.PublicKey)
	wantExit(t, 2, "audit", "verify", "--checkpoint", c.path("missing.json"))
	wantExit(t, 2, "audit", "verify", "--checkpoint", cp, "--public-key", c.path("missing.pub"))
	if err := os.WriteFile(c.path("garbage.json"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	wantExit(t, 2, "audit", "verify", "--checkpoint", c.path("garbage.json"))

	// Signed by another key, or altered: exit 1.
	wantExit(t, 0, "audit", "keygen", "-o", c.path("other.pem"))
	if _, stderr := wantExit(t, 1, "audit", "verify", "--checkpoint", cp, "--public-key", c.path("other.pem.pub")); !strings.Contains(stderr, "not by the key given") {
		t.Fatalf("stderr: %s", stderr)
	}
	altered := bytes.Replace(raw, []byte(`"events": 6`), []byte(`"events": 5`), 1)
	if err := os.WriteFile(c.path("altered.json"), altered, 0o644); err != nil {
		t.Fatal(err)
	}
	wantExit(t, 1, "audit", "verify", "--checkpoint", c.path("altered.json"))

	// The last event of a stream deleted by a superuser: the chains see
	// nothing, the checkpoint names it.
	for _, q := range []string{`ALTER TABLE events DISABLE TRIGGER USER`,
		`DELETE FROM events WHERE stream_id = 'gadget-b' AND stream_version = 3`, `ALTER TABLE events ENABLE TRIGGER USER`} {
		if _, err := c.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	stdout, stderr = wantExit(t, 1, "audit", "verify", "--checkpoint", cp, "--public-key", key+".pub")
	if !strings.Contains(stdout, "no breaks") || !strings.Contains(stdout, "CHANGE change=deleted positions=6 events=1: 1 event deleted at position 6") ||
		!strings.Contains(stderr, "differs from the checkpoint: 1 changes") {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
	wantExit(t, 0, "audit", "verify") // the chains alone

	// A broken chain: no checkpoint is signed.
	for _, q := range []string{`ALTER TABLE events DISABLE TRIGGER USER`,
		`UPDATE events SET data = '{"dial": 99}' WHERE stream_id = 'gadget-a' AND stream_version = 1`, `ALTER TABLE events ENABLE TRIGGER USER`} {
		if _, err := c.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	_, stderr = wantExit(t, 1, "audit", "checkpoint", "-o", c.path("broken.json"))
	if !strings.Contains(stderr, `BREAK stream=gadget-a version=1`) {
		t.Fatalf("stderr: %s", stderr)
	}
	if _, err := os.Stat(c.path("broken.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a checkpoint of a broken log was written: %v", err)
	}
	wantExit(t, 1, "audit", "verify")
}
