package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/lib/pq"
)

// liveTable is a read-model table and the schema it lives in.
type liveTable struct {
	schema, name string
}

func (t liveTable) qualified() string {
	return pq.QuoteIdentifier(t.schema) + "." + pq.QuoteIdentifier(t.name)
}

// prepare creates the schema and its empty tables, shaped like the live ones.
func (b *build) prepare(ctx context.Context) error {
	db := b.r.db
	for _, t := range b.p.Tables() {
		var schema sql.NullString
		err := db.QueryRowContext(ctx, `SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE c.oid = to_regclass($1)`, t).Scan(&schema)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && !schema.Valid) {
			return fmt.Errorf("table %s does not exist (are the migrations applied?)", t)
		}
		if err != nil {
			return fmt.Errorf("find table %s: %w", t, err)
		}
		if schema.String == b.schema {
			return fmt.Errorf("schema %s holds the live table %s", b.schema, t)
		}
		b.tables = append(b.tables, liveTable{schema: schema.String, name: t})
	}

	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, b.schema).Scan(&exists); err != nil {
		return fmt.Errorf("look for schema %s: %w", b.schema, err)
	}
	shadow := pq.QuoteIdentifier(b.schema)
	if exists {
		if b.o.Into != "" {
			return fmt.Errorf("schema %s already exists: choose another name or drop it (DROP SCHEMA %s CASCADE)", b.schema, shadow)
		}
		// Left by an interrupted rebuild; the advisory lock says none runs.
		if _, err := db.ExecContext(ctx, `DROP SCHEMA `+shadow+` CASCADE`); err != nil {
			return fmt.Errorf("drop the leftover shadow schema %s: %w", b.schema, err)
		}
		b.r.logger.Info("dropped the shadow schema of an interrupted rebuild", "schema", b.schema)
	}

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `CREATE SCHEMA `+shadow); err != nil {
		return fmt.Errorf("create schema %s: %w", b.schema, err)
	}
	for _, t := range b.tables {
		if err := b.createTable(ctx, tx, t); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create the tables in %s: %w", b.schema, err)
	}
	return b.count(ctx)
}

// createTable creates t in the build's schema: unlogged while it is filled,
// with the live table's columns, defaults and checks, and its primary key,
// unique constraints and unique indexes under the same names (a projector's
// ON CONFLICT needs them, and so will later migrations). Other indexes are
// created once the table is full.
func (b *build) createTable(ctx context.Context, tx *sql.Tx, t liveTable) error {
	shadow := liveTable{schema: b.schema, name: t.name}
	if _, err := tx.ExecContext(ctx, `CREATE UNLOGGED TABLE `+shadow.qualified()+` (LIKE `+t.qualified()+
		` INCLUDING ALL EXCLUDING INDEXES)`); err != nil {
		return fmt.Errorf("create %s: %w", shadow.qualified(), err)
	}
	// LIKE leaves the storage parameters (a fillfactor kept for in-place
	// updates) behind.
	var options sql.NullString
	if err := tx.QueryRowContext(ctx, `SELECT array_to_string(reloptions, ', ') FROM pg_class WHERE oid = $1::regclass`,
		t.qualified()).Scan(&options); err != nil {
		return fmt.Errorf("storage parameters of %s: %w", t.qualified(), err)
	}
	if options.String != "" {
		if _, err := tx.ExecContext(ctx, `ALTER TABLE `+shadow.qualified()+` SET (`+options.String+`)`); err != nil {
			return fmt.Errorf("copy the storage parameters of %s: %w", t.qualified(), err)
		}
	}
	type def struct{ name, sql string }
	query := func(q string) ([]def, error) {
		rows, err := tx.QueryContext(ctx, q, t.qualified())
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []def
		for rows.Next() {
			var d def
			if err := rows.Scan(&d.name, &d.sql); err != nil {
				return nil, err
			}
			out = append(out, d)
		}
		return out, rows.Err()
	}
	constraints, err := query(`SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
		WHERE conrelid = $1::regclass AND contype IN ('p', 'u', 'x') ORDER BY conname`)
	if err != nil {
		return fmt.Errorf("constraints of %s: %w", t.qualified(), err)
	}
	for _, c := range constraints {
		if _, err := tx.ExecContext(ctx, `ALTER TABLE `+shadow.qualified()+` ADD CONSTRAINT `+pq.QuoteIdentifier(c.name)+` `+c.sql); err != nil {
			return fmt.Errorf("copy constraint %s: %w", c.name, err)
		}
	}
	indexes, err := query(`SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE i.indrelid = $1::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
		ORDER BY i.indisunique DESC, c.relname`)
	if err != nil {
		return fmt.Errorf("indexes of %s: %w", t.qualified(), err)
	}
	// pg_get_indexdef quotes names only where needed, as quote_ident does.
	var asShown string
	if err := tx.QueryRowContext(ctx, `SELECT quote_ident($1) || '.' || quote_ident($2)`, t.schema, t.name).Scan(&asShown); err != nil {
		return err
	}
	for _, ix := range indexes {
		on := " ON " + asShown + " "
		if !strings.Contains(ix.sql, on) {
			return fmt.Errorf("index %s: unexpected definition %q", ix.name, ix.sql)
		}
		stmt := strings.Replace(ix.sql, on, " ON "+shadow.qualified()+" ", 1)
		if strings.HasPrefix(ix.sql, "CREATE UNIQUE ") {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("copy index %s: %w", ix.name, err)
			}
			continue
		}
		b.deferred = append(b.deferred, stmt)
	}
	return nil
}

// finishTables creates the deferred indexes and makes the tables logged.
func (b *build) finishTables(ctx context.Context) error {
	for _, stmt := range b.deferred {
		if _, err := b.r.db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("create index: %w", err)
		}
	}
	for _, t := range b.tables {
		shadow := liveTable{schema: b.schema, name: t.name}
		if _, err := b.r.db.ExecContext(ctx, `ALTER TABLE `+shadow.qualified()+` SET LOGGED`); err != nil {
			return fmt.Errorf("make %s logged: %w", shadow.qualified(), err)
		}
	}
	if b.o.Into != "" {
		b.result.Schema = b.o.Into
	}
	return nil
}
