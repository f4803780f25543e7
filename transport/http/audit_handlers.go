package http

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/engramhq/engram/app"
	"github.com/engramhq/engram/audit"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/queries"
)

// The audit API reads the event log itself (package audit), not read
// models. Its routes answer only to whom access.CheckAudit allows — admins
// and auditors, or their API keys with the audit scope — and everyone else
// as that policy says (not found, or forbidden for an auditor's key without
// the scope). audit.Item and audit.State are the wire shapes of its
// answers: the same records are written by `engram audit export`.

// mediaNDJSON is the media type of streamed answers: one JSON event a line.
const mediaNDJSON = "application/x-ndjson"

// maxListedBreaks bounds the breaks listed in a verification answer; the
// count covers them all.
const maxListedBreaks = 1000

// ndjsonFlushEvery is how many lines a stream writes between flushes.
const ndjsonFlushEvery = 256

// requireAuditor applies the audit policy to the audit routes.
func (s *Server) requireAuditor(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.app.Audit == nil {
			return domain.Errorf(domain.CodeNotFound, "not found")
		}
		if err := access.CheckAudit(actor(c)); err != nil {
			return err
		}
		return next(c)
	}
}

// auditReader is the caller as the audit records it.
func auditReader(c echo.Context) audit.Reader {
	a := actor(c)
	r := audit.Reader{ActorID: a.UserID, Via: app.ViaAPI, SessionID: a.SessionID, KeyID: a.KeyID, RequestID: requestID(c)}
	if corr := c.Request().Header.Get("X-Correlation-ID"); safeRequestID.MatchString(corr) {
		r.CorrelationID = corr
	}
	return r
}

func (s *Server) auditEvents(c echo.Context) error {
	return s.answerAudit(c, true, s.app.Audit.Export, s.app.Audit.Events)
}

func (s *Server) auditStreamEvents(c echo.Context) error {
	streamID, err := streamParam(c)
	if err != nil {
		return err
	}
	return s.answerAudit(c, false,
		func(ctx context.Context, r audit.Reader, q audit.Query, write func(audit.Item) error) (int64, error) {
			return s.app.Audit.ExportStream(ctx, r, streamID, q, write)
		},
		func(ctx context.Context, r audit.Reader, q audit.Query) (audit.Page, error) {
			return s.app.Audit.StreamEvents(ctx, r, streamID, q)
		})
}

// answerAudit answers an audit read of events: streamed as NDJSON by export
// when the request asks for it, else one page read by events. withStream
// says whether the query may name a stream.
func (s *Server) answerAudit(c echo.Context, withStream bool,
	export func(ctx context.Context, r audit.Reader, q audit.Query, write func(audit.Item) error) (int64, error),
	events func(ctx context.Context, r audit.Reader, q audit.Query) (audit.Page, error),
) error {
	streamed := wantsNDJSON(c)
	q, err := auditQuery(c, withStream, streamed)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if streamed {
		return s.streamNDJSON(c, func(write func(audit.Item) error) (int64, error) {
			return export(ctx, auditReader(c), q, write)
		})
	}
	page, err := events(ctx, auditReader(c), q)
	if err != nil {
		return err
	}
	return auditPage(c, page)
}

// auditPage answers a page of events. An event never changes: its position
// and hash identify it (a tampered event shows another hash).
func auditPage(c echo.Context, page audit.Page) error {
	out := queries.Page[audit.Item]{Items: page.Items, NextCursor: page.NextCursor}
	return conditional(c, listETag("", out, func(it audit.Item) string {
		return strconv.FormatInt(it.GlobalPosition, 10) + "#" + it.Hash
	}), out)
}

func (s *Server) auditState(c echo.Context) error {
	streamID, err := streamParam(c)
	if err != nil {
		return err
	}
	p := params{c: c}
	p.only("version", "at")
	var point audit.Point
	if raw, ok := p.one("version"); ok {
		n, err := parseNonNegative(raw)
		if err != nil || n < 1 || n > 1<<31-1 {
			p.v.Add("version", "must be a positive integer")
		}
		point.Version = int(n)
	}
	if raw, ok := p.one("at"); ok {
		point.At = p.time("at", raw)
	}
	if err := p.v.Err(); err != nil {
		return err
	}
	st, err := s.app.Audit.State(c.Request().Context(), auditReader(c), streamID, point)
	if err != nil {
		return err
	}
	return conditional(c, newValidator("").addJSON(st).etag(), st)
}

