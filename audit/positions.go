package audit

import (
	"fmt"
	"strconv"
	"strings"
)

// PositionRange is the global positions First to Last, both included.
type PositionRange struct {
	First, Last int64
}

// Positions is a set of global positions as sorted, disjoint, non-adjacent
// ranges; its text form is "1-256,300,302-310".
type Positions []PositionRange

// Add adds p, which must be greater than every position already in the set.
func (ps *Positions) Add(p int64) {
	if n := len(*ps); n > 0 && (*ps)[n-1].Last+1 == p {
		(*ps)[n-1].Last = p
		return
	}
	*ps = append(*ps, PositionRange{First: p, Last: p})
}

// Count returns how many positions the set holds.
func (ps Positions) Count() int64 {
	var n int64
	for _, r := range ps {
		n += r.Last - r.First + 1
	}
	return n
}

// First returns the smallest position of a set that is not empty.
func (ps Positions) First() int64 { return ps[0].First }

// Last returns the greatest position of a set that is not empty.
func (ps Positions) Last() int64 { return ps[len(ps)-1].Last }

// each calls fn for every position in order, until it returns false.
func (ps Positions) each(fn func(int64) bool) {
	for _, r := range ps {
		for p := r.First; p <= r.Last; p++ {
			if !fn(p) {
				return
			}
		}
	}
}

// String returns the text form, e.g. "1-256,300".
func (ps Positions) String() string {
	var b strings.Builder
	for i, r := range ps {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(r.First, 10))
		if r.Last != r.First {
			b.WriteByte('-')
			b.WriteString(strconv.FormatInt(r.Last, 10))
		}
	}
	return b.String()
}

// MarshalText returns the text form.
func (ps Positions) MarshalText() ([]byte, error) { return []byte(ps.String()), nil }

// UnmarshalText reads the text form, which must be canonical: positive,
// increasing, disjoint and non-adjacent ranges, as String writes them.
func (ps *Positions) UnmarshalText(text []byte) error {
	parsed, err := ParsePositions(string(text))
	if err != nil {
		return err
	}
	*ps = parsed
	return nil
}

// ParsePositions reads the text form of a set of positions; it accepts only
// the canonical form String writes.
func ParsePositions(s string) (Positions, error) {
	var ps Positions
	if s == "" {
		return ps, nil
	}
	for _, part := range strings.Split(s, ",") {
		first, last, isRange := strings.Cut(part, "-")
		f, err := strconv.ParseInt(first, 10, 64)
		if err != nil || f < 1 || strconv.FormatInt(f, 10) != first {
			return nil, fmt.Errorf("positions %q: %q is not a position", s, first)
		}
		l := f
		if isRange {
			if l, err = strconv.ParseInt(last, 10, 64); err != nil || l <= f || strconv.FormatInt(l, 10) != last {
				return nil, fmt.Errorf("positions %q: %q is not a range", s, part)
			}
		}
		if n := len(ps); n > 0 && f <= ps[n-1].Last+1 {
			return nil, fmt.Errorf("positions %q: ranges must increase and not touch", s)
		}
		ps = append(ps, PositionRange{First: f, Last: l})
	}
	return ps, nil
}
