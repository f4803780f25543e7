package eventstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// The read lease lets an instance that runs alone against its database
// answer reads from memory without a round trip: while it holds the lease,
// no other session can append (migrations/00007_read_lease.sql), so every
// event committed before a read began is either one of its own appends,
// whose cursors it knows, or older than the lease.
//
// Its timing:
const (
	// LeaseTerm is how long a lease taken or renewed lasts, by the
	// database's clock. It bounds how long another writer waits for the
	// lease to lapse: a second instance's first appends, or a command of
	// the CLI, wait at most about this long, once.
	LeaseTerm = 2 * time.Second
	// LeaseRenewal is how often an instance renews its lease and says it
	// is running.
	LeaseRenewal = 500 * time.Millisecond
	// LeaseMargin is how long before a lease lapses its holder stops
	// trusting it (its clock measures from before it asked for the lease).
	// It covers a step of the database server's clock of up to that much.
	LeaseMargin = 250 * time.Millisecond
	// leasePresence is how long an instance counts as running after it
	// last said so: while another instance counts as running, no lease is
	// taken or renewed.
	leasePresence = 5 * time.Second
	// writerPresence is how long a writer that was refused counts as
	// running: a command of the CLI, or a batch of appends, is done before
	// the lease is taken again.
	writerPresence = time.Minute
)

// leaseLockKey is the advisory lock that orders the writers' checks
// (shared) against the taking of a lease (exclusive); the trigger of
// migration 00007 takes it too.
const leaseLockKey = 7308057466244753778

// errLeased is an append refused because another instance holds the read
// lease: it is written again once the lease has lapsed.
type errLeased struct {
	lapsesIn time.Duration
	err      error
}

func (e *errLeased) Error() string { return e.err.Error() }
func (e *errLeased) Unwrap() error { return e.err }

// leased returns err as an errLeased when the lease trigger refused it.
func leased(err error) (*errLeased, bool) {
	var pqErr *pq.Error
	if !errors.As(err, &pqErr) || pqErr.Code != "EL001" {
		return nil, false
	}
	secs, perr := strconv.ParseFloat(pqErr.Detail, 64)
	if perr != nil || secs < 0 || secs > LeaseTerm.Seconds()*2 {
		secs = LeaseTerm.Seconds()
	}
	return &errLeased{lapsesIn: time.Duration(secs * float64(time.Second)), err: err}, true
}

