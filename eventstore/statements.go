package eventstore

import (
	"context"
	"database/sql"
)

// The store prepares its fixed queries (sqlstmt): the hottest of them,
// Tip, answers every read served from memory; PostgreSQL runs it about
// twice as fast prepared (pgbench, same query, same machine).
//
// Only queries of the events table are prepared this way: it is never
// dropped, renamed or altered while the server runs, so a plan of it stays
// valid. The texts come from a fixed set (no values spliced in).

// query runs a fixed query of the events table as a prepared statement.
func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return s.stmts.QueryContext(ctx, query, args...)
}

// queryRow is query for one row.
func (s *Store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return s.stmts.QueryRowContext(ctx, query, args...)
}
