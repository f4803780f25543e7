package http

import (
	"fmt"
	"testing"
)

// An answer is encoded once per key, and the answers kept stay within
// their bounds.
func TestAnswersEncodeOncePerKey(t *testing.T) {
	a := newAnswers()
	first, err := a.encoded("ada\x00/v1/workspaces\x00\"3\"", map[string]int{"version": 3})
	if err != nil {
		t.Fatal(err)
	}
	if string(first) != "{\"version\":3}\n" {
		t.Fatalf("encoded %q", first)
	}
	// Same key: the bytes kept, not a new encoding of another body.
	again, err := a.encoded("ada\x00/v1/workspaces\x00\"3\"", map[string]int{"version": 4})
	if err != nil || string(again) != string(first) {
		t.Fatalf("second answer %q, %v; want the first one's bytes", again, err)
	}
	for i := range 2 * maxAnswers {
		if _, err := a.encoded(fmt.Sprint("key", i), i); err != nil {
			t.Fatal(err)
		}
	}
	if len(a.m) > maxAnswers || a.bytes > maxAnswerBytes {
		t.Fatalf("%d answers, %d bytes kept; bounds %d, %d", len(a.m), a.bytes, maxAnswers, maxAnswerBytes)
	}
	if _, err := a.encoded("bad", func() {}); err == nil {
		t.Fatal("a body JSON cannot encode was answered")
	}
}
