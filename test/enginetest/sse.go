package enginetest

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Frame is one block of a Server-Sent Events stream: the fields up to a
// blank line. A heartbeat is a frame with only a Comment.
type Frame struct {
	// ID is the id: field ("" when absent).
	ID string
	// Event is the event: field ("" when absent).
	Event string
	// Data is the data: field; several data lines are joined with "\n".
	Data string
	// Retry is the retry: field in milliseconds, -1 when absent.
	Retry int
	// Comment is the text of a comment line (": ping" gives "ping").
	Comment string
}

// IsEvent reports whether the frame carries an event (an event or data
// field), as opposed to a comment or a lone retry.
func (f Frame) IsEvent() bool { return f.Event != "" || f.Data != "" }

// JSON decodes the frame's data into v, failing the test on error.
func (f Frame) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(f.Data), v); err != nil {
		t.Fatalf("frame data %q: %v", f.Data, err)
	}
}

// Map decodes the frame's data as a JSON object.
func (f Frame) Map(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	f.JSON(t, &m)
	return m
}

// Stream is a live SSE connection to an instance. Frames arrive on an
// unbuffered channel: a test that stops reading stops reading the socket too.
type Stream struct {
	t testing.TB
	// Status and Header are the response's.
	Status int
	Header http.Header
	// Body is the body of a refused stream (Status not 200).
	Body []byte

	frames chan Frame
	cancel context.CancelFunc
	done   chan struct{}
}

// streamWait bounds how long the Stream helpers wait for a frame.
const streamWait = 10 * time.Second

// Stream opens a live stream (GET path) as the client, with extra
// "Name: value" headers. It is closed when the test ends.
func (c *Client) Stream(path string, headers ...string) *Stream {
	c.t.Helper()
	return c.stream(path, 0, headers)
}

// SlowStream is Stream over a connection with a tiny receive buffer, for
// tests of clients that stop reading: the server's writes back up after a
// few kilobytes instead of a few megabytes.
func (c *Client) SlowStream(path string, headers ...string) *Stream {
	c.t.Helper()
	return c.stream(path, 4096, headers)
}

func (c *Client) stream(path string, receiveBuffer int, headers []string) *Stream {
	c.t.Helper()
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	if receiveBuffer > 0 {
		dialer.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, receiveBuffer)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	transport := &http.Transport{DialContext: dialer.DialContext, ReadBufferSize: 4096, DisableCompression: true}
	client := &http.Client{Transport: transport}

	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		cancel()
		c.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	SetHeaders(req, c.Token, headers...)
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		c.t.Fatalf("GET %s: %v", path, err)
	}
	s := &Stream{t: c.t, Status: resp.StatusCode, Header: resp.Header, frames: make(chan Frame), cancel: cancel, done: make(chan struct{})}
	c.t.Cleanup(s.Close)
	if resp.StatusCode != http.StatusOK {
		s.Body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		c.checkContract(req, &Response{Status: resp.StatusCode, Header: resp.Header, Body: s.Body})
		close(s.frames)
		close(s.done)
		transport.CloseIdleConnections()
		return s
	}
	// A live stream's body never ends: its status and headers are checked.
	c.checkContract(req, &Response{Status: resp.StatusCode, Header: resp.Header})
	go func() {
		defer close(s.done)
		defer close(s.frames)
		defer transport.CloseIdleConnections()
		defer resp.Body.Close()
		parseFrames(bufio.NewReaderSize(resp.Body, 4096), func(f Frame) bool {
			select {
			case s.frames <- f:
				return true
			case <-ctx.Done():
				return false
			}
		})
	}()
	return s
}

// parseFrames reads SSE blocks and hands each to emit until the stream ends
// or emit returns false.
func parseFrames(r *bufio.Reader, emit func(Frame) bool) {
	f := Frame{Retry: -1}
	empty := true
	var data []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return // a block not ended by a blank line is not dispatched
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			if !empty {
				f.Data = strings.Join(data, "\n")
				if !emit(f) {
					return
				}
			}
			f, empty, data = Frame{Retry: -1}, true, nil
			continue
		}
		empty = false
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			f.Comment = value
		case "id":
			f.ID = value
		case "event":
			f.Event = value
		case "data":
			data = append(data, value)
		case "retry":
			if n, err := strconv.Atoi(value); err == nil {
				f.Retry = n
			}
		}
	}
}

// Frames returns the channel of frames, closed when the stream ends.
func (s *Stream) Frames() <-chan Frame { return s.frames }

// Next returns the next frame of any kind, failing the test if none comes
// within 10 s or the stream ends.
func (s *Stream) Next() Frame {
	s.t.Helper()
	select {
	case f, ok := <-s.frames:
		if !ok {
			s.t.Fatalf("stream ended while a frame was expected (status %d: %s)", s.Status, s.Body)
		}
		return f
	case <-time.After(streamWait):
		s.t.Fatal("no frame within 10s")
	}
	return Frame{}
}

// NextEvent returns the next frame that carries an event, skipping
// heartbeats and retry lines.
func (s *Stream) NextEvent() Frame {
	s.t.Helper()
	for {
		if f := s.Next(); f.IsEvent() {
			return f
		}
	}
}

// Events returns the next n event frames.
func (s *Stream) Events(n int) []Frame {
	s.t.Helper()
	out := make([]Frame, 0, n)
	for len(out) < n {
		out = append(out, s.NextEvent())
	}
	return out
}

// Until returns the event frames up to and including the first for which
// stop returns true.
func (s *Stream) Until(stop func(Frame) bool) []Frame {
	s.t.Helper()
	var out []Frame
	for {
		f := s.NextEvent()
		out = append(out, f)
		if stop(f) {
			return out
		}
	}
}

// Rest reads the stream until the server closes it and returns every frame
// it had left; it fails the test if the stream is still open after 10 s.
func (s *Stream) Rest() []Frame {
	s.t.Helper()
	var out []Frame
	deadline := time.After(streamWait)
	for {
		select {
		case f, ok := <-s.frames:
			if !ok {
				return out
			}
			out = append(out, f)
		case <-deadline:
			s.t.Fatalf("stream still open after 10s; received %d frames", len(out))
		}
	}
}

// Quiet fails the test if an event frame arrives within d (heartbeats are
// ignored).
func (s *Stream) Quiet(d time.Duration) {
	s.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case f, ok := <-s.frames:
			if !ok {
				return
			}
			if f.IsEvent() {
				s.t.Fatalf("unexpected frame: event %q id %q data %s", f.Event, f.ID, f.Data)
			}
		case <-deadline:
			return
		}
	}
}

// Close ends the stream from the client's side and waits for its reader.
func (s *Stream) Close() {
	s.cancel()
	<-s.done
}
