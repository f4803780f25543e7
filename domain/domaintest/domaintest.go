// Package domaintest holds what the aggregates' given-events → when-command
// → then-events-or-error tests share.
package domaintest

import (
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/engramhq/engram/domain"
)

// CheckOutcome fails t unless err has the given code (""/nil for success),
// a CodeInvalid error names exactly fields (in order), and the recorded
// events got equal want.
func CheckOutcome(t testing.TB, err error, code string, fields []string, got, want []domain.Event) {
	t.Helper()
	if gotCode := domain.ErrorCode(err); gotCode != code {
		t.Fatalf("error code = %q (%v), want %q", gotCode, err, code)
	}
	if code == domain.CodeInvalid {
		var de *domain.Error
		errors.As(err, &de)
		var names []string
		for _, f := range de.Fields {
			names = append(names, f.Field)
		}
		if !slices.Equal(names, fields) {
			t.Fatalf("invalid fields = %v, want %v (%v)", names, fields, err)
		}
	}
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events = %#v, want %#v", got, want)
	}
}
