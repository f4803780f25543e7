package projections

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
	"time"
)

// lock takes the session advisory lock that keeps two rebuilds of one
// projector apart, on a connection of its own held until unlock.
func (r *Rebuilder) lock(ctx context.Context, name string) (func(), error) {
	conn, err := r.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("rebuild %s: %w", name, err)
	}
	key := rebuildLockKey(name)
	var ok bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("rebuild %s: lock: %w", name, err)
	}
	if !ok {
		_ = conn.Close()
		return nil, fmt.Errorf("rebuild %s: %w", name, ErrRebuildRunning)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_, _ = conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, key)
		_ = conn.Close()
	}, nil
}

// rebuildLockKey is the advisory lock key of a projector's rebuilds.
func rebuildLockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("engram.rebuild." + name))
	return int64(h.Sum64())
}

// Rebuilding reports whether a rebuild of the projector named name is running
// (in any process).
func Rebuilding(ctx context.Context, db *sql.DB, name string) (bool, error) {
	key := uint64(rebuildLockKey(name))
	var held bool
	err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 1)`, int64(key>>32), int64(uint32(key))).Scan(&held)
	if err != nil {
		return false, fmt.Errorf("rebuild lock of %s: %w", name, err)
	}
	return held, nil
}
