package test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engramhq/engram/test/enginetest"
)

// abuseConnections is how many idle keep-alive connections the idle
// connection test holds open (ENGRAM_ABUSE_CONNECTIONS, default 2000); a
// quarter as many idle live streams are held open beside them.
func abuseConnections(t *testing.T) int {
	n := 2000
	if raw := os.Getenv("ENGRAM_ABUSE_CONNECTIONS"); raw != "" {
		v, err := strconv.Atoi(raw)
		if err != nil || v < 4 {
			t.Fatalf("ENGRAM_ABUSE_CONNECTIONS=%q: want an integer of at least 4", raw)
		}
		n = v
	}
	return n
}

// wantProblem fails the test unless r is a problem+json answer with status.
func wantProblem(t *testing.T, r *enginetest.Response, status int) {
	t.Helper()
	if r.Status != status || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/problem+json") {
		t.Fatalf("status %d (%s), want a %d problem: %.300s", r.Status, r.Header.Get("Content-Type"), status, r.Body)
	}
}

// quick checks that the server still answers a normal request fast.
func quick(t *testing.T, c *enginetest.Client, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	c.Must(http.StatusOK, "GET", "/v1/workspaces", nil)
	took := time.Since(start)
	if took > within {
		t.Fatalf("GET /v1/workspaces took %s, want under %s", took, within)
	}
	return took
}

