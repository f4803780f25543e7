package queries

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/engramhq/engram/domain"
)

// FuzzDecodeCursor checks the list cursor decoder: it never panics, refuses
// with a validation error of the field "cursor", and whatever it accepts
// has an id and a time and re-encodes to a cursor that decodes to the same
// position.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(timeCursor{T: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), ID: "0b7c1c4e-7a6f-4c55-9b7e-1d2f3a4b5c6d"}))
	for _, s := range []string{"", "e30", "!!", "eyJ0IjoiMjAyNi0wMS0wMlQwMzowNDowNVoiLCJpZCI6IngifQ", "eyJ0Ijoibm8iLCJpZCI6IngifQ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeCursor(s)
		if err != nil {
			var de *domain.Error
			if !errors.As(err, &de) || de.Code != domain.CodeInvalid || len(de.Fields) != 1 || de.Fields[0].Field != "cursor" {
				t.Fatalf("decodeCursor(%q) = %#v", s, err)
			}
			return
		}
		if s == "" {
			if c != nil {
				t.Fatalf("decodeCursor(\"\") = %+v", c)
			}
			return
		}
		if c == nil || c.ID == "" || c.T.IsZero() {
			t.Fatalf("decodeCursor(%q) accepted %+v", s, c)
		}
		back, err := decodeCursor(encodeCursor(*c))
		if err != nil || back.ID != c.ID || !back.T.Equal(c.T) {
			t.Fatalf("cursor %+v of %q does not round-trip: %+v, %v", c, s, back, err)
		}
	})
}

// FuzzParsePosition checks ParsePosition: "" is 0, anything else it
// accepts is a non-negative int64 that strconv reads alike and that
// round-trips through its decimal form.
func FuzzParsePosition(f *testing.F) {
	for _, s := range []string{"", "0", "42", "-1", "+5", "0042", "9223372036854775807", "9223372036854775808", "1e3", " 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParsePosition(s)
		if err != nil {
			if n != 0 {
				t.Fatalf("ParsePosition(%q) refused but returned %d", s, n)
			}
			return
		}
		if s == "" {
			if n != 0 {
				t.Fatalf("ParsePosition(\"\") = %d", n)
			}
			return
		}
		std, serr := strconv.ParseInt(s, 10, 64)
		if n < 0 || serr != nil || std != n {
			t.Fatalf("ParsePosition(%q) = %d (strconv: %d, %v)", s, n, std, serr)
		}
		if m, err := ParsePosition(strconv.FormatInt(n, 10)); err != nil || m != n {
			t.Fatalf("ParsePosition(%q) = %d does not round-trip", s, n)
		}
	})
}
