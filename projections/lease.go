package projections

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"sync"
)

// Lease makes one instance at a time do a job (apply the projectors, react
// to events): a session-level PostgreSQL advisory lock held on a connection
// of its own. The lock goes with the connection, so an instance that dies
// or loses its database gives the lease up, and another takes it.
//
// A lease saves work; it does not make the job correct. Two instances may
// both believe they hold it for a moment (one has lost its connection and
// not noticed yet), so what the job writes stays guarded by row locks and
// version checks.
type Lease struct {
	db   *sql.DB
	name string

	mu   sync.Mutex
	conn *sql.Conn
}

// NewLease returns the lease called name (not taken yet).
func NewLease(db *sql.DB, name string) *Lease {
	return &Lease{db: db, name: "engram.lease:" + name}
}

// Held reports whether this instance holds the lease, as far as it knows.
func (l *Lease) Held() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conn != nil
}

// TryAcquire takes the lease if no other instance holds it, and reports
// whether this instance holds it now.
func (l *Lease) TryAcquire(ctx context.Context) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		return true
	}
	conn, err := l.db.Conn(ctx)
	if err != nil {
		return false
	}
	var ok bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`, l.name).Scan(&ok); err != nil || !ok {
		_ = conn.Close()
		return false
	}
	l.conn = conn
	return true
}

// Check asks the database whether the lease's connection is still alive,
// and gives the lease up when it is not.
func (l *Lease) Check(ctx context.Context) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return false
	}
	// A session lock lasts as long as its session: a live connection
	// still holds it.
	if err := l.conn.PingContext(ctx); err != nil {
		l.drop()
		return false
	}
	return true
}

// drop closes the lease's connection for good (never back into the pool,
// where it could keep the lock), which ends the lock with the session.
func (l *Lease) drop() {
	_ = l.conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = l.conn.Close()
	l.conn = nil
}

// Release gives the lease up.
func (l *Lease) Release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return
	}
	l.drop()
}