// verifyJSON is the answer of a verification.
type verifyJSON struct {
	OK bool `json:"ok"`
	app.VerifyReport
	Breaks []app.Break `json:"breaks"`
	// BreaksTruncated says that more breaks were found than listed.
	BreaksTruncated bool `json:"breaks_truncated"`
}

func (s *Server) auditVerify(c echo.Context) error {
	streamID, err := onlyParam(c, "stream_id")
	if err != nil {
		return err
	}
	out := verifyJSON{Breaks: []app.Break{}}
	liftWriteDeadline(c)
	report, err := s.app.Audit.Verify(c.Request().Context(), auditReader(c), streamID, func(b app.Break) error {
		if len(out.Breaks) < maxListedBreaks {
			out.Breaks = append(out.Breaks, b)
		} else {
			out.BreaksTruncated = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	out.OK, out.VerifyReport = report.Breaks == 0, report
	return c.JSON(http.StatusOK, out)
}

// auditVerifyProjections compares the SQL read models (or the one named)
// with the log: 200 with the report, whether they agree ("ok": true) or not.
func (s *Server) auditVerifyProjections(c echo.Context) error {
	name, err := onlyParam(c, "name")
	if err != nil {
		return err
	}
	liftWriteDeadline(c)
	report, err := s.app.Audit.VerifyProjections(c.Request().Context(), auditReader(c), name)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, report)
}

// streamNDJSON answers with the items that export writes, one JSON object a
// line, flushed as they come: memory does not grow with the answer. Problems
// found before the first line are answered as problem JSON; a failure after
// it aborts the connection, so that a cut stream never looks complete.
func (s *Server) streamNDJSON(c echo.Context, export func(write func(audit.Item) error) (int64, error)) error {
	res := c.Response()
	buf := bufio.NewWriterSize(res, 32<<10)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	started := false
	lines := 0
	flush := func() error {
		if err := buf.Flush(); err != nil {
			return err
		}
		res.Flush()
		s.extendWriteDeadline(c)
		return nil
	}
	_, err := export(func(it audit.Item) error {
		if !started {
			res.Header().Set(echo.HeaderContentType, mediaNDJSON)
			res.Header().Set("X-Accel-Buffering", "no")
			res.WriteHeader(http.StatusOK)
			started = true
			s.extendWriteDeadline(c)
		}
		if err := enc.Encode(it); err != nil {
			return err
		}
		if lines++; lines%ndjsonFlushEvery == 0 {
			return flush()
		}
		return nil
	})
	if err == nil && !started {
		res.Header().Set(echo.HeaderContentType, mediaNDJSON)
		res.WriteHeader(http.StatusOK)
		return nil
	}
	if err == nil {
		err = flush()
	}
	if err != nil && started {
		if c.Request().Context().Err() == nil {
			s.logger.ErrorContext(c.Request().Context(), "audit stream failed", "request_id", requestID(c), "route", c.Path(), "err", err)
		}
		panic(http.ErrAbortHandler)
	}
	return err
}

// extendWriteDeadline gives a long answer (a stream, a verification of the
// whole log) another write timeout from now.
func (s *Server) extendWriteDeadline(c echo.Context) {
	d := s.cfg.WriteTimeout
	if d <= 0 {
		return
	}
	_ = http.NewResponseController(c.Response()).SetWriteDeadline(time.Now().Add(d))
}

// liftWriteDeadline removes the write timeout of an answer written only at
// the end of a verification of the whole log, which takes as long as the log
// is long (the answer itself is small).
func liftWriteDeadline(c echo.Context) {
	_ = http.NewResponseController(c.Response()).SetWriteDeadline(time.Time{})
}

// wantsNDJSON reports whether the client prefers application/x-ndjson to
// JSON: it names it with a quality no lower than JSON's (or a wildcard's).
func wantsNDJSON(c echo.Context) bool {
	var ndjson, json float64
	for _, part := range strings.Split(c.Request().Header.Get(echo.HeaderAccept), ",") {
		media, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			if v, ok := strings.CutPrefix(strings.ReplaceAll(strings.TrimSpace(p), " ", ""), "q="); ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 && f <= 1 {
					q = f
				}
			}
		}
		switch strings.ToLower(strings.TrimSpace(media)) {
		case mediaNDJSON:
			ndjson = max(ndjson, q)
		case echo.MIMEApplicationJSON, "application/*", "*/*":
			json = max(json, q)
		}
	}
	return ndjson > 0 && ndjson >= json
}

// streamParam returns the stream id of the path.
func streamParam(c echo.Context) (string, error) {
	id, err := url.PathUnescape(c.Param("stream_id"))
	if err != nil {
		return "", domain.Errorf(domain.CodeNotFound, "stream not found")
	}
	return id, nil
}

