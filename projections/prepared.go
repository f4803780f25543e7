package projections

import (
	"context"
	"database/sql"

	"github.com/engramhq/engram/platform/sqlstmt"
)

// maxPrepared bounds the statement texts a consumer prepares. The
// projectors' texts are fixed: a few dozen at most.
const maxPrepared = 128

// preparedTx runs the statements of a batch's transaction prepared: parsing
// and planning them was about a third of PostgreSQL's time for them (their
// plans are generic: arrays and ids as parameters). A statement without
// parameters runs as it is, in the simple protocol, which takes several
// statements in one round trip (savepoints).
//
// A read model a rebuild swaps in is a table renamed under the same name:
// PostgreSQL re-plans a prepared statement whose tables changed.
type preparedTx struct {
	tx    *sql.Tx
	stmts *sqlstmt.Cache
}

// prepared returns tx running the batch's statements prepared.
func (c *Projectors) prepared(tx *sql.Tx) preparedTx { return preparedTx{tx: tx, stmts: c.stmts} }

// stmt returns query's prepared statement in the transaction, or nil when
// it is to run as it is.
func (p preparedTx) stmt(ctx context.Context, query string, args []any) *sql.Stmt {
	if len(args) == 0 {
		return nil
	}
	st, err := p.stmts.Get(ctx, query) //nolint:sqlclosecheck // shared, prepared once
	if err != nil || st == nil {
		// Full, or the database refused to prepare it: running it as it
		// is gives the same answer, or the same error.
		return nil
	}
	return p.tx.StmtContext(ctx, st) //nolint:sqlclosecheck // closed with the transaction
}

func (p preparedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := p.stmt(ctx, query, args); st != nil { //nolint:sqlclosecheck // a statement of the transaction: closed with it
		return st.ExecContext(ctx, args...)
	}
	return p.tx.ExecContext(ctx, query, args...)
}

func (p preparedTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := p.stmt(ctx, query, args); st != nil { //nolint:sqlclosecheck // a statement of the transaction: closed with it
		return st.QueryContext(ctx, args...)
	}
	return p.tx.QueryContext(ctx, query, args...)
}

func (p preparedTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := p.stmt(ctx, query, args); st != nil { //nolint:sqlclosecheck // a statement of the transaction: closed with it
		return st.QueryRowContext(ctx, args...)
	}
	return p.tx.QueryRowContext(ctx, query, args...)
}
