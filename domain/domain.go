// Package domain holds what every aggregate shares: the Event contract and the
// error vocabulary that the rest of Engram maps to HTTP statuses in one place.
//
// Each aggregate lives in its own subpackage (domain/user, domain/workspace,
// domain/conversation, …) and embeds a Root, which keeps its version and its
// pending events. Aggregates change state only in their Apply switch;
// behaviour methods check the rules and record events. Each package reads
// its stored events back with a Decoder table. Nothing here performs I/O,
// reads a clock or draws random numbers: callers pass identifiers and times in.
package domain

import (
	"errors"
	"fmt"
	"strings"
)

// Event is a fact recorded by an aggregate. Its type name is stable forever
// ("<aggregate>.<past_tense>") and its JSON shape never changes once stored;
// a new shape gets a new schema version and an upcaster.
type Event interface {
	// EventType returns the stable name of the event, e.g. "conversation.message_posted".
	EventType() string
}

// Error codes, mapped to transport statuses in exactly one place.
const (
	CodeInvalid      = "invalid"      // the input breaks a rule (400/422)
	CodeNotFound     = "not_found"    // the thing does not exist or may not be seen (404)
	CodeConflict     = "conflict"     // the state forbids the change (409)
	CodeForbidden    = "forbidden"    // visible, but the actor may not change it (403)
	CodeUnauthorized = "unauthorized" // the actor is not authenticated (401)
)

// Error is a domain error with a machine-readable code and a human message.
type Error struct {
	Code    string
	Message string
	// Fields lists every invalid field when Code is CodeInvalid.
	Fields []FieldError
}

// FieldError names one invalid input field and what is wrong with it.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return e.Message
	}
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return e.Message + " (" + strings.Join(parts, "; ") + ")"
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err if it wraps an *Error, and "" otherwise.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Validation collects every invalid field of one input so that all of them are
// reported at once.
type Validation struct {
	fields []FieldError
}

// Add records that field is invalid for the given reason.
func (v *Validation) Add(field, format string, args ...any) {
	v.fields = append(v.fields, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Check records a problem with field when ok is false.
func (v *Validation) Check(ok bool, field, format string, args ...any) {
	if !ok {
		v.Add(field, format, args...)
	}
}

// Err returns nil when nothing was recorded, and a CodeInvalid *Error listing
// every recorded field otherwise.
func (v *Validation) Err() error {
	if len(v.fields) == 0 {
		return nil
	}
	return &Error{Code: CodeInvalid, Message: "validation failed", Fields: v.fields}
}
