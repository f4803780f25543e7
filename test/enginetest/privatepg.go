package enginetest

import (
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/engramhq/engram/test/pgtest"
)

// Postgres is a private PostgreSQL cluster on a free port, for tests that
// stop and start the database server. The machine's shared cluster is never
// touched. The cluster is removed when the test ends.
type Postgres struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	// asPostgres runs the server tools as the postgres OS user (they refuse
	// to run as root).
	asPostgres bool
}

// StartPostgres creates a private cluster (initdb, trust authentication on
// 127.0.0.1) and starts it. It skips the test when the PostgreSQL server
// tools are not installed, or when running as root without a postgres user.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	pgtest.SkipIfShort(t)
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(found) == 0 {
		t.Skip("PostgreSQL server tools (initdb) are not installed under /usr/lib/postgresql")
	}
	slices.Sort(found)
	pg := &Postgres{t: t, bin: filepath.Dir(found[len(found)-1]), port: freePort(t)}
	dir, err := os.MkdirTemp("", "engram-pg-")
	if err != nil {
		t.Fatal(err)
	}
	pg.dir = dir
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skipf("running as root and there is no postgres user to run initdb as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Skipf("cannot give %s to the postgres user: %v", dir, err)
		}
		pg.asPostgres = true
	}
	if out, err := pg.run("initdb", "-D", pg.data(), "-A", "trust", "-U", "postgres", "--no-sync", "--no-instructions"); err != nil {
		t.Skipf("initdb failed (%v): %s", err, out)
	}
	conf := "listen_addresses = '127.0.0.1'\nport = " + strconv.Itoa(pg.port) +
		"\nunix_socket_directories = '" + pg.dir + "'\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 100\nshared_buffers = 32MB\n"
	f, err := os.OpenFile(filepath.Join(pg.data(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatalf("configure private postgres: %v", err)
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("configure private postgres: %v", err)
	}
	pg.Start()
	t.Cleanup(func() { _, _ = pg.run(pg.tool("pg_ctl"), "-D", pg.data(), "-m", "immediate", "-w", "stop") })
	return pg
}

func (pg *Postgres) data() string { return filepath.Join(pg.dir, "data") }

func (pg *Postgres) tool(name string) string { return filepath.Join(pg.bin, name) }

// run runs a server tool, as the postgres user when
// the test runs as root.
func (pg *Postgres) run(name string, args ...string) ([]byte, error) {
	if !filepath.IsAbs(name) {
		name = pg.tool(name)
	}
	var cmd *exec.Cmd
	if pg.asPostgres {
		quoted := make([]string, 0, len(args)+1)
		for _, a := range append([]string{name}, args...) {
			quoted = append(quoted, "'"+strings.ReplaceAll(a, "'", `'\''`)+"'")
		}
		cmd = exec.Command("su", "postgres", "-s", "/bin/sh", "-c", strings.Join(quoted, " "))
	} else {
		cmd = exec.Command(name, args...)
	}
	return cmd.CombinedOutput()
}

// Port is the port the cluster listens on.
func (pg *Postgres) Port() int { return pg.port }

// Start starts the server and waits until it accepts connections.
func (pg *Postgres) Start() {
	pg.t.Helper()
	if out, err := pg.run("pg_ctl", "-D", pg.data(), "-l", filepath.Join(pg.dir, "server.log"), "-w", "-t", "30", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(pg.dir, "server.log"))
		pg.t.Fatalf("start private postgres: %v: %s\n%s", err, out, log)
	}
}

// Stop stops the server with the fast mode: sessions are cut, in-flight
// transactions roll back.
func (pg *Postgres) Stop() {
	pg.t.Helper()
	if out, err := pg.run("pg_ctl", "-D", pg.data(), "-m", "fast", "-w", "-t", "30", "stop"); err != nil {
		pg.t.Fatalf("stop private postgres: %v: %s", err, out)
	}
}

// CreateDatabase creates an empty database and returns its URL.
func (pg *Postgres) CreateDatabase(name string) string {
	pg.t.Helper()
	admin, err := sql.Open("postgres", pg.url("postgres"))
	if err != nil {
		pg.t.Fatal(err)
	}
	defer admin.Close()
	var lastErr error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, lastErr = admin.Exec(`CREATE DATABASE ` + name); lastErr == nil {
			return pg.url(name)
		}
	}
	pg.t.Fatalf("create database %s: %v", name, lastErr)
	return ""
}

func (pg *Postgres) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", pg.port, db)
}

func freePort(t testing.TB) int {
	t.Helper()
	addr := freeAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	n, _ := strconv.Atoi(port)
	return n
}
