package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/domain"
)

// maxJSONDepth bounds the nesting of request bodies.
const maxJSONDepth = 32

// msgMalformed marks validation errors of the body's form (not JSON, wrong
// types, unknown fields): they are answered with 400 rather than 422.
const msgMalformed = "malformed request body"

// msgUnsupportedMediaType marks a body sent as another media type than
// JSON: answered with 415.
const msgUnsupportedMediaType = "unsupported media type"

func malformed(f domain.FieldError) error {
	return &domain.Error{Code: domain.CodeInvalid, Message: msgMalformed, Fields: []domain.FieldError{f}}
}

// decodeBody strictly decodes a JSON request body into dst: the body must be
// one JSON object of known fields with the right types. Problems are reported
// as validation errors naming the field ("body" for the body as a whole); a
// body sent as another media type is refused with 415.
func decodeBody(c echo.Context, dst any) error {
	ct := c.Request().Header.Get(echo.HeaderContentType)
	if ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return &domain.Error{Code: domain.CodeInvalid, Message: msgUnsupportedMediaType,
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
	setRawBody(c, raw)
	return decodeJSON(raw, dst)
}

// DecodeBody strictly decodes a request's JSON body into dst, for the routes
// that other transports register: problems are validation errors naming the
// field, answered with 400 (415 for a body not sent as JSON; see
// decodeBody).
func DecodeBody(c echo.Context, dst any) error { return decodeBody(c, dst) }

// decodeJSON is decodeBody's pure part.
func decodeJSON(raw []byte, dst any) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return malformed(domain.FieldError{Field: "body", Message: "is empty; send a JSON object"})
	}
	if depth(raw) > maxJSONDepth {
		return malformed(domain.FieldError{Field: "body", Message: fmt.Sprintf("nests deeper than %d levels", maxJSONDepth)})
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

// optionalObject holds a JSON field that must be an object when present.
// A present null is "null".
func objectField(field string, raw json.RawMessage) error {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || t[0] == '{' {
		return nil
	}
	return invalid(domain.FieldError{Field: field, Message: "must be a JSON object"})
}

const rawBodyKey = "engram.raw_body"

func setRawBody(c echo.Context, raw []byte) { c.Set(rawBodyKey, raw) }

func rawBody(c echo.Context) []byte {
	b, _ := c.Get(rawBodyKey).([]byte)
	return b
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
