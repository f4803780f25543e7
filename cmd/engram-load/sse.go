package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// messagePosted is the event type of a posted message.
const messagePosted = "conversation.message_posted"

// sentMarker precedes the send time (Unix nanoseconds) that every message of
// a load run carries in its metadata; it lets a subscriber time the delivery
// without waiting for the POST's answer.
var sentMarker = []byte(`"load_sent_ns":`)

// errSSEUnavailable means the server has no such stream (404).
var errSSEUnavailable = errors.New("SSE not available")

// subscriber holds one live event stream, reconnecting with Last-Event-ID
// when the server closes it, and records which message events it received.
type subscriber struct {
	client *http.Client
	url    string
	token  string
	// base is the position the stream starts after (sent as Last-Event-ID).
	base int64
	// conv is the index of the conversation the stream follows, or -1 for a
	// workspace stream (every conversation).
	conv int

	// Read by others while the stream runs.
	messages   atomic.Int64 // distinct messages of this run received
	reconnects atomic.Int64

	// Owned by the stream goroutine until it returns.
	lastID     int64
	seen       bitset
	duplicates int64
	delivery   histogram
	unmarked   int64 // message events this run did not post
	firstErr   error
}

// connect opens the stream once and returns its body, or an error; a 404 is
// errSSEUnavailable.
func (s *subscriber) connect(ctx context.Context) (io.ReadCloser, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+s.token)
	last := max(s.lastID, s.base)
	if last > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(last, 10))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			return nil, resp.StatusCode, errSSEUnavailable
		}
		return nil, resp.StatusCode, fmt.Errorf("status %d", resp.StatusCode)
	}
	return resp.Body, resp.StatusCode, nil
}

// run reads the stream until ctx ends. connected is called once with the
// outcome of the first connection (status 0 when it failed before an
// answer). A stream the server closes is reopened from the last event id.
func (s *subscriber) run(ctx context.Context, connected func(connectResult)) {
	body, status, err := s.connect(ctx)
	connected(connectResult{status: status, err: err})
	if err != nil {
		s.firstErr = err
		return
	}
	for {
		s.read(ctx, body)
		body.Close()
		if ctx.Err() != nil {
			return
		}
		// Reopen, as EventSource does, from the last event received.
		for {
			t := time.NewTimer(50 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			s.reconnects.Add(1)
			body, _, err = s.connect(ctx)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				return
			}
		}
	}
}

type connectResult struct {
	status int
	err    error
}

// read parses frames until the body ends.
func (s *subscriber) read(ctx context.Context, body io.Reader) {
	r := bufio.NewReaderSize(body, 64<<10)
	var (
		id      int64
		hasID   bool
		event   []byte
		data    []byte
		long    []byte
		scratch = make([]byte, 0, 64)
	)
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = r.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil {
			return
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			if hasID {
				s.lastID = id
			}
			if string(event) == messagePosted && hasID {
				s.message(id, data, time.Now())
			}
			hasID, event, data = false, event[:0], data[:0]
			continue
		}
		if line[0] == ':' {
			continue // comment: heartbeat
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "id":
			n, err := strconv.ParseInt(string(value), 10, 64)
			id, hasID = n, err == nil
		case "event":
			event = append(scratch[:0], value...)
			scratch = event
		case "data":
			if len(data) > 0 {
				data = append(data, '\n')
			}
			data = append(data, value...)
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// message records one message event received at t. Messages this run did
// not post (no send time: the assistant's replies) are only counted.
func (s *subscriber) message(id int64, data []byte, t time.Time) {
	if id <= s.base {
		return
	}
	sent, ok := sentTime(data)
	if !ok {
		s.unmarked++
		return
	}
	if !s.seen.set(uint64(id - s.base)) {
		s.duplicates++
		return
	}
	s.messages.Add(1)
	s.delivery.record(t.Sub(time.Unix(0, sent)))
}

// sentTime finds the send time a load message carries in its metadata.
func sentTime(data []byte) (int64, bool) {
	i := bytes.Index(data, sentMarker)
	if i < 0 {
		return 0, false
	}
	rest := bytes.TrimLeft(data[i+len(sentMarker):], " ")
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	n, err := strconv.ParseInt(string(rest[:end]), 10, 64)
	return n, err == nil
}

// bitset is a growable set of small non-negative integers.
type bitset []uint64

// set adds i and reports whether it was new.
func (b *bitset) set(i uint64) bool {
	w := int(i / 64)
	if w >= len(*b) {
		grown := make([]uint64, w+1+len(*b)/2)
		copy(grown, *b)
		*b = grown
	}
	mask := uint64(1) << (i % 64)
	if (*b)[w]&mask != 0 {
		return false
	}
	(*b)[w] |= mask
	return true
}

// has reports whether i is in the set.
func (b bitset) has(i uint64) bool {
	w := int(i / 64)
	return w < len(b) && b[w]&(uint64(1)<<(i%64)) != 0
}
