// Package sqlstmt keeps the prepared statements of fixed query texts, so
// that PostgreSQL parses and plans each once per connection instead of at
// every call. database/sql prepares a statement on each connection of the
// pool that runs it, and again on a new connection.
package sqlstmt

import (
	"context"
	"database/sql"
	"sync"
)

// DB is the connection pool the statements are prepared on and run in: a
// *sql.DB or *sqlx.DB.
type DB interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Cache holds the prepared statements of the query texts it was asked for.
// The texts must come from a fixed set (no values spliced in); Max bounds
// them all the same.
type Cache struct {
	db  DB
	max int

	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// New returns a Cache preparing on db, holding at most max texts (0: no
// bound).
func New(db DB, max int) *Cache {
	return &Cache{db: db, max: max}
}

// Get returns the prepared statement of query, preparing it at its first
// use, or nil when the cache is full (the caller runs the query as it is).
// The lock is not held while preparing, which takes a connection and a
// round trip: two first uses at once may both prepare, and one keeps the
// other's. An error (the database is unreachable) is not kept: the next
// call tries again.
func (c *Cache) Get(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	st, ok := c.m[query]
	full := c.max > 0 && len(c.m) >= c.max
	c.mu.Unlock()
	if ok {
		return st, nil
	}
	if full {
		return nil, nil
	}
	st, err := c.db.PrepareContext(ctx, query) //nolint:sqlclosecheck // kept for the cache's lifetime: it ends with the pool's connections
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if kept, ok := c.m[query]; ok {
		_ = st.Close() //nolint:sqlclosecheck // the other first use won: this one is dropped at once
		return kept, nil
	}
	if c.m == nil {
		c.m = map[string]*sql.Stmt{}
	}
	c.m[query] = st
	return st, nil
}

// Len returns the number of texts prepared.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// stmt returns query's prepared statement, or nil to run it as it is: the
// cache is full, or the database would not prepare it (run as it is, the
// query gives the same answer, or the same error).
func (c *Cache) stmt(ctx context.Context, query string) *sql.Stmt {
	st, _ := c.Get(ctx, query) //nolint:sqlclosecheck // shared, prepared once
	return st
}

// ExecContext runs query prepared.
func (c *Cache) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := c.stmt(ctx, query); st != nil { //nolint:sqlclosecheck // shared, prepared once
		return st.ExecContext(ctx, args...)
	}
	return c.db.ExecContext(ctx, query, args...)
}

// QueryContext runs query, which returns rows, prepared.
func (c *Cache) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := c.stmt(ctx, query); st != nil { //nolint:sqlclosecheck // shared, prepared once
		return st.QueryContext(ctx, args...)
	}
	return c.db.QueryContext(ctx, query, args...)
}

// QueryRowContext runs query, which returns one row, prepared.
func (c *Cache) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := c.stmt(ctx, query); st != nil { //nolint:sqlclosecheck // shared, prepared once
		return st.QueryRowContext(ctx, args...)
	}
	return c.db.QueryRowContext(ctx, query, args...)
}

// Tx runs the statements of a transaction prepared by c: each prepared
// statement is used on the transaction's connection (database/sql prepares
// it there once). A statement without parameters runs as it is, in the
// simple protocol, which takes several statements in one round trip
// (savepoints) and cannot be prepared.
type Tx struct {
	tx    *sql.Tx
	cache *Cache
}

// In returns tx running its statements prepared by c.
func (c *Cache) In(tx *sql.Tx) Tx { return Tx{tx: tx, cache: c} }

// stmt returns query's prepared statement in the transaction, or nil to
// run it as it is.
func (t Tx) stmt(ctx context.Context, query string, args []any) *sql.Stmt {
	if len(args) == 0 {
		return nil
	}
	st := t.cache.stmt(ctx, query)
	if st == nil {
		return nil
	}
	return t.tx.StmtContext(ctx, st) //nolint:sqlclosecheck // closed with the transaction
}

// ExecContext runs query in the transaction, prepared.
func (t Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.stmt(ctx, query, args); st != nil { //nolint:sqlclosecheck // a statement of the transaction: closed with it
		return st.ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, query, args...)
}

// QueryContext runs query, which returns rows, in the transaction, prepared.
func (t Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := t.stmt(ctx, query, args); st != nil { //nolint:sqlclosecheck // a statement of the transaction: closed with it
		return st.QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, query, args...)
}

// QueryRowContext runs query, which returns one row, in the transaction,
// prepared.
func (t Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := t.stmt(ctx, query, args); st != nil { //nolint:sqlclosecheck // a statement of the transaction: closed with it
		return st.QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, query, args...)
}
