package sse

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/eventstore"
)

// positionsLog is a Log whose stored positions are 0 (the beginning) to
// 100, each in its own transaction.
type positionsLog struct{ Log }

func (positionsLog) CursorOf(_ context.Context, position int64) (eventstore.Cursor, error) {
	if position < 0 || position > 100 {
		return eventstore.Cursor{}, eventstore.ErrUnknownPosition
	}
	return eventstore.Cursor{TxID: uint64(position) + 1000, Position: position}, nil
}

// FuzzResumeCursor checks the Last-Event-ID parser (header, or the
// last_event_id query parameter when the header is absent): it never
// panics; blank means "no resume"; an accepted id is the decimal position
// of a stored event and yields that event's cursor; anything else is a
// 400.
func FuzzResumeCursor(f *testing.F) {
	for _, s := range []string{"", " ", "0", "1", "100", "101", "-1", "+7", " 42 ", "007", "9223372036854775808", "x", "1.0", "\t3\n"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	h, _ := newTestHub(f, positionsLog{}, Config{}, nil)
	f.Fuzz(func(t *testing.T, raw string, inQuery bool) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if inQuery {
			req.URL.RawQuery = url.Values{"last_event_id": {raw}}.Encode()
		} else {
			req.Header["Last-Event-Id"] = []string{raw}
		}
		c := echo.New().NewContext(req, httptest.NewRecorder())
		cursor, err := h.resumeCursor(c)
		trimmed := strings.TrimSpace(raw)
		if err != nil {
			var he *echo.HTTPError
			if !errors.As(err, &he) || he.Code != http.StatusBadRequest {
				t.Fatalf("resumeCursor(%q) = %v, want a 400", raw, err)
			}
			if n, perr := strconv.ParseInt(trimmed, 10, 64); perr == nil && n >= 0 && n <= 100 {
				t.Fatalf("resumeCursor(%q) refused stored position %d", raw, n)
			}
			return
		}
		if trimmed == "" {
			if cursor != nil {
				t.Fatalf("resumeCursor(%q) = %+v, want no resume", raw, cursor)
			}
			return
		}
		n, perr := strconv.ParseInt(trimmed, 10, 64)
		if cursor == nil || perr != nil || cursor.Position != n || cursor.TxID != uint64(n)+1000 {
			t.Fatalf("resumeCursor(%q) = %+v (%v)", raw, cursor, perr)
		}
	})
}
