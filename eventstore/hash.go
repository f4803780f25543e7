package eventstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/engramhq/engram/domain/canonjson"
)

// Hash chain: every event stores the hash of its predecessor in the stream
// (prev_hash, NULL for version 1) and its own hash:
//
//	hash = SHA-256(prev_hash ‖ canonical(event))
//
// canonical(event) is the JSON object of the event's identity, position in its
// stream, type, schema version, data, metadata and recording time, serialised
// with sorted keys and no insignificant white space. PostgreSQL's jsonb may
// reorder keys and respell numbers; canonicalising both at write and at
// verification time makes the hash independent of that.
//
// Two schemes exist; the stored hash says which one an event was written with,
// because each scheme reproduces only its own hashes:
//
//   - Scheme 2, the exact scheme (every event written since it exists): numbers
//     are written by their exact decimal value — as RFC 8785 writes them when
//     an IEEE 754 double holds that value exactly, in exact decimal notation
//     otherwise — and the canonical object carries "hash_scheme": 2, so that no
//     event of scheme 2 can ever be reproduced by the legacy rule.
//   - Scheme 1, the legacy scheme: numbers were rounded to doubles (so two
//     integers beyond 2^53 could share a hash). Kept to verify events written
//     before scheme 2; nothing is written with it any more.

// hashScheme is the scheme Append writes with.
const hashScheme = 2

// appendExact appends the canonical form of the JSON value raw under
// scheme 2 to dst: what decoding it with numbers kept and encoding it back
// with encoding/json (HTML left unescaped) writes, each number spelled by
// canonicalNumber.
func appendExact(dst, raw []byte, limit bool) ([]byte, error) {
	out, err := canonjson.Append(dst, raw, canonjson.Options{Number: func(dst, literal []byte) ([]byte, error) {
		if isPlainInteger(literal) {
			return append(dst, literal...), nil // its own canonical spelling
		}
		s, err := canonicalNumber(string(literal), limit)
		if err != nil {
			return dst, fmt.Errorf("number %q: %w", literal, err)
		}
		return append(dst, s...), nil
	}})
	if err != nil {
		return dst, fmt.Errorf("canonical json: %w", err)
	}
	return out, nil
}

