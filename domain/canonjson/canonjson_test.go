package canonjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// reference is the round trip Append must reproduce: decode into an
// interface value with numbers kept, encode back with encoding/json.
func reference(src []byte, escapeHTML bool) ([]byte, error) {
	if !json.Valid(src) {
		return nil, ErrSyntax
	}
	dec := json.NewDecoder(bytes.NewReader(src))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(escapeHTML)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

var seeds = []string{
	`{}`, `[]`, `null`, `true`, `false`, `0`, `-0`, `1.5e-7`, `-12E+3`, `""`,
	` { "b" : 1 , "a" : [ 1, 2 , {"z":null,"y":false} ] } `,
	`{"a":1,"a":2}`, `{"a":{"x":1},"b":2,"a":{"y":2}}`,
	`{"é":1,"e":2,"\u00e9":3,"E":4,"":5}`,
	`{"s":"<&>\u2028\u2029\t\n\r\b\f\u0001\u001f\u007f\"\\\/"}`,
	`"\ud83d\ude00 \ud83d x \ude00 \ud83d\u0041 \uD83D\uDE00"`,
	"\"\xff\xfe invalid \xc3\"", "\"caf\xc3\xa9 \xe2\x80\xa8\"",
	`{"n":[1,1.0,1e2,100000000000000000000000,0.1e-400]}`,
	`{"nul":"a\u0000b"}`, `{"a\u0000":1}`,
	`[1,]`, `{"a":1,}`, `{"a" 1}`, `01`, `1.`, `-`, `1e`, `tru`, `nulls`, `"abc`, "\"a\tb\"",
	`"\x"`, `"\u12"`, `[1 2]`, `{} {}`, `{"a":1}x`, ``, `   `,
}

func TestAppendIsTheRoundTripOfEncodingJSON(t *testing.T) {
	for _, s := range seeds {
		for _, html := range []bool{false, true} {
			check(t, []byte(s), html)
		}
	}
}

func FuzzAppend(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, src []byte, html bool) {
		check(t, src, html)
	})
}

func check(t *testing.T, src []byte, html bool) {
	t.Helper()
	want, wantErr := reference(src, html)
	got, err := Append([]byte("prefix"), src, Options{EscapeHTML: html})
	if wantErr != nil {
		if !errors.Is(err, ErrSyntax) {
			t.Fatalf("Append(%q) = %q, %v; encoding/json refuses it (%v)", src, got, err, wantErr)
		}
		if string(got) != "prefix" {
			t.Fatalf("Append(%q) changed dst on error: %q", src, got)
		}
		return
	}
	if err != nil || string(got) != "prefix"+string(want) {
		t.Fatalf("Append(%q, html %v) = %q, %v; want %q", src, html, got, err, want)
	}
}

func TestDeepNestingIsRefusedAsEncodingJSONDoes(t *testing.T) {
	ok := strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)
	if _, err := Append(nil, []byte(ok), Options{}); err != nil {
		t.Fatalf("nesting of %d: %v", maxDepth, err)
	}
	deep := strings.Repeat(`{"a":`, maxDepth+1) + "1" + strings.Repeat("}", maxDepth+1)
	if json.Valid([]byte(deep)) {
		t.Fatal("encoding/json accepts the deep text: maxDepth is wrong")
	}
	if _, err := Append(nil, []byte(deep), Options{}); !errors.Is(err, ErrSyntax) {
		t.Fatalf("nesting of %d: %v, want ErrSyntax", maxDepth+1, err)
	}
}

func TestRejectNUL(t *testing.T) {
	cases := []struct {
		in   string
		want error
	}{
		{`{"a":"x\u0000"}`, ErrNUL},
		{`{"\u0000":1}`, ErrNUL},
		{`["\\u0000"]`, nil}, // an escaped backslash, then "u0000"
		{`{"a":"x\u0000",}`, ErrSyntax},
	}
	for _, c := range cases {
		if _, err := Append(nil, []byte(c.in), Options{RejectNUL: true}); !errors.Is(err, c.want) {
			t.Errorf("Append(%s) = %v, want %v", c.in, err, c.want)
		}
	}
}

func TestNumberSpellsEveryNumber(t *testing.T) {
	var seen []string
	round := func(dst, literal []byte) ([]byte, error) {
		seen = append(seen, string(literal))
		return append(dst, '#'), nil
	}
	got, err := Append(nil, []byte(`{"b":[1.50,-0],"a":2e3}`), Options{Number: round})
	if err != nil || string(got) != `{"a":#,"b":[#,#]}` {
		t.Fatalf("Append = %s, %v", got, err)
	}
	if strings.Join(seen, " ") != "1.50 -0 2e3" {
		t.Fatalf("Number saw %v", seen)
	}
	refuse := errors.New("refused")
	_, err = Append(nil, []byte(`[1]`), Options{Number: func([]byte, []byte) ([]byte, error) { return nil, refuse }})
	if !errors.Is(err, refuse) {
		t.Fatalf("Append = %v, want the Number error", err)
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", "<&>", "tab\tquote\"", "\u2028", "\xff", "é"} {
		for _, html := range []bool{false, true} {
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(html)
			_ = enc.Encode(s)
			if got, want := string(AppendString(nil, s, html)), strings.TrimSuffix(b.String(), "\n"); got != want {
				t.Errorf("AppendString(%q, %v) = %s, want %s", s, html, got, want)
			}
		}
	}
}

func BenchmarkAppend(b *testing.B) {
	src := []byte(`{"message_id":"0190a000-0000-7000-8000-000000000001","author_id":"0190a000-0000-7000-8000-000000000002",` +
		`"role":"user","content":"hello there,\nhow are you? \u00e9t\u00e9","metadata":{"client":"web","sent":1733467200123}}`)
	b.Run("canonjson", func(b *testing.B) {
		var dst []byte
		for b.Loop() {
			dst, _ = Append(dst[:0], src, Options{})
		}
	})
	b.Run("encoding/json round trip", func(b *testing.B) {
		for b.Loop() {
			_, _ = reference(src, false)
		}
	})
}
