package http

import (
	"bytes"
	"encoding/json"
	"io"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/transport/request"
)

// decodeWithObject decodes the request body into req, then refuses the
// member *object of req (the JSON field name) unless it is absent, null or
// an object.
func decodeWithObject(c echo.Context, req any, name string, object *json.RawMessage) error {
	if err := request.DecodeBody(c, req); err != nil {
		return err
	}
	return objectField(name, nullAsAbsent(*object))
}

// objectField refuses a JSON field that is present but not an object.
func objectField(field string, raw json.RawMessage) error {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || t[0] == '{' {
		return nil
	}
	return invalid(domain.FieldError{Field: field, Message: "must be a JSON object"})
}

// nullAsAbsent treats a JSON null like an absent field.
func nullAsAbsent(raw json.RawMessage) json.RawMessage {
	if string(raw) == "null" {
		return nil
	}
	return raw
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
