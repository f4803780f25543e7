package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/queries"
	"github.com/engramhq/engram/transport/request"
)

// decodeSeeds are bodies every JSON fuzz target starts from: valid requests
// of each handler, and the malformed shapes the decoder must refuse.
var decodeSeeds = []string{
	`{"email":"ada@example.com","password":"correct horse","display_name":"Ada"}`,
	`{"refresh_token":"rt_0b7c1c4e-7a6f-4c55-9b7e-1d2f3a4b5c6d.secret"}`,
	`{"title":"Plans","modality":"text","metadata":{"a":[1,2,{"b":null}]}}`,
	`{"title":null,"metadata":null}`,
	`{"content":"hello","role":"user","metadata":{}}`,
	`{"name":"Acme","description":"d","config":{"k":"v"}}`,
	`{"user_id":"0b7c1c4e-7a6f-4c55-9b7e-1d2f3a4b5c6d","role":"member"}`,
	`{"reason":"stop"}`,
	`{"type":"fact","content":"x","expires_at":"2030-01-01T00:00:00Z"}`,
	`{"name":"ci","scopes":["read","write"],"expires_in_days":30}`,
	`{"name":"ci","expires_in_days":1e400}`,
	`{"email":1}`, `{"unknown":true}`, `[]`, `null`, `"x"`, `{}`, ` `, ``, `{"a":"\u00`, `{}{}`, `{} x`,
	strings.Repeat("[", 40) + strings.Repeat("]", 40),
	`{"metadata":` + strings.Repeat(`{"a":`, 33) + `1` + strings.Repeat(`}`, 33) + `}`,
	`{"title":"\"[[[[{{{{"}`, "{\"title\":\"\xff\xfe\"}",
}

// FuzzDecodeJSON feeds every request body type of the API the same bytes.
// The decoder never panics; it either accepts a single JSON value (whose
// re-encoding it accepts again, to the same value) or answers with a
// validation error naming at least one field (malformed, or a value it
// could not keep exactly: invalid UTF-8, a number beyond float64).
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkDecode[registerRequest](t, raw)
		checkDecode[loginRequest](t, raw)
		checkDecode[refreshRequest](t, raw)
		checkDecode[createConversationRequest](t, raw)
		checkDecode[updateConversationRequest](t, raw)
		checkDecode[postMessageRequest](t, raw)
		checkDecode[createWorkspaceRequest](t, raw)
		checkDecode[updateWorkspaceRequest](t, raw)
		checkDecode[addMemberRequest](t, raw)
		checkDecode[cancelTaskRequest](t, raw)
		checkDecode[storeMemoryRequest](t, raw)
		checkDecode[issueAPIKeyRequest](t, raw)
	})
}

func checkDecode[T any](t *testing.T, raw []byte) {
	t.Helper()
	var v T
	err := request.Decode(raw, &v)
	if err != nil {
		var de *domain.Error
		if !errors.As(err, &de) || de.Code != domain.CodeInvalid || len(de.Fields) == 0 {
			t.Fatalf("%T: Decode(%q) = %#v, want a validation error with fields", v, raw, err)
		}
		for _, fe := range de.Fields {
			if fe.Field == "" || fe.Message == "" {
				t.Fatalf("%T: Decode(%q): field error %+v lacks a field or message", v, raw, fe)
			}
		}
		return
	}
	if !json.Valid(raw) {
		t.Fatalf("%T: Decode accepted invalid JSON %q", v, raw)
	}
	once, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%T: marshal accepted value: %v", v, err)
	}
	var again T
	if err := request.Decode(once, &again); err != nil {
		t.Fatalf("%T: re-encoding %s of accepted %q refused: %v", v, once, raw, err)
	}
	twice, _ := json.Marshal(again)
	if !bytes.Equal(once, twice) {
		t.Fatalf("%T: round trip changed the value: %s then %s", v, once, twice)
	}
}

func headerContext(name, value string, query url.Values) echo.Context {
	req := httptest.NewRequest("GET", "/", nil)
	if name != "" {
		req.Header[name] = []string{value}
	}
	req.URL.RawQuery = query.Encode()
	return echo.New().NewContext(req, httptest.NewRecorder())
}

