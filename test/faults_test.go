package test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/engramhq/engram/test/enginetest"
)

// poster posts messages to a conversation from several goroutines until
// stopped, and keeps what the server answered: the ids of acknowledged
// (201) messages, counts by status, and any answer that breaks the rules
// for failures (a 5xx that is not a 503 problem with Retry-After).
type poster struct {
	url, token    string
	conversations []string
	client        *http.Client

	mu        sync.Mutex
	acked     []string
	statuses  map[int]int
	transport int
	bad       []string
	last201   time.Time
	first503  time.Time
	stop      chan struct{}
	wg        sync.WaitGroup
	seq       atomic.Int64
}

func newPoster(inst *enginetest.Instance, c *enginetest.Client, conversations ...string) *poster {
	return &poster{url: inst.URL, token: c.Token, conversations: conversations, statuses: map[int]int{},
		client: &http.Client{Timeout: 10 * time.Second}, stop: make(chan struct{})}
}

func (p *poster) start(workers int) {
	for i := range workers {
		conversation := p.conversations[i%len(p.conversations)]
		p.wg.Go(func() {
			for {
				select {
				case <-p.stop:
					return
				default:
				}
				if !p.post(conversation) {
					time.Sleep(20 * time.Millisecond) // back off after a failure, as a client would
				}
			}
		})
	}
}

// post sends one message; it reports whether it was acknowledged.
func (p *poster) post(conversation string) bool {
	body := fmt.Sprintf(`{"content":"load %d"}`, p.seq.Add(1))
	req, _ := http.NewRequest("POST", p.url+"/v1/conversations/"+conversation+"/messages", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+p.token)
	resp, err := p.client.Do(req)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.transport++
		return false
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	p.statuses[resp.StatusCode]++
	switch {
	case resp.StatusCode == http.StatusCreated:
		var m struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(raw, &m) != nil || m.ID == "" {
			p.bad = append(p.bad, fmt.Sprintf("201 without a message id: %.200s", raw))
			return false
		}
		p.acked = append(p.acked, m.ID)
		p.last201 = time.Now()
		return true
	case resp.StatusCode == http.StatusServiceUnavailable:
		if p.first503.IsZero() {
			p.first503 = time.Now()
		}
		if resp.Header.Get("Retry-After") == "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") ||
			!bytes.Contains(raw, []byte(`"status":503`)) {
			p.bad = append(p.bad, fmt.Sprintf("503 without Retry-After or problem JSON: %v %.200s", resp.Header, raw))
		}
	case resp.StatusCode >= 500:
		p.bad = append(p.bad, fmt.Sprintf("status %d: %.200s", resp.StatusCode, raw))
	}
	return false
}

func (p *poster) ackedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.acked)
}

func (p *poster) halt() {
	close(p.stop)
	p.wg.Wait()
}

// wantLoggedOnce checks that every acknowledged message id has exactly one
// message_posted event in the log.
func wantLoggedOnce(t *testing.T, db *sql.DB, acked []string) {
	t.Helper()
	logged := map[string]int{}
	var (
		id string
		n  int
	)
	eachRow(t, db, `SELECT data->>'message_id', count(*) FROM events
		WHERE type = 'conversation.message_posted' GROUP BY 1`, nil, []any{&id, &n}, func() { logged[id] = n })
	for _, id := range acked {
		if logged[id] != 1 {
			t.Errorf("acknowledged message %s is in the log %d times, want once", id, logged[id])
		}
	}
}

func readyStatus(inst *enginetest.Instance) (int, string) {
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(inst.URL + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// SIGTERM under load: writers keep posting and a live stream is open when
// the process is told to stop. Requests in flight finish, every
// acknowledged message is in the log exactly once, the live stream ends
// with a retry: frame, and the process exits 0 within its shutdown timeout.
func TestFaultSIGTERMUnderLoad(t *testing.T) {
	inst := enginetest.Start(t, enginetest.Options{Env: quietCognition()})
	ada := inst.Signup(t, "Ada")
	wsID := ada.Must(http.StatusCreated, "POST", "/v1/workspaces", map[string]any{"name": "Busy"}).Map(t)["id"].(string)
	convs := conversations(t, ada, wsID, 4)
	stream := ada.Stream("/v1/events")
	if stream.Status != http.StatusOK {
		t.Fatalf("stream status %d: %s", stream.Status, stream.Body)
	}
	// Keep the stream read so the server is never held back by it; keep its
	// last frame.
	var last enginetest.Frame
	events := 0
	streamDone := make(chan struct{})
	go func() {
		defer close(streamDone)
		for f := range stream.Frames() {
			last = f
			if f.IsEvent() {
				events++
			}
		}
	}()
	p := newPoster(inst, ada, convs...)
	p.start(8)
	for deadline := time.Now().Add(10 * time.Second); p.ackedCount() < 100; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			p.halt()
			t.Fatalf("only %d messages acknowledged in 10 s before the signal", p.ackedCount())
		}
	}
	start := time.Now()
	err := inst.Stop(t)
	took := time.Since(start)
	p.halt()
	if err != nil {
		t.Fatalf("engram exited with %v after SIGTERM, want 0", err)
	}
	if took > 10*time.Second {
		t.Fatalf("engram took %s to stop, more than its 10 s shutdown timeout", took)
	}
	select {
	case <-streamDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the live stream was still open 5 s after the process exited")
	}
	if last.Retry <= 0 {
		t.Errorf("the live stream's last frame is %+v, want a retry: frame", last)
	}
	for _, b := range p.bad {
		t.Error(b)
	}
	db := openDB(t, inst.DatabaseURL)
	wantLoggedOnce(t, db, p.acked)
	t.Logf("SIGTERM with 8 writers and a live stream: exit 0 in %s; %d acknowledged, all logged once; statuses %v, %d transport errors after the listener closed; the stream got %d events and ended with retry: %d",
		took.Round(time.Millisecond), len(p.acked), p.statuses, p.transport, events, last.Retry)
}

