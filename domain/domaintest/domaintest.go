// Package domaintest holds what the aggregates' given-events → when-command
// → then-events-or-error tests share, the checks that every aggregate's
// events survive being stored and loaded again, and the check of a
// validation error that every package's tests use.
package domaintest

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/engramhq/engram/domain"
)

// DecodeFunc is the Decode function of an aggregate package.
type DecodeFunc func(eventType string, schemaVersion int, data []byte) (domain.Event, error)

// CheckOutcome fails t unless err has the given code (""/nil for success),
// a CodeInvalid error names exactly fields (in order), and the recorded
// events got equal want.
func CheckOutcome(t testing.TB, err error, code string, fields []string, got, want []domain.Event) {
	t.Helper()
	if gotCode := domain.ErrorCode(err); gotCode != code {
		t.Fatalf("error code = %q (%v), want %q", gotCode, err, code)
	}
	if code == domain.CodeInvalid {
		if names := InvalidFields(t, err); !slices.Equal(names, fields) {
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

// InvalidFields fails t unless err is a domain error of CodeInvalid, and
// returns the fields it names, in the order it names them.
func InvalidFields(t testing.TB, err error) []string {
	t.Helper()
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != domain.CodeInvalid {
		t.Fatalf("error = %v, want a validation error", err)
	}
	var names []string
	for _, f := range de.Fields {
		names = append(names, f.Field)
	}
	return names
}

// Case is one test of a command on an aggregate of type A: given the events
// already applied, when the command runs, then it records the events Then,
// or fails with Code (and, for CodeInvalid, exactly the fields Fields).
type Case[A domain.Aggregate] struct {
	Name   string
	Given  []domain.Event
	When   func(A) error
	Then   []domain.Event
	Code   string
	Fields []string
}

// Run runs every case on a new aggregate (from newEmpty) loaded with the
// case's given events, checks its outcome with CheckOutcome and that the
// aggregate's version counts the given and the recorded events.
func Run[A domain.Aggregate](t *testing.T, newEmpty func() A, cases []Case[A]) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			a := Load(newEmpty(), c.Given...)
			err := c.When(a)
			CheckOutcome(t, err, c.Code, c.Fields, a.Pending(), c.Then)
			if a.Version() != len(c.Given)+len(c.Then) {
				t.Fatalf("version = %d, want %d", a.Version(), len(c.Given)+len(c.Then))
			}
		})
	}
}

// Load applies events to a, as loading its stream does, and returns it.
func Load[A domain.Aggregate](a A, events ...domain.Event) A {
	for _, e := range events {
		a.Apply(e)
	}
	return a
}

// Created returns the events recorded by a constructor that returned a and
// err: none when it failed (and then a must be nil).
func Created[A domain.Aggregate](t testing.TB, a A, err error) []domain.Event {
	t.Helper()
	if err != nil {
		if !reflect.ValueOf(a).IsNil() {
			t.Fatalf("an aggregate and an error: %v", err)
		}
		return nil
	}
	if reflect.ValueOf(a).IsNil() {
		t.Fatal("no aggregate and no error")
	}
	if a.Version() != 1 || len(a.Pending()) != 1 {
		t.Fatalf("created at version %d with %d pending events, want 1 and 1", a.Version(), len(a.Pending()))
	}
	return a.Pending()
}

// RoundTrip fails t unless every event, stored as its JSON with its type
// and schema version, decodes to an equal event. Events must already be in
// the form recording gives them (canonical JSON objects, times in UTC).
func RoundTrip(t testing.TB, decode DecodeFunc, events ...domain.Event) {
	t.Helper()
	for _, e := range events {
		got := stored(t, decode, e)
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("Decode(%s) = %#v, want %#v", e.EventType(), got, e)
		}
	}
}

// Unknown fails t unless decode refuses an event type it does not know and
// a schema version of knownType it does not read, with domain.ErrUnknownEvent.
func Unknown(t testing.TB, decode DecodeFunc, knownType string) {
	t.Helper()
	if _, err := decode(knownType+"_never", 1, []byte(`{}`)); !errors.Is(err, domain.ErrUnknownEvent) {
		t.Fatalf("unknown type: %v, want ErrUnknownEvent", err)
	}
	for _, v := range []int{0, 99} {
		if _, err := decode(knownType, v, []byte(`{}`)); !errors.Is(err, domain.ErrUnknownEvent) {
			t.Fatalf("%s at schema version %d: %v, want ErrUnknownEvent", knownType, v, err)
		}
	}
}

// Reload fails t unless a, once its pending events are stored and loaded
// into empty with decode, equals the loaded aggregate; it clears a's pending
// events and returns the loaded aggregate.
func Reload[A domain.Aggregate](t testing.TB, a, empty A, decode DecodeFunc) A {
	t.Helper()
	pending := a.Pending()
	for _, e := range pending {
		empty.Apply(stored(t, decode, e))
	}
	if empty.Version() != a.Version() || len(empty.Pending()) != 0 {
		t.Fatalf("loaded version %d with %d pending, want %d and 0", empty.Version(), len(empty.Pending()), a.Version())
	}
	a.ClearPending()
	if len(a.Pending()) != 0 {
		t.Fatal("ClearPending kept events")
	}
	if !reflect.DeepEqual(a, empty) {
		t.Fatalf("loaded state differs:\n%#v\n%#v", a, empty)
	}
	return empty
}

// stored returns e as loading it from the event store gives it back.
func stored(t testing.TB, decode DecodeFunc, e domain.Event) domain.Event {
	t.Helper()
	data, err := json.Marshal(e)
	if err != nil {
		t.Fatalf("encode %s: %v", e.EventType(), err)
	}
	got, err := decode(e.EventType(), domain.SchemaVersion(e), data)
	if err != nil {
		t.Fatalf("Decode(%s): %v", e.EventType(), err)
	}
	return got
}

// StreamID fails t unless streamID, an aggregate package's StreamID, names
// the stream of id "42" "<streamType>-42".
func StreamID(t testing.TB, streamID func(string) string, streamType string) {
	t.Helper()
	if got, want := streamID("42"), streamType+"-42"; got != want {
		t.Fatalf("StreamID(42) = %q, want %q", got, want)
	}
}

// Must fails t at once when err is not nil: for the steps that set a test up.
func Must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
