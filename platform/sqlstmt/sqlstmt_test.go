package sqlstmt_test

import (
	"testing"

	"github.com/engramhq/engram/platform/sqlstmt"
	"github.com/engramhq/engram/test/pgtest"
)

// Statements are prepared once and reused; past the bound, queries run as
// they are, with the same answers; a query the database refuses gives its
// error either way.
func TestCachePreparesOnceWithinItsBound(t *testing.T) {
	pgtest.SkipIfShort(t)
	db := pgtest.New(t)
	c := sqlstmt.New(db, 2)
	ctx := t.Context()

	first, err := c.Get(ctx, `SELECT $1::int + 1`)
	if err != nil || first == nil {
		t.Fatalf("Get = %v, %v; want a statement", first, err)
	}
	again, err := c.Get(ctx, `SELECT $1::int + 1`)
	if err != nil || again != first {
		t.Fatalf("second Get = %p, %v; want the same statement %p", again, err, first)
	}
	var n int
	if err := c.QueryRowContext(ctx, `SELECT $1::int * 2`, 21).Scan(&n); err != nil || n != 42 {
		t.Fatalf("prepared query = %d, %v; want 42", n, err)
	}
	if c.Len() != 2 {
		t.Fatalf("Len = %d, want 2", c.Len())
	}
	// Full: the third text is not prepared, and runs all the same.
	if st, err := c.Get(ctx, `SELECT $1::int - 1`); st != nil || err != nil {
		t.Fatalf("Get beyond the bound = %v, %v; want nil, nil", st, err)
	}
	if err := c.QueryRowContext(ctx, `SELECT $1::int - 1`, 43).Scan(&n); err != nil || n != 42 {
		t.Fatalf("query beyond the bound = %d, %v; want 42", n, err)
	}
	if c.Len() != 2 {
		t.Fatalf("Len = %d after a query beyond the bound, want 2", c.Len())
	}
	// A statement the database refuses is not kept, and its error shows.
	if _, err := sqlstmt.New(db, 0).ExecContext(ctx, `SELECT FROM no_such_table WHERE $1`, true); err == nil {
		t.Fatal("a query of a missing table succeeded")
	}
	rows, err := c.QueryContext(ctx, `SELECT generate_series(1, $1::int)`, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	count := 0
	for rows.Next() {
		count++
	}
	if err := rows.Err(); err != nil || count != 3 {
		t.Fatalf("rows = %d, %v; want 3", count, err)
	}
}