func wantInvalid(t *testing.T, what string, err error, field string) {
	t.Helper()
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != domain.CodeInvalid || len(de.Fields) != 1 || de.Fields[0].Field != field {
		t.Fatalf("%s: error %#v, want a validation error of field %s", what, err, field)
	}
}

// FuzzParams checks the header and query parsers: parseNonNegative and
// minPosition accept exactly the canonical non-negative int64s (and a few
// equivalent spellings: leading zeros or "+"), round-tripping their value;
// ifMatch accepts "*", absence or an int32 version in its three forms;
// pageRequest yields a limit in 1..MaxLimit and never both cursor and after.
func FuzzParams(f *testing.F) {
	for _, s := range []string{"", "0", "7", "-1", "+3", "007", "9223372036854775807", "9223372036854775808",
		"99999999999999999999", "1e3", " 1", `"3"`, `W/"3"`, "*", "2147483648", "0x10", "٣", "\x00"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if n, err := parseNonNegative(a); err == nil {
			if n < 0 {
				t.Fatalf("parseNonNegative(%q) = %d", a, n)
			}
			if m, err := parseNonNegative(strconv.FormatInt(n, 10)); err != nil || m != n {
				t.Fatalf("parseNonNegative(%q) = %d does not round-trip: %d, %v", a, n, m, err)
			}
			if std, err := strconv.ParseInt(a, 10, 64); err != nil || std != n {
				t.Fatalf("parseNonNegative(%q) = %d, strconv says %d, %v", a, n, std, err)
			}
		}

		pos, err := minPosition(headerContext("Engram-Min-Position", a, nil))
		switch {
		case a == "":
			if err != nil || pos != 0 {
				t.Fatalf("minPosition(absent) = %d, %v", pos, err)
			}
		case err != nil:
			wantInvalid(t, "minPosition("+strconv.Quote(a)+")", err, "Engram-Min-Position")
		default:
			if n, perr := parseNonNegative(a); perr != nil || n != pos {
				t.Fatalf("minPosition(%q) = %d, parseNonNegative says %d, %v", a, pos, n, perr)
			}
		}

		v, err := ifMatch(headerContext("If-Match", a, nil))
		switch {
		case err != nil:
			wantInvalid(t, "ifMatch("+strconv.Quote(a)+")", err, "If-Match")
		case v == nil:
			if s := strings.TrimSpace(a); s != "" && s != "*" {
				t.Fatalf("ifMatch(%q) gave no condition", a)
			}
		default:
			if *v < 0 || int64(*v) > 1<<31-1 {
				t.Fatalf("ifMatch(%q) = %d, out of range", a, *v)
			}
			for _, form := range []string{strconv.Itoa(*v), `"` + strconv.Itoa(*v) + `"`, `W/"` + strconv.Itoa(*v) + `"`} {
				w, err := ifMatch(headerContext("If-Match", form, nil))
				if err != nil || w == nil || *w != *v {
					t.Fatalf("ifMatch(%q) = %d but ifMatch(%q) = %v, %v", a, *v, form, w, err)
				}
			}
		}

		q := url.Values{}
		if a != "" {
			q.Set("limit", a)
		}
		if b != "" {
			q.Set("cursor", b)
		}
		if len(a)%2 == 1 && b != "" {
			q.Set("after", b)
		}
		p, err := pageRequest(headerContext("", "", q))
		if err != nil {
			var de *domain.Error
			if !errors.As(err, &de) || de.Code != domain.CodeInvalid || len(de.Fields) != 1 ||
				(de.Fields[0].Field != "limit" && de.Fields[0].Field != "after") {
				t.Fatalf("pageRequest(%v) = %#v", q, err)
			}
			return
		}
		if q.Has("after") {
			t.Fatalf("pageRequest(%v) accepted cursor and after together", q)
		}
		if a != "" && (p.Limit < 1 || p.Limit > queries.MaxLimit) {
			t.Fatalf("pageRequest(%v).Limit = %d", q, p.Limit)
		}
		if p.Cursor != b {
			t.Fatalf("pageRequest(%v).Cursor = %q, want %q", q, p.Cursor, b)
		}
	})
}
