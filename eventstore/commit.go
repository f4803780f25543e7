package eventstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
)

// Group commit: appends that arrive while others are being written wait for
// a free committer and then go to the database together.
//
// A committer that is idle takes an append at once, so a lone append waits
// for nothing. Under load every committer is busy; appends queue, and the
// next committer to finish takes the whole queue (up to a group's size) in
// one go. The wait of a queued append is therefore bounded by one group's
// write, and the number of transactions — and of WAL flushes — grows with
// the number of committers, not with the number of appends.
//
// A group of plain appends (no claims, no idempotency keys) is one multi-row
// INSERT across their streams: one statement, one round trip, one commit. A
// group with claims or idempotency keys is one transaction in which each
// such append runs under its own savepoint. Either way an append that
// clashes (ErrConcurrency, ErrClaimed, ErrIdempotencyKeyUsed) fails alone:
// the statement that cannot tell which append clashed is rolled back and
// its appends are written one by one.
//
// A guarded append (WithGuard) stays in its group's statement: each row
// carries its append's guard, and the statement inserts the rows of the
// appends whose guard holds. One whose guard failed fails alone.
//
// Hash chains and expected versions are untouched by grouping: every append
// is prepared (hashed against its stream's head) before it is queued, and
// the unique (stream_id, stream_version) key still decides who wins. All
// appends of a group share one transaction id, so the commit order that
// gap-safe readers follow — (tx_id, global_position) — keeps each stream's
// versions in order: an append is only prepared once the version it
// expects is committed, hence before its group takes a transaction id.

// Defaults of the group commit.
const (
	// defaultCommitters is how many groups may be written at once. Fewer
	// committers make larger groups and fewer WAL flushes: with the
	// reactions' appends grouped too, 2 reached 1,000 muted posts/s where
	// 4 reached 830–910 (docs/benchmarks.md).
	defaultCommitters = 2
	// defaultGroupSize bounds the appends of one group (and the size of its
	// statement).
	defaultGroupSize = 256
	// groupTimeout bounds the write of one group, whose context is no
	// single caller's.
	groupTimeout = 30 * time.Second
)

// WithGroupCommit sets how many groups of appends may be written at once
// (committers ≥ 1) and how many appends a group holds at most (size ≥ 1).
// One committer and groups of one write every append alone.
func WithGroupCommit(committers, size int) Option {
	return func(s *Store) {
		s.committer = newCommitter(s, max(committers, 1), max(size, 1))
	}
}

// committer queues appends and writes them in groups.
type committer struct {
	store *Store
	max   int // committers at most
	size  int // appends per group at most

	mu     sync.Mutex
	queue  []*pendingAppend
	active int
}

func newCommitter(s *Store, committers, size int) *committer {
	return &committer{store: s, max: committers, size: size}
}

// commit writes p, alone or in a group, and returns its outcome. A caller
// whose context ends while p is still queued gets the context's error and
// p is never written.
func (c *committer) commit(ctx context.Context, p *pendingAppend) error {
	p.done = make(chan struct{})
	c.mu.Lock()
	c.queue = append(c.queue, p)
	if c.active < c.max {
		c.active++
		group := c.takeLocked()
		c.mu.Unlock()
		go c.run(group)
	} else {
		c.mu.Unlock()
	}
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		if c.remove(p) {
			return ctx.Err()
		}
		<-p.done // already being written: its outcome is the truth
		return p.err
	}
}

// takeLocked removes the next group from the queue.
func (c *committer) takeLocked() []*pendingAppend {
	n := min(len(c.queue), c.size)
	group := make([]*pendingAppend, n)
	copy(group, c.queue)
	c.queue = append(c.queue[:0], c.queue[n:]...)
	return group
}

// remove takes p out of the queue, reporting whether it was still there.
func (c *committer) remove(p *pendingAppend) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, q := range c.queue {
		if q == p {
			c.queue = append(c.queue[:i], c.queue[i+1:]...)
			return true
		}
	}
	return false
}

// run writes group, then every group queued meanwhile, until the queue is
// empty.
func (c *committer) run(group []*pendingAppend) {
	for {
		c.write(group)
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.active--
			c.mu.Unlock()
			return
		}
		group = c.takeLocked()
		c.mu.Unlock()
	}
}

