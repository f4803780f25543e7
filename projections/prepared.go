package projections

import (
	"database/sql"

	"github.com/engramhq/engram/platform/sqlstmt"
)

// maxPrepared bounds the statement texts a consumer prepares. The
// projectors' texts are fixed: a few dozen at most.
const maxPrepared = 128

// prepared returns tx running the batch's statements prepared: parsing and
// planning them was about a third of PostgreSQL's time for them (their
// plans are generic: arrays and ids as parameters). A read model a rebuild
// swaps in is a table renamed under the same name: PostgreSQL plans a
// prepared statement again when its tables change.
func (c *Projectors) prepared(tx *sql.Tx) sqlstmt.Tx { return c.stmts.In(tx) }