// isPlainInteger reports whether a number literal is an integer of at most
// 15 digits without a leading zero or a minus zero: a double holds it
// exactly and spells it the same, so canonicalNumber returns it unchanged.
func isPlainInteger(literal []byte) bool {
	digits := literal
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 15 || digits[0] == '0' && (len(digits) > 1 || len(literal) > 1) {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// chainHash computes the hash of one event given its predecessor's hash, with
// the exact scheme. data and metadata are the JSON documents as written.
// Numbers beyond the range of a double are refused: the event store's readers
// decode numbers as doubles.
func chainHash(prev []byte, e *Event, data, metadata []byte) ([]byte, error) {
	doc, err := exactDocument(e, data, metadata, true)
	if err != nil {
		return nil, err
	}
	return digest(prev, doc), nil
}

// verifyHash reports whether the stored hash of e is reproduced from its
// content and prev_hash by either scheme, and by which.
func verifyHash(e *Event, data, metadata []byte) (scheme int, ok bool) {
	if doc, err := exactDocument(e, data, metadata, false); err == nil && bytes.Equal(digest(e.PrevHash, doc), e.Hash) {
		return hashScheme, true
	}
	if doc, err := legacyDocument(e, data, metadata); err == nil && bytes.Equal(digest(e.PrevHash, doc), e.Hash) {
		return 1, true
	}
	return 0, false
}

func digest(prev, doc []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(doc)
	return h.Sum(nil)
}

// exactDocument is the canonical document of e under scheme 2. limit refuses
// numbers a double cannot hold (what Append accepts); verification reads
// whatever is stored. It is written key by key, in sorted order, as
// encoding/json writes the map of eventDocument with "hash_scheme" added.
func exactDocument(e *Event, data, metadata []byte, limit bool) ([]byte, error) {
	doc := make([]byte, 0, len(data)+len(metadata)+len(e.StreamID)+len(e.Type)+192)
	doc = append(doc, `{"data":`...)
	doc, err := appendExact(doc, data, limit)
	if err != nil {
		return nil, fmt.Errorf("event %s data: %w", e.EventID, err)
	}
	doc = append(doc, `,"event_id":`...)
	doc = canonjson.AppendString(doc, e.EventID, false)
	doc = append(doc, `,"hash_scheme":`...)
	doc = strconv.AppendInt(doc, hashScheme, 10)
	doc = append(doc, `,"metadata":`...)
	if doc, err = appendExact(doc, metadata, limit); err != nil {
		return nil, fmt.Errorf("event %s metadata: %w", e.EventID, err)
	}
	doc = append(doc, `,"recorded_at":`...)
	doc = canonjson.AppendString(doc, e.RecordedAt.UTC().Format(time.RFC3339Nano), false)
	doc = append(doc, `,"schema_version":`...)
	doc = strconv.AppendInt(doc, int64(e.SchemaVersion), 10)
	doc = append(doc, `,"stream_id":`...)
	doc = canonjson.AppendString(doc, e.StreamID, false)
	doc = append(doc, `,"stream_type":`...)
	doc = canonjson.AppendString(doc, e.StreamType, false)
	doc = append(doc, `,"stream_version":`...)
	doc = strconv.AppendInt(doc, int64(e.StreamVersion), 10)
	doc = append(doc, `,"type":`...)
	doc = canonjson.AppendString(doc, e.Type, false)
	return append(doc, '}'), nil
}

// legacyDocument is the canonical document of e under scheme 1.
func legacyDocument(e *Event, data, metadata []byte) ([]byte, error) {
	d, err := decodeNumbersAsFloat(data)
	if err != nil {
		return nil, fmt.Errorf("event %s data: %w", e.EventID, err)
	}
	m, err := decodeNumbersAsFloat(metadata)
	if err != nil {
		return nil, fmt.Errorf("event %s metadata: %w", e.EventID, err)
	}
	return marshalCanonical(eventDocument(e, d, m))
}

func eventDocument(e *Event, data, metadata any) map[string]any {
	return map[string]any{
		"event_id":       e.EventID,
		"stream_id":      e.StreamID,
		"stream_type":    e.StreamType,
		"stream_version": e.StreamVersion,
		"type":           e.Type,
		"schema_version": e.SchemaVersion,
		"data":           data,
		"metadata":       metadata,
		"recorded_at":    e.RecordedAt.UTC().Format(time.RFC3339Nano),
	}
}

func marshalCanonical(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

func decodeNumbers(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("canonical json: %w", err)
	}
	return v, nil
}

// mapNumbers replaces every number of a decoded document by fn's result.
func mapNumbers(v any, fn func(json.Number) (any, error)) (any, error) {
	switch t := v.(type) {
	case json.Number:
		return fn(t)
	case map[string]any:
		for k, e := range t {
			n, err := mapNumbers(e, fn)
			if err != nil {
				return nil, err
			}
			t[k] = n
		}
		return t, nil
	case []any:
		for i, e := range t {
			n, err := mapNumbers(e, fn)
			if err != nil {
				return nil, err
			}
			t[i] = n
		}
		return t, nil
	default:
		return v, nil
	}
}

// decodeNumbersAsFloat decodes a JSON document with every number rounded to a
// double: the legacy scheme.
func decodeNumbersAsFloat(raw []byte) (any, error) {
	v, err := decodeNumbers(raw)
	if err != nil {
		return nil, err
	}
	return mapNumbers(v, func(n json.Number) (any, error) {
		f, err := n.Float64()
		if err != nil {
			return nil, fmt.Errorf("canonical json: number %q: %w", n, err)
		}
		return f, nil
	})
}

// errNumberRange is returned for a number whose exponent no database could
// store.
var errNumberRange = errors.New("exponent out of range")

// maxExponent bounds the decimal exponent of a number: far beyond what
// PostgreSQL's numeric stores, well within int64 arithmetic.
const maxExponent = 1 << 40

// canonicalNumber returns the canonical spelling of the JSON number s (valid
// JSON number syntax): the spelling RFC 8785 gives the nearest double when
// that double's spelling has exactly the value of s, and the exact decimal
// spelling of s otherwise. Both spellings denote the value itself, so two
// different values never share a spelling. limit refuses values beyond the
// range of a double.
func canonicalNumber(s string, limit bool) (string, error) {
	d, err := parseDecimal(s)
	if err != nil {
		return "", err
	}
	if d.digits == "" {
		return "0", nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !math.IsInf(f, 0) {
		return "", err
	}
	if math.IsInf(f, 0) {
		if limit {
			return "", err
		}
		return d.String(), nil
	}
	short := formatDouble(f)
	if sd, err := parseDecimal(short); err == nil && sd == d {
		return short, nil
	}
	return d.String(), nil
}

// formatDouble spells a finite double as encoding/json (and RFC 8785) do.
func formatDouble(f float64) string {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b := strconv.AppendFloat(nil, f, format, -1, 64)
	if format == 'e' {
		// e-09 → e-9
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return string(b)
}

// decimal is the exact value of a JSON number: ±digits × 10^exp, digits
// without leading or trailing zeros ("" for zero, whose sign is dropped).
type decimal struct {
	neg    bool
	digits string
	exp    int64
}

// parseDecimal reads a number in JSON syntax exactly.
func parseDecimal(s string) (decimal, error) {
	var d decimal
	if strings.HasPrefix(s, "-") {
		d.neg, s = true, s[1:]
	}
	mantissa, exponent, hasExp := strings.Cut(strings.ToLower(s), "e")
	whole, frac, _ := strings.Cut(mantissa, ".")
	if hasExp {
		e, err := strconv.ParseInt(strings.TrimPrefix(exponent, "+"), 10, 64)
		if err != nil || e > maxExponent || e < -maxExponent {
			return decimal{}, errNumberRange
		}
		d.exp = e
	}
	if !isDigits(whole) || whole == "" || !isDigits(frac) {
		return decimal{}, fmt.Errorf("not a number: %q", s)
	}
	digits := strings.TrimLeft(whole+frac, "0")
	d.exp -= int64(len(frac))
	trimmed := strings.TrimRight(digits, "0")
	d.exp += int64(len(digits) - len(trimmed))
	d.digits = trimmed
	if d.digits == "" {
		return decimal{}, nil
	}
	return d, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// String spells d exactly: in plain notation when its decimal point falls
// within 21 digits of its first digit (as RFC 8785 does for doubles), in
// scientific notation otherwise, so that the spelling stays as short as the
// digits themselves.
func (d decimal) String() string {
	if d.digits == "" {
		return "0"
	}
	var b strings.Builder
	if d.neg {
		b.WriteByte('-')
	}
	n := int64(len(d.digits))
	point := n + d.exp // digits before the decimal point
	switch {
	case d.exp >= 0 && point <= 21:
		b.WriteString(d.digits)
		b.WriteString(strings.Repeat("0", int(d.exp)))
	case point > 0 && point <= 21:
		b.WriteString(d.digits[:point])
		b.WriteByte('.')
		b.WriteString(d.digits[point:])
	case point <= 0 && point > -6:
		b.WriteString("0.")
		b.WriteString(strings.Repeat("0", int(-point)))
		b.WriteString(d.digits)
	default:
		b.WriteByte(d.digits[0])
		if n > 1 {
			b.WriteByte('.')
			b.WriteString(d.digits[1:])
		}
		b.WriteByte('e')
		if point-1 >= 0 {
			b.WriteByte('+')
		}
		b.WriteString(strconv.FormatInt(point-1, 10))
	}
	return b.String()
}
