// Package canonjson writes a JSON text in canonical form: compact, the keys
// of every object sorted bytewise (of a key given twice, the last value
// kept), strings escaped as encoding/json escapes them.
//
// The output is, byte for byte, what decoding the text into an interface
// value with json.Decoder.UseNumber and encoding that value back with
// encoding/json writes — the form the event store's hash chain and the
// domain's JSON-object fields were first defined by, and that stored hashes
// depend on. Append gets there in one pass over the text, without the maps,
// interface values and reflection of that round trip, which cost a command
// more CPU than anything else it does in Go. The differential fuzz test
// holds the two to the same bytes.
package canonjson

import (
	"errors"
	"slices"
	"sync"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrSyntax is returned for a text that is not exactly one valid JSON value
// (white space around it aside).
var ErrSyntax = errors.New("not valid JSON")

// ErrNUL is returned, with Options.RejectNUL, for a valid text with a NUL
// character (\u0000) in a string or a key.
var ErrNUL = errors.New("contains a NUL character")

// maxDepth is the deepest nesting encoding/json accepts.
const maxDepth = 10000

// Options say how a text is written.
type Options struct {
	// EscapeHTML escapes <, > and & in strings, as json.Marshal does; an
	// Encoder with SetEscapeHTML(false) leaves them.
	EscapeHTML bool
	// RejectNUL makes a text with a NUL character in a string fail with
	// ErrNUL (after its syntax: a text with both fails with ErrSyntax).
	RejectNUL bool
	// Number appends the spelling of a number, given as written (valid JSON
	// number syntax); nil keeps it as written, as json.Number does.
	Number func(dst, literal []byte) ([]byte, error)
}

// Append appends the canonical form of the JSON text src to dst. On error
// dst is returned unchanged.
func Append(dst, src []byte, o Options) ([]byte, error) {
	w := writers.Get().(*writer)
	w.o, w.src, w.pos, w.depth, w.nul = o, src, 0, 0, false
	defer w.release()
	w.skipSpace()
	out, err := w.value(dst)
	if err != nil {
		return dst, err
	}
	w.skipSpace()
	if w.pos != len(src) {
		return dst, ErrSyntax
	}
	if w.nul && o.RejectNUL {
		return dst, ErrNUL
	}
	return out, nil
}

// AppendString appends s as a JSON string, escaped as encoding/json does.
func AppendString(dst []byte, s string, escapeHTML bool) []byte {
	return appendString(dst, s, escapeHTML)
}

type writer struct {
	o     Options
	src   []byte
	pos   int
	depth int
	nul   bool // a decoded string held U+0000
	// levels keeps, per depth of nesting, the buffers an object is
	// gathered in before its members are sorted, for the next object at
	// that depth (and the next text) to reuse.
	levels []level
}

type level struct {
	values  []byte
	members []member
}

var writers = sync.Pool{New: func() any { return new(writer) }}

// release returns w to the pool, keeping its buffers but nothing that
// points into the text.
func (w *writer) release() {
	if len(w.levels) > maxPooledDepth {
		return // a deeply nested text: its buffers are not worth keeping
	}
	for i := range w.levels {
		clear(w.levels[i].members[:cap(w.levels[i].members)])
	}
	w.o, w.src = Options{}, nil
	writers.Put(w)
}

// maxPooledDepth is the deepest nesting whose buffers a writer keeps for
// the next text; events and metadata nest a few levels at most.
const maxPooledDepth = 32

func (w *writer) skipSpace() {
	for w.pos < len(w.src) {
		switch w.src[w.pos] {
		case ' ', '\t', '\n', '\r':
			w.pos++
		default:
			return
		}
	}
}

// next returns the byte at the reading position, 0 at the end.
func (w *writer) next() byte {
	if w.pos < len(w.src) {
		return w.src[w.pos]
	}
	return 0
}

func (w *writer) value(dst []byte) ([]byte, error) {
	switch c := w.next(); {
	case c == '{':
		return w.object(dst)
	case c == '[':
		return w.array(dst)
	case c == '"':
		s, err := w.str()
		if err != nil {
			return dst, err
		}
		return appendString(dst, s, w.o.EscapeHTML), nil
	case c == 't':
		return w.literal(dst, "true")
	case c == 'f':
		return w.literal(dst, "false")
	case c == 'n':
		return w.literal(dst, "null")
	case c == '-' || isDigit(c):
		return w.number(dst)
	}
	return dst, ErrSyntax
}

func (w *writer) literal(dst []byte, lit string) ([]byte, error) {
	if len(w.src)-w.pos < len(lit) || string(w.src[w.pos:w.pos+len(lit)]) != lit {
		return dst, ErrSyntax
	}
	w.pos += len(lit)
	return append(dst, lit...), nil
}

// member is one key of an object and where its written value lies in the
// object's scratch buffer.
type member struct {
	key        []byte
	start, end int
}

func (w *writer) object(dst []byte) ([]byte, error) {
	if w.depth++; w.depth > maxDepth {
		return dst, ErrSyntax
	}
	defer func() { w.depth-- }()
	w.pos++ // {
	w.skipSpace()
	if w.next() == '}' {
		w.pos++
		return append(dst, "{}"...), nil
	}
	d := w.depth - 1
	for len(w.levels) <= d {
		w.levels = append(w.levels, level{}) // arrays take depths too
	}
	values, members := w.levels[d].values[:0], w.levels[d].members[:0]
	defer func() { w.levels[d].values, w.levels[d].members = values, members }()
	for {
		if w.next() != '"' {
			return dst, ErrSyntax
		}
		key, err := w.str()
		if err != nil {
			return dst, err
		}
		w.skipSpace()
		if w.next() != ':' {
			return dst, ErrSyntax
		}
		w.pos++
		w.skipSpace()
		start := len(values)
		if values, err = w.value(values); err != nil {
			return dst, err
		}
		members = append(members, member{key: key, start: start, end: len(values)})
		w.skipSpace()
		switch w.next() {
		case ',':
			w.pos++
			w.skipSpace()
			continue
		case '}':
			w.pos++
		default:
			return dst, ErrSyntax
		}
		break
	}
	slices.SortStableFunc(members, func(a, b member) int { return compareBytes(a.key, b.key) })
	dst = append(dst, '{')
	first := true
	for i, m := range members {
		if i+1 < len(members) && string(members[i+1].key) == string(m.key) {
			continue // the last of equal keys wins, as in a decoded map
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendString(dst, m.key, w.o.EscapeHTML)
		dst = append(dst, ':')
		dst = append(dst, values[m.start:m.end]...)
	}
	return append(dst, '}'), nil
}

func compareBytes(a, b []byte) int {
	switch {
	case string(a) < string(b):
		return -1
	case string(a) > string(b):
		return 1
	}
	return 0
}

func (w *writer) array(dst []byte) ([]byte, error) {
	if w.depth++; w.depth > maxDepth {
		return dst, ErrSyntax
	}
	defer func() { w.depth-- }()
	w.pos++ // [
	w.skipSpace()
	dst = append(dst, '[')
	if w.next() == ']' {
		w.pos++
		return append(dst, ']'), nil
	}
	for {
		var err error
		if dst, err = w.value(dst); err != nil {
			return dst, err
		}
		w.skipSpace()
		switch w.next() {
		case ',':
			w.pos++
			w.skipSpace()
			dst = append(dst, ',')
			continue
		case ']':
			w.pos++
			return append(dst, ']'), nil
		}
		return dst, ErrSyntax
	}
}

// number reads a number (JSON syntax) and appends its spelling.
func (w *writer) number(dst []byte) ([]byte, error) {
	src, i := w.src, w.pos
	if src[i] == '-' {
		i++
	}
	switch {
	case i < len(src) && src[i] == '0':
		i++
	case i < len(src) && isDigit(src[i]):
		i = digits(src, i)
	default:
		return dst, ErrSyntax
	}
	if i < len(src) && src[i] == '.' {
		if i++; i >= len(src) || !isDigit(src[i]) {
			return dst, ErrSyntax
		}
		i = digits(src, i)
	}
	if i < len(src) && (src[i] == 'e' || src[i] == 'E') {
		i++
		if i < len(src) && (src[i] == '+' || src[i] == '-') {
			i++
		}
		if i >= len(src) || !isDigit(src[i]) {
			return dst, ErrSyntax
		}
		i = digits(src, i)
	}
	literal := src[w.pos:i]
	w.pos = i
	if w.o.Number == nil {
		return append(dst, literal...), nil
	}
	return w.o.Number(dst, literal)
}

func digits(src []byte, i int) int {
	for i < len(src) && isDigit(src[i]) {
		i++
	}
	return i
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// str reads a string literal and returns its decoded bytes, as
// encoding/json decodes them: invalid UTF-8 and unpaired surrogates become
// U+FFFD. A string with no escape and only printable ASCII is returned as
// a slice of the text.
func (w *writer) str() ([]byte, error) {
	src := w.src
	start := w.pos + 1
	i := start
	for i < len(src) {
		c := src[i]
		if c == '"' {
			w.pos = i + 1
			return src[start:i], nil
		}
		if c == '\\' || c < ' ' || c >= utf8.RuneSelf {
			break
		}
		i++
	}
	b := append([]byte(nil), src[start:i]...)
	for i < len(src) {
		switch c := src[i]; {
		case c == '"':
			w.pos = i + 1
			return b, nil
		case c == '\\':
			if i+1 >= len(src) {
				return nil, ErrSyntax
			}
			switch e := src[i+1]; e {
			case '"', '\\', '/':
				b = append(b, e)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := hex4(src[i:])
				if r < 0 {
					return nil, ErrSyntax
				}
				i += 6
				if utf16.IsSurrogate(r) {
					if pair := utf16.DecodeRune(r, hex4(src[i:])); pair != unicode.ReplacementChar {
						r = pair
						i += 6
					} else {
						r = unicode.ReplacementChar
					}
				}
				if r == 0 {
					w.nul = true
				}
				b = utf8.AppendRune(b, r)
				continue
			default:
				return nil, ErrSyntax
			}
			i += 2
		case c < ' ':
			return nil, ErrSyntax
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRune(src[i:])
			b = utf8.AppendRune(b, r)
			i += size
		}
	}
	return nil, ErrSyntax
}

// hex4 reads the escape \uXXXX at the start of s, or returns -1.
func hex4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

const hex = "0123456789abcdef"

// appendString is encoding/json's string encoder.
func appendString[S []byte | string](dst []byte, src S, escapeHTML bool) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(src); {
		if b := src[i]; b < utf8.RuneSelf {
			if safe(b, escapeHTML) {
				i++
				continue
			}
			dst = append(dst, src[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		n := min(len(src)-i, utf8.UTFMax)
		c, size := utf8.DecodeRuneInString(string(src[i : i+n]))
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, src[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, src[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, src[start:]...)
	return append(dst, '"')
}

// safe reports whether an ASCII byte stands for itself inside a string.
func safe(b byte, escapeHTML bool) bool {
	switch {
	case b < ' ', b == '"', b == '\\':
		return false
	case escapeHTML && (b == '<' || b == '>' || b == '&'):
		return false
	}
	return true
}
