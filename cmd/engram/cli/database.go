package cli

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/migrations"
	"github.com/engramhq/engram/platform/config"
)

// migration says when a command applies the pending migrations before it
// uses the database.
type migration int

const (
	// noMigration leaves the schema as it is.
	noMigration migration = iota
	// alwaysMigrate applies the pending migrations.
	alwaysMigrate
	// autoMigrate applies them when ENGRAM_AUTO_MIGRATE says so.
	autoMigrate
)

// applies reports whether the migrations are applied under cfg.
func (m migration) applies(cfg config.Config) bool {
	return m == alwaysMigrate || m == autoMigrate && cfg.AutoMigrate
}

// withDatabase runs fn with the configuration, its logger and the database,
// migrated as m says; the database is closed when fn returns.
func (p *program) withDatabase(ctx context.Context, m migration,
	fn func(cfg config.Config, logger *slog.Logger, db *sqlx.DB) error) error {
	return p.withConfig(func(cfg config.Config, logger *slog.Logger) error {
		db, err := openDatabase(ctx, cfg, m.applies(cfg), logger)
		if err != nil {
			return err
		}
		defer func() { _ = db.Close() }()
		return fn(cfg, logger, db)
	})
}

// openDatabase connects to PostgreSQL. Outside production, a missing database
// is created. Pending migrations are applied when migrate is true.
func openDatabase(ctx context.Context, cfg config.Config, migrate bool, logger *slog.Logger) (*sqlx.DB, error) {
	db, err := sqlx.Open("postgres", eventstore.DSN(cfg.DatabaseURL))
	if err != nil {
		return nil, fmt.Errorf("database URL: %w", err)
	}
	db.SetMaxOpenConns(cfg.DatabaseMaxConns)
	db.SetMaxIdleConns(cfg.DatabaseMaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)

	err = ping(ctx, db)
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "3D000" && !cfg.IsProduction() {
		name, cerr := createDatabase(ctx, cfg.DatabaseURL)
		if cerr != nil {
			db.Close()
			return nil, fmt.Errorf("database does not exist and could not be created: %w", cerr)
		}
		logger.Info("created the database", "database", name)
		err = ping(ctx, db)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("cannot reach PostgreSQL at %s (is it running? set ENGRAM_DATABASE_URL): %w", redactURL(cfg.DatabaseURL), err)
	}
	if migrate {
		applied, err := migrations.Up(ctx, db.DB)
		if err != nil {
			db.Close()
			return nil, err
		}
		if len(applied) > 0 {
			logger.Info("applied database migrations", "count", len(applied), "migrations", strings.Join(applied, ", "))
		}
	}
	return db, nil
}

func ping(ctx context.Context, db *sqlx.DB) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// createDatabase creates the database named in dbURL, connecting to the
// server's "postgres" database to do so.
func createDatabase(ctx context.Context, dbURL string) (string, error) {
	u, err := url.Parse(dbURL)
	if err != nil {
		return "", err
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" {
		return "", errors.New("the database URL names no database")
	}
	u.Path = "/postgres"
	admin, err := sql.Open("postgres", u.String())
	if err != nil {
		return "", err
	}
	defer admin.Close()
	_, err = admin.ExecContext(ctx, `CREATE DATABASE `+pq.QuoteIdentifier(name))
	var pqErr *pq.Error
	if errors.As(err, &pqErr) && pqErr.Code == "42P04" { // created meanwhile
		return name, nil
	}
	return name, err
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
