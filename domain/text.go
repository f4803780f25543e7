package domain

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits shared by every aggregate.
const (
	// MaxIDBytes is the longest identifier an aggregate accepts.
	MaxIDBytes = 128
	// MaxSecretBytes is the longest stored secret (a password, token or key hash).
	MaxSecretBytes = 1024
)

// TextProblem returns why s cannot be stored as text, or "" when it can.
// Text must be valid UTF-8 and must not contain NUL characters, which
// PostgreSQL jsonb cannot store.
func TextProblem(s string) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "must not contain NUL characters"
	}
	return ""
}

// Text checks a free-text field and returns it trimmed of surrounding white
// space. Its length is counted in runes after trimming and must lie between
// minRunes and maxRunes; a minimum of 1 makes the field required.
func (v *Validation) Text(field, value string, minRunes, maxRunes int) string {
	if p := TextProblem(value); p != "" {
		v.Add(field, "%s", p)
		return strings.TrimSpace(value)
	}
	t := strings.TrimSpace(value)
	n := utf8.RuneCountInString(t)
	switch {
	case n == 0 && minRunes > 0:
		v.Add(field, "is required")
	case n < minRunes:
		v.Add(field, "must be at least %d characters", minRunes)
	case n > maxRunes:
		v.Add(field, "must be at most %d characters", maxRunes)
	}
	return t
}

// ID checks an identifier: required, at most MaxIDBytes bytes, valid UTF-8,
// and free of white space and control characters (identifiers become part of
// stream names such as "conversation-<id>"). It reports whether id is valid.
func (v *Validation) ID(field, id string) bool {
	if !v.opaque(field, id, MaxIDBytes) {
		return false
	}
	if strings.IndexFunc(id, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		v.Add(field, "must not contain white space or control characters")
		return false
	}
	return true
}

// Secret checks an opaque secret such as a password hash or a token hash:
// required, at most MaxSecretBytes bytes, valid UTF-8 and without NUL
// characters. Messages never repeat the value. It reports whether s is valid.
func (v *Validation) Secret(field, s string) bool {
	return v.opaque(field, s, MaxSecretBytes)
}

// opaque checks a value that is stored as given: required, at most maxBytes
// bytes, and storable as text (see TextProblem). It reports whether s is valid.
func (v *Validation) opaque(field, s string, maxBytes int) bool {
	switch {
	case s == "":
		v.Add(field, "is required")
	case len(s) > maxBytes:
		v.Add(field, "must be at most %d bytes", maxBytes)
	case TextProblem(s) != "":
		v.Add(field, "%s", TextProblem(s))
	default:
		return true
	}
	return false
}

// ChangedText checks the new value of a free-text field of an update (see
// Text) and returns it when it differs from current. It returns nil when
// value is nil (the field is left unchanged) or equals current once trimmed.
func (v *Validation) ChangedText(field string, value *string, current string, minRunes, maxRunes int) *string {
	if value == nil {
		return nil
	}
	t := v.Text(field, *value, minRunes, maxRunes)
	if t == current {
		return nil
	}
	return &t
}

// OneOf checks that value is one of allowed and reports whether it is.
func (v *Validation) OneOf(field, value string, allowed ...string) bool {
	if slices.Contains(allowed, value) {
		return true
	}
	v.Add(field, "must be one of: %s", strings.Join(allowed, ", "))
	return false
}