func conversations(t *testing.T, c *enginetest.Client, wsID string, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		ids = append(ids, c.Must(http.StatusCreated, "POST", "/v1/workspaces/"+wsID+"/conversations",
			map[string]any{"title": fmt.Sprint("load ", i)}).Map(t)["id"].(string))
	}
	return ids
}

// PostgreSQL restarted during a write load (a private cluster on a free
// port): while it is down, writes fail with 503 problems carrying
// Retry-After and /readyz says not ready; once it is back Engram recovers
// by itself, and every acknowledged message is in the log exactly once.
func TestFaultPostgresRestart(t *testing.T) {
	pg := enginetest.StartPostgres(t)
	url := pg.CreateDatabase("engram")
	inst := enginetest.Start(t, enginetest.Options{DatabaseURL: url, Env: quietCognition()})
	ada := inst.Signup(t, "Ada")
	wsID := ada.Must(http.StatusCreated, "POST", "/v1/workspaces", map[string]any{"name": "Outage"}).Map(t)["id"].(string)
	p := newPoster(inst, ada, conversations(t, ada, wsID, 4)...)
	p.start(4)
	defer func() {
		select {
		case <-p.stop:
		default:
			p.halt()
		}
	}()
	waitFor := func(what string, within time.Duration, ok func() bool) time.Duration {
		t.Helper()
		start := time.Now()
		for !ok() {
			if time.Since(start) > within {
				t.Fatalf("%s: not within %s", what, within)
			}
			time.Sleep(20 * time.Millisecond) // a poll interval
		}
		return time.Since(start)
	}
	waitFor("50 messages acknowledged before the outage", 10*time.Second, func() bool { return p.ackedCount() >= 50 })

	pg.Stop()
	down := time.Now()
	ackedAtStop := p.ackedCount()
	first503 := waitFor("a 503 while PostgreSQL is down", 10*time.Second, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return !p.first503.IsZero()
	})
	notReady := waitFor("/readyz not ready while PostgreSQL is down", 10*time.Second, func() bool {
		status, _ := readyStatus(inst)
		return status == http.StatusServiceUnavailable
	})
	_, report := readyStatus(inst)
	waitFor("40 answers of 503 while PostgreSQL is down", 10*time.Second, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.statuses[http.StatusServiceUnavailable] >= 40
	})
	ackedAtStart := p.ackedCount()
	if ackedAtStart != ackedAtStop {
		t.Errorf("%d messages acknowledged while PostgreSQL was down", ackedAtStart-ackedAtStop)
	}

	pg.Start()
	up := time.Now()
	recovered := waitFor("a message acknowledged after PostgreSQL is back", 20*time.Second, func() bool { return p.ackedCount() > ackedAtStart+10 })
	ready := waitFor("/readyz ready again", 20*time.Second, func() bool {
		status, _ := readyStatus(inst)
		return status == http.StatusOK
	})
	p.halt()
	for _, b := range p.bad {
		t.Error(b)
	}
	db := openDB(t, url)
	wantLoggedOnce(t, db, p.acked)
	t.Logf("PostgreSQL down for %s: first 503 after %s, /readyz not ready after %s (%s); back up: writes acknowledged again after %s, ready after %s; %d acknowledged, all logged once; statuses %v, %d transport errors",
		up.Sub(down).Round(time.Millisecond), first503.Round(time.Millisecond), notReady.Round(time.Millisecond), strings.TrimSpace(report),
		recovered.Round(time.Millisecond), ready.Round(time.Millisecond), len(p.acked), p.statuses, p.transport)
}
