package http

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/queries"
)

// Conditional GETs. Every GET of a resource or a collection answers with an
// ETag, and a request whose If-None-Match holds it is answered 304 with no
// body:
//
//   - a resource read from its stream's read model (a workspace, a
//     conversation, a task, the caller's user) has the strong ETag of its
//     stream version, "<version>": the same value commands answer and
//     If-Match takes. What such a resource shows of the caller (a
//     workspace's role) changes only through events of that stream, so the
//     version still tells the caller's representations apart;
//   - a page of a collection, or a view computed over several streams, has
//     a weak ETag, W/"<digest>", over the caller's id, the versions (or
//     positions) of the items shown, and the next cursor; items without a
//     version are digested whole. Any change to any item the caller sees,
//     an item appearing or leaving (a membership removed), or another caller
//     asking, gives another ETag.

// versionETag is the strong ETag of a resource at a stream version.
func versionETag(version int) string { return `"` + strconv.Itoa(version) + `"` }

// validator accumulates what a weak ETag is derived from: each part, as
// its length, ':' and itself, in one buffer digested at the end. A page of
// messages adds a part per item; one buffer and one digest keep its ETag
// a small share of the answer's cost.
type validator struct{ buf []byte }

// newValidator starts the validator of an answer shown to callerID ("" when
// the answer is the same for every caller).
func newValidator(callerID string) *validator {
	return (&validator{buf: make([]byte, 0, 256)}).add(callerID)
}

// add adds a part (an item's id and version, a cursor, …).
func (v *validator) add(parts ...string) *validator {
	for _, p := range parts {
		v.buf = strconv.AppendInt(v.buf, int64(len(p)), 10)
		v.buf = append(v.buf, ':')
		v.buf = append(v.buf, p...)
	}
	return v
}

// addJSON adds the JSON encoding of x, for items that carry no version.
func (v *validator) addJSON(x any) *validator {
	b, err := json.Marshal(x)
	if err != nil {
		// The answer itself would fail to encode: a validator that never
		// matches keeps the 200 path, which reports that error.
		b = []byte(err.Error())
	}
	return v.add(string(b))
}

// etag returns the weak ETag of the parts.
func (v *validator) etag() string {
	sum := sha256.Sum256(v.buf)
	return `W/"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`
}

// listETag is the weak ETag of a page of a collection shown to callerID:
// key gives each item's validator (its id and version, or its JSON).
func listETag[T any](callerID string, l queries.Page[T], key func(T) string) string {
	v := newValidator(callerID)
	for _, it := range l.Items {
		v.add(key(it))
	}
	return v.add("next:" + l.NextCursor).etag()
}

// jsonKey is the validator of an item that carries no version: the item
// itself.
func jsonKey[T any](it T) string {
	b, err := json.Marshal(it)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// conditional answers a GET with body and its ETag, or with 304 Not Modified
// and no body when the request's If-None-Match holds that ETag.
func conditional(c echo.Context, etag string, body any) error {
	c.Response().Header().Set("ETag", etag)
	if noneMatch(c.Request().Header.Get("If-None-Match"), etag) {
		return c.NoContent(http.StatusNotModified)
	}
	memo, ok := c.Get(answersKey).(*answers)
	if !ok {
		return c.JSON(http.StatusOK, body)
	}
	b, err := memo.encoded(actor(c).UserID+"\x00"+c.Request().URL.RequestURI()+"\x00"+etag, body)
	if err != nil {
		return err
	}
	// The length is known: a long page goes out whole rather than chunked.
	c.Response().Header().Set(echo.HeaderContentLength, strconv.Itoa(len(b)))
	return c.JSONBlob(http.StatusOK, b)
}

// noneMatch reports whether an If-None-Match header holds etag ("*" holds
// every ETag). Its comparison is the weak one (RFC 9110, 13.1.2): W/ is
// ignored on both sides.
func noneMatch(header, etag string) bool {
	if header == "" {
		return false
	}
	want := strings.TrimPrefix(etag, "W/")
	for candidate := range strings.SplitSeq(header, ",") {
		candidate = strings.TrimSpace(candidate)
		if candidate == "*" || strings.TrimPrefix(candidate, "W/") == want {
			return true
		}
	}
	return false
}