// Hostile bodies: too large (declared or streamed) is 413, nested too deep
// is 400; each is a problem answer, nothing is stored, and the server
// serves the next client as before.
func TestAbuseHostileBodies(t *testing.T) {
	inst := enginetest.Start(t, enginetest.Options{Env: quietCognition()})
	ada := inst.Signup(t, "Ada")
	db := openDB(t, inst.DatabaseURL)
	before := countEvents(t, db)

	big := `{"name":"` + strings.Repeat("x", 2<<20) + `"}`
	wantProblem(t, ada.Do("POST", "/v1/workspaces", big), http.StatusRequestEntityTooLarge)

	// Streamed with no Content-Length: the limit holds while reading.
	req, err := http.NewRequest("POST", inst.URL+"/v1/workspaces", io.MultiReader(strings.NewReader(`{"name":"`),
		io.LimitReader(neverEnding('x'), 4<<20), strings.NewReader(`"}`)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+ada.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		// The server may close the connection once it has answered.
		t.Logf("streamed oversized body: %v", err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("streamed oversized body: status %d, want 413", resp.StatusCode)
		}
	}

	for _, levels := range []int{33, 1000, 200000} {
		deep := `{"name":"deep","config":` + strings.Repeat(`{"a":`, levels) + `1` + strings.Repeat(`}`, levels) + `}`
		r := ada.Do("POST", "/v1/workspaces", deep)
		if len(deep) > 1<<20 {
			wantProblem(t, r, http.StatusRequestEntityTooLarge)
		} else {
			wantProblem(t, r, http.StatusBadRequest)
		}
		arrays := `{"name":"deep","config":{"a":` + strings.Repeat(`[`, levels) + strings.Repeat(`]`, levels) + `}}`
		r = ada.Do("POST", "/v1/workspaces", arrays)
		if len(arrays) > 1<<20 {
			wantProblem(t, r, http.StatusRequestEntityTooLarge)
		} else {
			wantProblem(t, r, http.StatusBadRequest)
		}
	}
	// Just inside the limit is accepted.
	ok := `{"name":"deep","config":` + strings.Repeat(`{"a":`, 31) + `1` + strings.Repeat(`}`, 31) + `}`
	ada.Must(http.StatusCreated, "POST", "/v1/workspaces", ok)

	if after := countEvents(t, db); after != before+1 {
		t.Fatalf("events %d → %d: refused bodies changed the log", before, after)
	}
	t.Logf("after hostile bodies a normal request took %s", quick(t, ada, 2*time.Second))
}

type neverEnding byte

func (b neverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

// Slowloris: clients that dribble their request headers a byte at a time
// are cut off by the server's 5 s ReadHeaderTimeout, while other clients
// are served fast the whole time.
func TestAbuseSlowClients(t *testing.T) {
	inst := enginetest.Start(t, enginetest.Options{Env: quietCognition()})
	ada := inst.Signup(t, "Ada")
	const slow = 50
	request := "GET /v1/auth/me HTTP/1.1\r\nHost: engram\r\nAuthorization: Bearer " + ada.Token + "\r\nX-Padding: " + strings.Repeat("z", 200) + "\r\n\r\n"
	cut := make(chan time.Duration, slow)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range slow {
		conn, err := net.Dial("tcp", inst.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			closed := make(chan struct{})
			go func() { // the server closing the connection ends the read
				_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
				_, _ = io.Copy(io.Discard, conn)
				close(closed)
			}()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for i := 0; i < len(request)-2; i++ { // never finish the headers
				select {
				case <-closed:
					cut <- time.Since(start)
					return
				case <-stop:
					return
				case <-tick.C:
				}
				if _, err := conn.Write([]byte{request[i]}); err != nil {
					<-closed
					cut <- time.Since(start)
					return
				}
			}
			<-closed
			cut <- time.Since(start)
		}()
	}
	// Meanwhile other clients are served fast.
	var worst time.Duration
	for deadline := time.Now().Add(4 * time.Second); time.Now().Before(deadline); {
		worst = max(worst, quick(t, ada, time.Second))
		time.Sleep(50 * time.Millisecond) // pacing of the normal client, not a wait for a result
	}
	var cuts []time.Duration
	timeout := time.After(15 * time.Second)
	for len(cuts) < slow {
		select {
		case d := <-cut:
			cuts = append(cuts, d)
		case <-timeout:
			close(stop)
			wg.Wait()
			t.Fatalf("%d of %d slow clients were still connected after 15 s", slow-len(cuts), slow)
		}
	}
	wg.Wait()
	first, last := cuts[0], cuts[0]
	for _, d := range cuts {
		first, last = min(first, d), max(last, d)
	}
	if first < 4*time.Second || last > 9*time.Second {
		t.Fatalf("slow clients were cut after %s to %s, want about 5 s (ReadHeaderTimeout)", first, last)
	}
	t.Logf("%d slow clients cut after %s–%s; normal requests meanwhile: worst %s", slow, first.Round(time.Millisecond), last.Round(time.Millisecond), worst)
	quick(t, ada, time.Second)
}

// Many idle connections: ENGRAM_ABUSE_CONNECTIONS keep-alive connections
// that made one request and went quiet, and a quarter as many live streams
// that receive nothing. The server holds them all, its memory grows by a
// bounded amount per connection, and a normal client is still served fast.
func TestAbuseIdleConnections(t *testing.T) {
	n := abuseConnections(t)
	streams := n / 4
	inst := enginetest.Start(t, enginetest.Options{Env: map[string]string{
		"ENGRAM_SSE_MAX_CONNECTIONS_PER_USER": strconv.Itoa(streams + 16),
		"ENGRAM_ROUTER":                       quietCognition()["ENGRAM_ROUTER"],
		"ENGRAM_ROUTER_RULES":                 quietCognition()["ENGRAM_ROUTER_RULES"],
	}})
	ada := inst.Signup(t, "Ada")
	anon := inst.Client(t)
	rss := func() float64 {
		_, samples, _ := scrapeMetrics(t, anon)
		v, ok := samples["process_resident_memory_bytes"]
		if !ok {
			t.Fatal("/metrics has no process_resident_memory_bytes")
		}
		return v
	}
	base := rss()
	baseLatency := quick(t, ada, time.Second)

	start := time.Now()
	idle := openIdle(t, inst.Addr, n, "GET /healthz HTTP/1.1\r\nHost: engram\r\n\r\n", false)
	live := openIdle(t, inst.Addr, streams, "GET /v1/events HTTP/1.1\r\nHost: engram\r\nAccept: text/event-stream\r\nAuthorization: Bearer "+ada.Token+"\r\n\r\n", true)
	opened := time.Since(start)

	// Let the runtime settle, then measure.
	held := rss()
	var worst time.Duration
	for range 20 {
		worst = max(worst, quick(t, ada, 2*time.Second))
	}
	// Every idle connection is still served when it speaks again.
	for i, c := range []*idleConn{idle[0], idle[len(idle)/2], idle[len(idle)-1]} {
		if err := c.roundTrip("GET /healthz HTTP/1.1\r\nHost: engram\r\n\r\n"); err != nil {
			t.Fatalf("idle connection %d no longer served: %v", i, err)
		}
	}
	growth := held - base
	perConn := growth / float64(n+streams)
	t.Logf("%d idle keep-alive connections + %d idle live streams opened in %s; RSS %.1f MiB → %.1f MiB (+%.1f KiB per connection); GET /v1/workspaces %s before, worst of 20 while held %s",
		n, streams, opened.Round(time.Millisecond), base/(1<<20), held/(1<<20), perConn/1024, baseLatency, worst)
	if perConn > 128<<10 {
		t.Fatalf("RSS grew by %.1f KiB per idle connection, want at most 128 KiB", perConn/1024)
	}
	for _, c := range append(idle, live...) {
		c.conn.Close()
	}
	quick(t, ada, time.Second)
}

type idleConn struct {
	conn net.Conn
	r    *bufio.Reader
}

// roundTrip sends one request on the connection and reads its answer.
func (c *idleConn) roundTrip(request string) error {
	_ = c.conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.conn, request); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// openIdle opens n connections with 8 workers, each sending request and
// reading its answer: a whole response, or only the head of a live stream
// (which then stays open, unread).
func openIdle(t *testing.T, addr string, n int, request string, stream bool) []*idleConn {
	t.Helper()
	conns := make([]*idleConn, n)
	errs := make(chan error, n)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range next {
				conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					errs <- fmt.Errorf("connection %d: %w", i, err)
					return
				}
				c := &idleConn{conn: conn, r: bufio.NewReaderSize(conn, 1024)}
				conns[i] = c
				if !stream {
					if err := c.roundTrip(request); err != nil {
						errs <- fmt.Errorf("connection %d: %w", i, err)
						return
					}
					continue
				}
				_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.WriteString(conn, request); err != nil {
					errs <- fmt.Errorf("stream %d: %w", i, err)
					return
				}
				resp, err := http.ReadResponse(c.r, nil)
				if err != nil {
					errs <- fmt.Errorf("stream %d: %w", i, err)
					return
				}
				if resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("stream %d: status %d", i, resp.StatusCode)
					return
				}
				_ = conn.SetDeadline(time.Time{})
			}
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.conn.Close()
			}
		}
	})
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, c := range conns {
		_ = c.conn.SetDeadline(time.Time{})
	}
	return conns
}
