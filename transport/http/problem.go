package http

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/app"
	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/platform/security"
	"github.com/engramhq/engram/transport/request"
)

// Problem is an RFC 9457 problem details document.
type Problem struct {
	Type      string              `json:"type"`
	Title     string              `json:"title"`
	Status    int                 `json:"status"`
	Detail    string              `json:"detail,omitempty"`
	Instance  string              `json:"instance,omitempty"`
	RequestID string              `json:"request_id,omitempty"`
	Errors    []domain.FieldError `json:"errors,omitempty"`
}

const problemBase = "https://engram.dev/problems/"

// problemFor maps an error to a problem. It is the one place where errors
// become HTTP statuses.
func problemFor(err error, ifMatch bool) (Problem, bool) {
	var de *domain.Error
	var he *echo.HTTPError
	switch {
	case errors.As(err, &de):
		switch de.Code {
		case domain.CodeInvalid:
			status := http.StatusUnprocessableEntity
			switch de.Message {
			case request.MalformedBody:
				status = http.StatusBadRequest
			case request.UnsupportedMediaType:
				status = http.StatusUnsupportedMediaType
			}
			return Problem{Type: problemBase + "validation", Title: "The request is not valid", Status: status,
				Detail: de.Message, Errors: de.Fields}, false
		case domain.CodeNotFound:
			return Problem{Type: problemBase + "not-found", Title: "Not found", Status: http.StatusNotFound, Detail: de.Message}, false
		case domain.CodeConflict:
			return Problem{Type: problemBase + "conflict", Title: "Conflict with the current state", Status: http.StatusConflict, Detail: de.Message}, false
		case domain.CodeForbidden:
			return Problem{Type: problemBase + "forbidden", Title: "Forbidden", Status: http.StatusForbidden, Detail: de.Message}, false
		case domain.CodeUnauthorized:
			return Problem{Type: problemBase + "unauthorized", Title: "Authentication required", Status: http.StatusUnauthorized, Detail: de.Message}, false
		case request.CodeTooManyRequests:
			return Problem{Type: problemBase + "rate-limited", Title: "Too many requests", Status: http.StatusTooManyRequests, Detail: de.Message}, false
		}
	case errors.Is(err, commands.ErrPreconditionFailed):
		return Problem{Type: problemBase + "precondition-failed", Title: "Precondition failed", Status: http.StatusPreconditionFailed,
			Detail: "the resource has changed since the version given in If-Match"}, false
	case errors.Is(err, app.ErrConcurrency):
		if ifMatch {
			return Problem{Type: problemBase + "precondition-failed", Title: "Precondition failed", Status: http.StatusPreconditionFailed,
				Detail: "the resource has changed since the version given in If-Match"}, false
		}
		return Problem{Type: problemBase + "concurrent-change", Title: "Concurrent change", Status: http.StatusConflict,
			Detail: "the resource was changed by another request at the same time; read it again and retry"}, false
	case errors.Is(err, security.ErrBusy):
		return Problem{Type: problemBase + "overloaded", Title: "Service overloaded", Status: http.StatusServiceUnavailable,
			Detail: "too many passwords are being checked on this server right now; retry shortly"}, false
	case errors.Is(err, app.ErrRevocationsUnknown):
		return Problem{Type: problemBase + "unavailable", Title: "Service unavailable", Status: http.StatusServiceUnavailable,
			Detail: "credentials cannot be checked on this server right now (it is not keeping up with revocations); retry shortly"}, false
	case errors.Is(err, app.ErrNotCaughtUp):
		return Problem{Type: problemBase + "not-caught-up", Title: "Read model not caught up", Status: http.StatusServiceUnavailable,
			Detail: err.Error()}, false
	case errors.As(err, &he):
		p := Problem{Type: "about:blank", Title: http.StatusText(he.Code), Status: he.Code}
		if msg, ok := he.Message.(string); ok && msg != http.StatusText(he.Code) {
			p.Detail = msg
		}
		return p, false
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return Problem{Type: problemBase + "unavailable", Title: "Service unavailable", Status: http.StatusServiceUnavailable,
			Detail: "the request could not be completed in time; retry later"}, true
	}
	if isUnavailable(err) {
		return Problem{Type: problemBase + "unavailable", Title: "Service unavailable", Status: http.StatusServiceUnavailable,
			Detail: "the database is unavailable; retry later"}, true
	}
	return Problem{Type: problemBase + "internal", Title: "Internal server error", Status: http.StatusInternalServerError,
		Detail: "something went wrong on our side; the request id identifies it in our logs"}, true
}

// errorHandler is echo's HTTPErrorHandler: every error becomes problem JSON,
// and unexpected ones are logged once, here.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	p, unexpected := problemFor(err, c.Request().Header.Get("If-Match") != "")
	p.Instance = c.Request().URL.Path
	p.RequestID = requestID(c)
	if unexpected {
		s.logger.ErrorContext(c.Request().Context(), "request failed", "request_id", p.RequestID,
			"method", c.Request().Method, "route", c.Path(), "err", err)
	}
	if p.Status == http.StatusServiceUnavailable || p.Status == http.StatusTooManyRequests {
		if c.Response().Header().Get("Retry-After") == "" {
			c.Response().Header().Set("Retry-After", "1")
		}
	}
	c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
	c.Response().WriteHeader(p.Status)
	if c.Request().Method == http.MethodHead {
		return
	}
	_ = writeJSON(c.Response(), p)
}

func invalid(fields ...domain.FieldError) error {
	return &domain.Error{Code: domain.CodeInvalid, Message: "validation failed", Fields: fields}
}
