// Package pgtest gives each test its own freshly migrated PostgreSQL database,
// dropped when the test ends, so that no test depends on another's data.
//
// The server is taken from ENGRAM_TEST_DATABASE_URL (default
// postgres://127.0.0.1:5432/postgres?sslmode=disable); the database named in
// that URL is only used to create and drop the per-test databases.
//
// With go test -short, the tests that need a database are skipped: the
// short run is the unit tests only.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // PostgreSQL driver

	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/migrations"
)

// SkipIfShort skips t under go test -short: it needs PostgreSQL.
func SkipIfShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs PostgreSQL: skipped in -short mode")
	}
}

// AdminURL returns the URL of the database used to create test databases.
func AdminURL() string {
	if u := os.Getenv("ENGRAM_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://127.0.0.1:5432/postgres?sslmode=disable"
}

// NewURL creates an empty, migrated database for t and returns its URL. The
// database is dropped when t ends. It skips t in -short mode.
func NewURL(t testing.TB) string {
	t.Helper()
	SkipIfShort(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "engram_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := execAdmin(ctx, `CREATE DATABASE `+name); err != nil {
		t.Fatalf("pgtest: create database (is PostgreSQL running? ENGRAM_TEST_DATABASE_URL=%s): %v", AdminURL(), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := execAdmin(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(AdminURL())
	if err != nil {
		t.Fatalf("pgtest: parse %s: %v", AdminURL(), err)
	}
	u.Path = "/" + name
	dbURL := u.String()

	db, err := sql.Open("postgres", dbURL)
	if err != nil {
		t.Fatalf("pgtest: open %s: %v", name, err)
	}
	defer db.Close()
	if _, err := migrations.Up(ctx, db); err != nil {
		t.Fatalf("pgtest: migrate %s: %v", name, err)
	}
	return dbURL
}

// execAdmin runs a statement, such as CREATE DATABASE, on a connection of
// its own to the database at AdminURL.
func execAdmin(ctx context.Context, statement string) error {
	admin, err := sql.Open("postgres", AdminURL())
	if err != nil {
		return fmt.Errorf("open admin connection: %w", err)
	}
	defer admin.Close()
	_, err = admin.ExecContext(ctx, statement)
	return err
}

// New creates a migrated database for t and returns a connection pool to it,
// closed when t ends.
func New(t testing.TB) *sqlx.DB {
	t.Helper()
	u := NewURL(t)
	db, err := sqlx.Open("postgres", eventstore.DSN(u))
	if err != nil {
		t.Fatalf("pgtest: open: %v", err)
	}
	db.SetMaxOpenConns(20)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// NewStore creates a migrated database for t (see New) and returns it with
// an event store over it, made with opts.
func NewStore(t testing.TB, opts ...eventstore.Option) (*sqlx.DB, *eventstore.Store) {
	t.Helper()
	db := New(t)
	store, err := eventstore.New(db, opts...)
	if err != nil {
		t.Fatalf("pgtest: event store: %v", err)
	}
	return db, store
}

// Execer runs a statement: *sql.DB and *sqlx.DB are Execers.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// AsSuperuser runs statements on db with the events table's immutability
// triggers disabled, as a database superuser can, then enables them again.
// Tests of tamper evidence use it to change the log behind the store's
// back.
func AsSuperuser(t testing.TB, db Execer, statements ...string) {
	t.Helper()
	all := append(append([]string{`ALTER TABLE events DISABLE TRIGGER USER`}, statements...), `ALTER TABLE events ENABLE TRIGGER USER`)
	for _, q := range all {
		if _, err := db.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}
