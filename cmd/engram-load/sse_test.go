package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// A stream that sends comments, other events, a duplicate and a frame
// without a send time, then closes; the subscriber resumes from the last id
// and gets the rest.
func TestSubscriberReadsFramesAndResumes(t *testing.T) {
	sent := time.Now().Add(-5 * time.Millisecond).UnixNano()
	msg := func(id int) string {
		return fmt.Sprintf("id: %d\nevent: %s\ndata: {\"data\":{\"metadata\":{\"load_run\":\"r\",\"load_sent_ns\":%d}}}\n\n", id, messagePosted, sent)
	}
	var (
		mu          sync.Mutex
		lastEventID []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		mu.Lock()
		lastEventID = append(lastEventID, r.Header.Get("Last-Event-ID"))
		n := len(lastEventID)
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		switch n {
		case 1:
			fmt.Fprint(w, "retry: 1000\n\n: ping\n\n")
			fmt.Fprint(w, msg(9)) // at or before the start: not counted
			fmt.Fprint(w, msg(11), "id: 12\nevent: conversation.updated\ndata: {}\n\n", msg(13), msg(13))
			fmt.Fprint(w, "id: 14\r\nevent: conversation.message_posted\r\ndata: {\"no\":\r\ndata: \"marker\"}\r\n\r\n")
		default:
			fmt.Fprint(w, msg(15))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}
	}))
	defer srv.Close()

	s := &subscriber{client: srv.Client(), url: srv.URL, token: "tok", base: 10, conv: -1}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	var first connectResult
	go func() {
		defer close(done)
		s.run(ctx, func(c connectResult) { first = c })
	}()
	deadline := time.Now().Add(10 * time.Second)
	for s.messages.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done

	if first.err != nil || first.status != http.StatusOK {
		t.Fatalf("first connection: %d, %v", first.status, first.err)
	}
	for _, id := range []uint64{1, 3, 5} {
		if !s.seen.has(id) {
			t.Errorf("message %d not recorded", 10+id)
		}
	}
	if s.seen.has(2) || s.seen.has(4) {
		t.Error("a conversation.updated frame or a message of another writer was counted as this run's")
	}
	if s.messages.Load() != 3 || s.duplicates != 1 || s.unmarked != 1 || s.delivery.n != 3 {
		t.Errorf("messages %d, duplicates %d, unmarked %d, timed %d; want 3, 1, 1, 3",
			s.messages.Load(), s.duplicates, s.unmarked, s.delivery.n)
	}
	if d := s.delivery.quantile(0); d < 5*time.Millisecond {
		t.Errorf("delivery time %v, want at least the 5ms since the send time", d)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lastEventID) < 2 || lastEventID[0] != "10" || lastEventID[1] != "14" {
		t.Errorf("Last-Event-ID of the connections = %q, want 10 then 14 (the last id received)", lastEventID)
	}
	if s.reconnects.Load() < 1 {
		t.Error("no reconnection counted")
	}
}

func TestSubscriberReportsMissingStreams(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	s := &subscriber{client: srv.Client(), url: srv.URL + "/v1/workspaces/x/events", token: "tok"}
	var got connectResult
	s.run(t.Context(), func(c connectResult) { got = c })
	if got.status != http.StatusNotFound || !errors.Is(got.err, errSSEUnavailable) {
		t.Fatalf("connect = %d, %v; want 404, %v", got.status, got.err, errSSEUnavailable)
	}
}

func TestSentTime(t *testing.T) {
	for _, tt := range []struct {
		data string
		want int64
		ok   bool
	}{
		{`{"metadata":{"load_sent_ns":1750000000123456789}}`, 1750000000123456789, true},
		{`{"load_sent_ns": 42,"x":1}`, 42, true},
		{`{"load_sent_ns":"x"}`, 0, false},
		{`{"content":"hi"}`, 0, false},
	} {
		got, ok := sentTime([]byte(tt.data))
		if got != tt.want || ok != tt.ok {
			t.Errorf("sentTime(%s) = %d, %v; want %d, %v", tt.data, got, ok, tt.want, tt.ok)
		}
	}
}

func TestBitset(t *testing.T) {
	var b bitset
	for _, i := range []uint64{0, 63, 64, 10_000} {
		if !b.set(i) {
			t.Errorf("set(%d) on an empty slot reported a duplicate", i)
		}
		if b.set(i) || !b.has(i) {
			t.Errorf("set(%d) twice: not a duplicate, or not held", i)
		}
	}
	if b.has(1) || b.has(1<<30) {
		t.Error("holds what was never set")
	}
}
