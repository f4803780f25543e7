package request

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/domain"
)

// maxJSONDepth bounds the nesting of request bodies.
const maxJSONDepth = 32

// MalformedBody is the message of validation errors of the body's form (not
// JSON, wrong types, unknown fields): they are answered with 400 rather than
// 422.
const MalformedBody = "malformed request body"

// UnsupportedMediaType is the message of the validation error of a body
// sent as another media type than JSON: answered with 415.
const UnsupportedMediaType = "unsupported media type"

func malformed(f domain.FieldError) error {
	return &domain.Error{Code: domain.CodeInvalid, Message: MalformedBody, Fields: []domain.FieldError{f}}
}

func invalid(fields ...domain.FieldError) error {
	return &domain.Error{Code: domain.CodeInvalid, Message: "validation failed", Fields: fields}
}

// DecodeBody strictly decodes a JSON request body into dst: the body must be
// one JSON object of known fields with the right types. Problems are
// validation errors naming the field ("body" for the body as a whole), with
// the message MalformedBody for a body of the wrong form; a body sent as
// another media type is refused with the message UnsupportedMediaType. The
// body read stays available to RawBody.
func DecodeBody(c echo.Context, dst any) error {
	ct := c.Request().Header.Get(echo.HeaderContentType)
	if ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return &domain.Error{Code: domain.CodeInvalid, Message: UnsupportedMediaType,
			Fields: []domain.FieldError{{Field: "Content-Type", Message: "must be application/json"}}}
	}
	raw, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("the body exceeds %d bytes", tooLarge.Limit))
		}
		return malformed(domain.FieldError{Field: "body", Message: "could not be read"})
	}
	c.Set(rawBodyKey, raw)
	return Decode(raw, dst)
}

// unfaithfulValues names every value of the JSON document raw that
// encoding/json would not keep as sent: strings holding invalid UTF-8 or a
// lone UTF-16 surrogate escape (which it silently replaces with U+FFFD, so
// that two different byte strings would become one), and numbers beyond the
// range of float64 (which no read model or hash can hold). raw must be valid
// JSON. Fields are named by their path, e.g. "metadata.tags[2]".
func unfaithfulValues(raw []byte) []domain.FieldError {
	type frame struct {
		object  bool
		wantKey bool
		key     string
		index   int
	}
	var stack []*frame
	path := func() string {
		var b strings.Builder
		for _, f := range stack {
			if f.object {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.key)
			} else {
				b.WriteString("[" + strconv.Itoa(f.index) + "]")
			}
		}
		if b.Len() == 0 {
			return "body"
		}
		return b.String()
	}
	valueDone := func() {
		if len(stack) == 0 {
			return
		}
		if top := stack[len(stack)-1]; top.object {
			top.wantKey = true
		} else {
			top.index++
		}
	}
	var fields []domain.FieldError
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var start int64
	for {
		tok, err := dec.Token()
		if err != nil {
			return fields // io.EOF: the end; anything else is reported by the decoder
		}
		end := dec.InputOffset()
		literal := raw[start:end]
		start = end
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				stack = append(stack, &frame{object: t == '{', wantKey: t == '{'})
			default:
				stack = stack[:len(stack)-1]
				valueDone()
			}
		case string:
			if top := len(stack) - 1; top >= 0 && stack[top].object && stack[top].wantKey {
				stack[top].key, stack[top].wantKey = t, false
				if !faithfulString(literal) {
					fields = append(fields, domain.FieldError{Field: path(), Message: "has a name that is not valid UTF-8"})
				}
				continue
			}
			if !faithfulString(literal) {
				fields = append(fields, domain.FieldError{Field: path(), Message: "must be valid UTF-8 (no invalid bytes or lone surrogates)"})
			}
			valueDone()
		case json.Number:
			if _, err := strconv.ParseFloat(string(t), 64); err != nil {
				fields = append(fields, domain.FieldError{Field: path(), Message: "is a number out of range (beyond ±1.797e308)"})
			}
			valueDone()
		default:
			valueDone()
		}
	}
}