// awaitLease makes a writer refused by another instance's read lease known
// as running, so that the holder does not renew the lease, and waits until
// the lease has lapsed.
func (s *Store) awaitLease(ctx context.Context, l *errLeased) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO read_leases (instance, seen_until)
		VALUES (current_setting('application_name'), clock_timestamp() + make_interval(secs => $1))
		ON CONFLICT (instance) DO UPDATE SET seen_until = GREATEST(read_leases.seen_until, excluded.seen_until)`,
		writerPresence.Seconds()); err != nil {
		return fmt.Errorf("eventstore: wait for the read lease: %w", err)
	}
	if !sleep(ctx, l.lapsesIn+10*time.Millisecond, nil, nil) {
		return ctx.Err()
	}
	return nil
}

// ownTip is the cursor of the last event this store appended, as far as
// its callers know: noted after the commit, before Append returns.
type ownTip struct {
	mu sync.Mutex
	c  Cursor
}

func (o *ownTip) note(c Cursor) {
	o.mu.Lock()
	if c.After(o.c) {
		o.c = c
	}
	o.mu.Unlock()
}

func (o *ownTip) get() Cursor {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.c
}

// ReadLease takes and keeps the read lease for this store's sessions while
// no other instance runs against the database, and tells a reader, without
// a round trip, the last event committed before it asked (Head).
type ReadLease struct {
	store  *Store
	name   string // the application_name of the store's sessions
	logger *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	trusted time.Time // Head answers until then (monotonic clock)
	epoch   Cursor    // the tip of the log read once the lease was taken
}

// othersRunning selects the rows of read_leases of the instances other than
// $1 that run or hold a lease.
const othersRunning = `SELECT FROM read_leases o WHERE o.instance <> $1
	AND (o.seen_until > clock_timestamp() OR o.holds_until > clock_timestamp())`

// NewReadLease returns the read lease of this store's sessions; Run takes
// and keeps it, logging when it takes or loses it.
func (s *Store) NewReadLease(ctx context.Context, logger *slog.Logger) (*ReadLease, error) {
	var name string
	if err := s.db.QueryRowContext(ctx, `SELECT current_setting('application_name')`).Scan(&name); err != nil {
		return nil, fmt.Errorf("eventstore: read lease: %w", err)
	}
	if name == "" {
		return nil, errors.New("eventstore: read lease: the sessions have no application_name (open the database with eventstore.DSN)")
	}
	return &ReadLease{store: s, name: name, logger: logger, now: time.Now}, nil
}

// Head returns the last event committed before the call, and true, while
// the lease is trusted: the later of the tip read when the lease was taken
// and this store's last append. Otherwise it returns false, and the caller
// asks the database (Store.Tip).
func (l *ReadLease) Head() (Cursor, bool) {
	l.mu.Lock()
	trusted, epoch := l.trusted, l.epoch
	l.mu.Unlock()
	if !l.now().Before(trusted) {
		return Cursor{}, false
	}
	if own := l.store.own.get(); own.After(epoch) {
		return own, true
	}
	return epoch, true
}

// Holds reports whether the lease is trusted now.
func (l *ReadLease) Holds() bool {
	_, ok := l.Head()
	return ok
}

// Run renews the lease every LeaseRenewal until ctx ends, then gives it up.
// A renewal that fails leaves the lease to lapse; Head stops answering in
// time by itself.
func (l *ReadLease) Run(ctx context.Context) {
	t := time.NewTicker(LeaseRenewal)
	defer t.Stop()
	held, failing := false, false
	for n := 0; ; n++ {
		err := l.renew(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			l.logger.Warn("read lease: cannot renew; reads ask the database for the tip of the log until it can", "err", err)
		case err == nil && n%120 == 0:
			err = l.forget(ctx)
		}
		failing = err != nil
		if now := l.Holds(); now != held {
			held = now
			if held {
				l.logger.Info("read lease taken: this instance runs alone; reads need no round trip to find the tip of the log")
			} else {
				l.logger.Info("read lease given up or lapsed: reads ask the database for the tip of the log")
			}
		}
		select {
		case <-ctx.Done():
			l.release()
			return
		case <-t.C:
		}
	}
}

// renew says this instance is running, extends the lease it holds while no
// other instance runs, and takes the lease when no one holds it and no
// other instance runs.
//
// Extending a lease that has not lapsed needs nothing more: no other
// writer can have committed meanwhile. Taking it waits for every writer
// that checked for a lease before (the advisory lock), then reads the tip
// of the log: every event committed before the lease was taken is at or
// before that tip, and every one committed afterwards, until the lease
// lapses, is this store's.
func (l *ReadLease) renew(ctx context.Context) error {
	asked := l.now()
	ctx, cancel := context.WithTimeout(ctx, LeaseRenewal)
	defer cancel()
	// A lease is extended only while it holds, never shortened (its holder
	// trusts it until it lapses), and not extended once another instance
	// runs.
	var extended, alone bool
	err := l.store.db.QueryRowContext(ctx, `
		WITH alone AS (SELECT NOT EXISTS (`+othersRunning+`) AS alone)
		INSERT INTO read_leases AS l (instance, seen_until)
		VALUES ($1, clock_timestamp() + make_interval(secs => $2))
		ON CONFLICT (instance) DO UPDATE SET seen_until = excluded.seen_until,
		       holds_until = CASE WHEN (SELECT alone FROM alone) AND l.holds_until > clock_timestamp()
		                          THEN clock_timestamp() + make_interval(secs => $3) ELSE l.holds_until END
		RETURNING coalesce(holds_until > clock_timestamp(), false), (SELECT alone FROM alone)`,
		l.name, leasePresence.Seconds(), LeaseTerm.Seconds()).Scan(&extended, &alone)
	if err != nil {
		return fmt.Errorf("eventstore: renew the read lease: %w", err)
	}
	switch {
	case !alone:
		// Another instance runs: a lease held already stays trusted until
		// it lapses.
		return nil
	case extended && l.now().Before(l.trustedUntil()):
		// Seamless: the extension committed while the lease it extends
		// was trusted, so before it lapsed, and no other writer came in.
		l.trust(asked.Add(LeaseTerm-LeaseMargin), nil)
		return nil
	}
	return l.take(ctx, asked)
}

// take takes the lease when no one holds it and no other instance runs,
// then starts an epoch at the tip of the log.
func (l *ReadLease) take(ctx context.Context, asked time.Time) error {
	var taken bool
	err := l.store.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(leaseLockKey)); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `
			UPDATE read_leases SET holds_until = clock_timestamp() + make_interval(secs => $2)
			 WHERE instance = $1 AND NOT EXISTS (`+othersRunning+`)
			RETURNING true`, l.name, LeaseTerm.Seconds()).Scan(&taken)
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil // another instance came meanwhile
	case err != nil:
		return fmt.Errorf("eventstore: take the read lease: %w", err)
	}
	tip, err := l.store.Tip(ctx)
	if err != nil {
		return err // held but not trusted: the next renewal takes it anew
	}
	l.trust(asked.Add(LeaseTerm-LeaseMargin), &tip)
	return nil
}

// trustedUntil is when the lease stops being trusted.
func (l *ReadLease) trustedUntil() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.trusted
}

// trust trusts the lease until then, from a new epoch when one is given.
func (l *ReadLease) trust(until time.Time, epoch *Cursor) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if epoch != nil {
		l.epoch = *epoch
	}
	l.trusted = until
}

// release stops trusting the lease, then gives it up, so that another
// writer need not wait for it to lapse.
func (l *ReadLease) release() {
	l.trust(time.Time{}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, _ = l.store.db.ExecContext(ctx, `DELETE FROM read_leases WHERE instance = $1`, l.name)
}

// forget deletes the rows of instances gone for an hour or more.
func (l *ReadLease) forget(ctx context.Context) error {
	_, err := l.store.db.ExecContext(ctx, `DELETE FROM read_leases
		WHERE seen_until < clock_timestamp() - interval '1 hour'
		  AND (holds_until IS NULL OR holds_until < clock_timestamp())`)
	return err
}
