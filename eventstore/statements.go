package eventstore

import (
	"context"
	"database/sql"
)

// query runs a fixed query of the events table as a prepared statement
// (sqlstmt): the hottest of them, Tip, answers every read served from
// memory; PostgreSQL runs it about twice as fast prepared (pgbench, same
// query, same machine). The events table is never dropped, renamed or
// altered while the server runs, so a plan of it stays valid; the texts
// come from a fixed set (no values spliced in).
func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return s.stmts.QueryContext(ctx, query, args...)
}

// queryRow is query for one row.
func (s *Store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return s.stmts.QueryRowContext(ctx, query, args...)
}