// faithfulString reports whether the JSON string literal in b (possibly
// preceded by a separator and white space) is valid UTF-8 and escapes no
// lone UTF-16 surrogate.
func faithfulString(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	i := bytes.IndexByte(b, '"')
	if i < 0 {
		return true
	}
	s := b[i+1:]
	pendingHigh := false
	for j := 0; j < len(s); j++ {
		if s[j] != '\\' {
			if pendingHigh {
				return false
			}
			continue
		}
		j++
		if j >= len(s) {
			break
		}
		if s[j] != 'u' || j+4 >= len(s) {
			if pendingHigh {
				return false
			}
			continue
		}
		r, err := strconv.ParseUint(string(s[j+1:j+5]), 16, 32)
		j += 4
		if err != nil {
			return false
		}
		switch {
		case r >= 0xD800 && r < 0xDC00:
			if pendingHigh {
				return false
			}
			pendingHigh = true
		case r >= 0xDC00 && r < 0xE000:
			if !pendingHigh {
				return false
			}
			pendingHigh = false
		default:
			if pendingHigh {
				return false
			}
		}
	}
	return !pendingHigh
}

// Decode is DecodeBody's pure part: it decodes the JSON document raw into
// dst as strictly.
func Decode(raw []byte, dst any) error {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return malformed(domain.FieldError{Field: "body", Message: "is empty; send a JSON object"})
	}
	if string(trimmed) == "null" {
		return malformed(domain.FieldError{Field: "body", Message: "is null; send a JSON object"})
	}
	if depth(raw) > maxJSONDepth {
		return malformed(domain.FieldError{Field: "body", Message: fmt.Sprintf("nests deeper than %d levels", maxJSONDepth)})
	}
	if json.Valid(raw) {
		if fields := unfaithfulValues(raw); len(fields) > 0 {
			return invalid(fields...)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return malformed(jsonProblem(err))
	}
	if dec.More() {
		return malformed(domain.FieldError{Field: "body", Message: "holds more than one JSON value"})
	}
	if _, err := dec.Token(); err != io.EOF {
		return malformed(domain.FieldError{Field: "body", Message: "holds more than one JSON value"})
	}
	return nil
}

func jsonProblem(err error) domain.FieldError {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return domain.FieldError{Field: "body", Message: fmt.Sprintf("is not valid JSON (at byte %d)", syntax.Offset)}
	case errors.As(err, &typ):
		if typ.Field == "" {
			return domain.FieldError{Field: "body", Message: "must be a JSON object"}
		}
		return domain.FieldError{Field: typ.Field, Message: "must be a " + jsonType(typ.Type.Kind().String())}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return domain.FieldError{Field: "body", Message: "is truncated JSON"}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		if name == "" {
			return domain.FieldError{Field: "body", Message: "has a field with an empty name"}
		}
		return domain.FieldError{Field: name, Message: "is not a known field"}
	}
	return domain.FieldError{Field: "body", Message: "is not valid JSON"}
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "int", "int64", "int32", "float64":
		return "number"
	case "bool":
		return "boolean"
	case "slice":
		return "array"
	case "map", "struct":
		return "JSON object"
	}
	return "value of another type"
}

// depth returns the deepest nesting of objects and arrays in raw, ignoring
// brackets inside strings.
func depth(raw []byte) int {
	d, maxD := 0, 0
	inString, escaped := false, false
	for _, b := range raw {
		switch {
		case escaped:
			escaped = false
		case inString && b == '\\':
			escaped = true
		case b == '"':
			inString = !inString
		case inString:
		case b == '{' || b == '[':
			d++
			if d > maxD {
				maxD = d
			}
		case b == '}' || b == ']':
			d--
		}
	}
	return maxD
}

const rawBodyKey = "engram.raw_body"

// RawBody returns the body DecodeBody read (nil before).
func RawBody(c echo.Context) []byte {
	b, _ := c.Get(rawBodyKey).([]byte)
	return b
}