// write writes a group and sets every append's outcome.
func (c *committer) write(group []*pendingAppend) {
	live := group[:0:0]
	for _, p := range group {
		if err := p.ctx.Err(); err != nil {
			p.finish(err)
			continue
		}
		live = append(live, p)
	}
	switch len(live) {
	case 0:
		return
	case 1:
		p := live[0]
		p.finish(c.store.writeAlone(p.ctx, p))
		return
	}
	// The group outlives any one caller: it is bounded on its own.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(live[0].ctx), groupTimeout)
	defer cancel()
	outcomes, err := c.store.writeGroup(ctx, live)
	if err != nil {
		// Nothing of the group was committed: each append goes alone.
		for _, p := range live {
			p.finish(c.store.writeAlone(p.ctx, p))
		}
		return
	}
	for i, p := range live {
		p.finish(outcomes[i])
	}
}

func (p *pendingAppend) finish(err error) {
	p.err = err
	close(p.done)
}

// errGroupCommit marks a failure of the commit itself: its outcome is
// unknown, so the group's appends are not written again.
var errGroupCommit = errors.New("eventstore: group commit")

// writeGroup writes the appends of a group in one transaction and returns
// each one's outcome. An error means the transaction did not commit.
func (s *Store) writeGroup(ctx context.Context, group []*pendingAppend) ([]error, error) {
	var plain, special []int
	for i, p := range group {
		if p.special() {
			special = append(special, i)
		} else {
			plain = append(plain, i)
		}
	}
	if len(special) == 0 {
		// One statement is one transaction: one round trip for the group.
		return s.insert(ctx, nil, group)
	}
	outcomes := make([]error, len(group))
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("eventstore: begin: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = tx.Rollback()
		}
	}()
	for _, i := range special {
		if outcomes[i], err = savepoint(ctx, tx, "append", func() error { return s.writeSpecial(ctx, tx, group[i]) }); err != nil {
			return nil, err
		}
	}
	if len(plain) > 0 {
		plainGroup := make([]*pendingAppend, len(plain))
		for k, i := range plain {
			plainGroup[k] = group[i]
		}
		var plainOutcomes []error
		clash, err := savepoint(ctx, tx, "plain", func() (err error) {
			plainOutcomes, err = s.insert(ctx, tx, plainGroup)
			return err
		})
		if err != nil {
			return nil, err
		}
		for k, i := range plain {
			if clash == nil {
				outcomes[i] = plainOutcomes[k]
				continue
			}
			// One of them clashed: each tries again on its own.
			p := group[i]
			if outcomes[i], err = savepoint(ctx, tx, "append", func() error { return s.insertOne(ctx, tx, p) }); err != nil {
				return nil, err
			}
		}
	}
	if err := tx.Commit(); err != nil {
		committed = true // unknown outcome: never written twice
		err = fmt.Errorf("%w: %w", errGroupCommit, mapAppendError(err))
		for i := range outcomes {
			outcomes[i] = err
		}
		return outcomes, nil
	}
	committed = true
	return outcomes, nil
}

// savepoint runs fn under a savepoint of tx. An expected refusal of fn
// (a clash, a claim held, a key used) rolls back to the savepoint and is
// returned as the outcome; any other failure is returned as err and dooms
// the transaction.
func savepoint(ctx context.Context, tx *sqlx.Tx, name string, fn func() error) (outcome, err error) {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT "+name); err != nil {
		return nil, fmt.Errorf("eventstore: savepoint: %w", err)
	}
	if ferr := fn(); ferr != nil {
		if !isRefusal(ferr) {
			return nil, ferr
		}
		if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+name); err != nil {
			return nil, fmt.Errorf("eventstore: rollback to savepoint: %w", err)
		}
		return ferr, nil
	}
	if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT "+name); err != nil {
		return nil, fmt.Errorf("eventstore: release savepoint: %w", err)
	}
	return nil, nil
}

// isRefusal reports whether err is an append's own refusal, which fails
// that append and no other.
func isRefusal(err error) bool {
	return errors.Is(err, ErrConcurrency) || errors.Is(err, ErrClaimed) || errors.Is(err, ErrIdempotencyKeyUsed) ||
		errors.Is(err, ErrGuardChanged)
}

// PendingAppends returns how many appends wait for a committer: zero when
// the database keeps up, and the depth of the group commit's queue when it
// does not.
func (s *Store) PendingAppends() int {
	c := s.committer
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue)
}
