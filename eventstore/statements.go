package eventstore

import (
	"context"
	"database/sql"
	"sync"
)

// statements prepares the store's fixed queries, once for each connection
// of the pool that runs them (database/sql does that part): a prepared query
// is parsed and planned once instead of at every call. The hottest of them,
// Tip, answers every read served from memory; PostgreSQL runs it about
// twice as fast prepared (pgbench, same query, same machine).
//
// Only queries of the events table are prepared: it is never dropped,
// renamed or altered while the server runs, so a plan of it stays valid.
// The texts must come from a fixed set (no values spliced in).
type statements struct {
	db interface {
		PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
	}
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// get returns the prepared statement of query, preparing it at its first
// use. The lock is not held while preparing, which takes a connection and a
// round trip: two first uses at once may both prepare, and one keeps the
// other's. An error (the database is unreachable) is not kept: the next
// call tries again.
func (s *statements) get(ctx context.Context, query string) (*sql.Stmt, error) {
	s.mu.Lock()
	st, ok := s.m[query]
	s.mu.Unlock()
	if ok {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, query) //nolint:sqlclosecheck // kept for the store's lifetime: it ends with the pool's connections
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if kept, ok := s.m[query]; ok {
		_ = st.Close() //nolint:sqlclosecheck // the other first use won: this one is dropped at once
		return kept, nil
	}
	if s.m == nil {
		s.m = map[string]*sql.Stmt{}
	}
	s.m[query] = st
	return st, nil
}

// query runs a fixed query of the events table as a prepared statement.
func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := s.stmts.get(ctx, query) //nolint:sqlclosecheck // shared, prepared once
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// queryRow is query for one row.
func (s *Store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := s.stmts.get(ctx, query) //nolint:sqlclosecheck // shared, prepared once
	if err != nil {
		// A Row carrying the error: database/sql has no other constructor.
		return s.db.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}