// auditQuery parses the filter, cursor and limit of an event query;
// withStream allows the stream_id parameter; streamed says the answer is a
// stream, whose limit is not a page size. Every bad parameter is reported.
func auditQuery(c echo.Context, withStream, streamed bool) (audit.Query, error) {
	p := params{c: c}
	names := []string{"from_position", "to_position", "stream_type", "type", "actor_id", "from", "to", "cursor", "limit"}
	if withStream {
		names = append(names, "stream_id")
	}
	p.only(names...)
	var q audit.Query
	f := &q.Filter
	f.FromPosition = p.position("from_position")
	f.ToPosition = p.position("to_position")
	if withStream {
		f.StreamID, _ = p.one("stream_id")
	}
	f.StreamType, _ = p.one("stream_type")
	f.ActorID, _ = p.one("actor_id")
	for _, raw := range c.QueryParams()["type"] {
		for _, t := range strings.Split(raw, ",") {
			f.Types = append(f.Types, strings.TrimSpace(t))
		}
	}
	if raw, ok := p.one("from"); ok {
		f.From = p.time("from", raw)
	}
	if raw, ok := p.one("to"); ok {
		f.To = p.time("to", raw)
	}
	// An empty cursor is the first page, as a client that sends back the
	// next_cursor of the previous answer may do.
	if vals := c.QueryParams()["cursor"]; len(vals) != 1 || vals[0] != "" {
		q.Cursor, _ = p.one("cursor")
	}
	if raw, ok := p.one("limit"); ok {
		n, err := parseNonNegative(raw)
		switch {
		case streamed && (err != nil || n < 1 || n > 1<<31-1):
			p.v.Add("limit", "must be a positive integer")
		case !streamed && (err != nil || n < 1 || n > audit.MaxLimit):
			p.v.Add("limit", "must be an integer from 1 to %d", audit.MaxLimit)
		default:
			q.Limit = int(n)
		}
	}
	q.Check(&p.v, !streamed)
	if err := p.v.Err(); err != nil {
		return audit.Query{}, dedupe(err)
	}
	return q, nil
}

// onlyParam returns the value of the one query parameter a route takes
// ("" when it is absent). Any other parameter, and more than one value or
// an empty one, is invalid.
func onlyParam(c echo.Context, name string) (string, error) {
	p := params{c: c}
	p.only(name)
	value, _ := p.one(name)
	return value, p.v.Err()
}

// params reads query parameters, collecting every problem.
type params struct {
	c echo.Context
	v domain.Validation
}

// only reports parameters other than names.
func (p *params) only(names ...string) {
	var unknown []string
	for k := range p.c.QueryParams() {
		if !slices.Contains(names, k) {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		p.v.Add(k, "is not a parameter of this route (known: %s)", strings.Join(names, ", "))
	}
}

// one returns the single value of a parameter, and whether it was given.
func (p *params) one(name string) (string, bool) {
	vals, ok := p.c.QueryParams()[name]
	switch {
	case !ok:
		return "", false
	case len(vals) > 1:
		p.v.Add(name, "give at most one value")
		return "", false
	case vals[0] == "":
		p.v.Add(name, "must not be empty")
		return "", false
	}
	return vals[0], true
}

// position parses an optional positive position (0 when absent, -1 when
// invalid).
func (p *params) position(name string) int64 {
	raw, ok := p.one(name)
	if !ok {
		return 0
	}
	n, err := parseNonNegative(raw)
	if err != nil || n < 1 {
		p.v.Add(name, "must be a positive integer")
		return -1
	}
	return n
}

// time parses an RFC 3339 time. A '+' of the offset that a client left
// unencoded arrives as a space, and is read as '+'.
func (p *params) time(name, raw string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, raw)
	if err != nil && strings.Contains(raw, " ") {
		t, err = time.Parse(time.RFC3339Nano, strings.Replace(raw, " ", "+", 1))
	}
	if err != nil {
		p.v.Add(name, "must be a time in RFC 3339 format, e.g. 2026-01-02T15:04:05Z")
		return time.Time{}
	}
	return t
}

// dedupe keeps the first problem reported for each field.
func dedupe(err error) error {
	var de *domain.Error
	if !errors.As(err, &de) {
		return err
	}
	seen := map[string]bool{}
	fields := de.Fields[:0:0]
	for _, f := range de.Fields {
		if !seen[f.Field] {
			seen[f.Field] = true
			fields = append(fields, f)
		}
	}
	return &domain.Error{Code: de.Code, Message: de.Message, Fields: fields}
}
