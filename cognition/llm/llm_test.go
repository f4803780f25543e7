package llm_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/engramhq/engram/cognition"
	"github.com/engramhq/engram/cognition/inmem"
	"github.com/engramhq/engram/cognition/llm"
	"github.com/engramhq/engram/domain/memory"
	"github.com/engramhq/engram/eventstore"
)

// fakeOpenAI is a local OpenAI-compatible chat-completions endpoint.
type fakeOpenAI struct {
	mu       sync.Mutex
	requests []chatRequest
	auth     []string
	// respond writes the answer to one request.
	respond func(w http.ResponseWriter, r *http.Request)
}

type chatRequest struct {
	Model    string `json:"model"`
	Stream   bool   `json:"stream"`
	Messages []struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	} `json:"messages"`
}

func (f *fakeOpenAI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/chat/completions" {
		http.NotFound(w, r)
		return
	}
	var req chatRequest
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.requests = append(f.requests, req)
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	f.mu.Unlock()
	f.respond(w, r)
}

// streamChunks answers with one server-sent event per piece, then [DONE].
func streamChunks(pieces ...string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i, p := range pieces {
			chunk := map[string]any{"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "test-model",
				"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"content": p}, "finish_reason": nil}}}
			if i == 0 {
				chunk["choices"].([]any)[0].(map[string]any)["delta"].(map[string]any)["role"] = "assistant"
			}
			data, _ := json.Marshal(chunk)
			fmt.Fprintf(w, "data: %s\n\n", data)
			w.(http.Flusher).Flush()
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}
}

type history []cognition.Turn

func (h history) Recent(context.Context, string, string, int) ([]cognition.Turn, error) {
	return h, nil
}

type progress struct {
	mu     sync.Mutex
	deltas []string
	first  chan struct{}
}

func (p *progress) Report(context.Context, int, string) error { return nil }
func (p *progress) Status(context.Context, string)            {}
func (p *progress) Delta(_ context.Context, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.deltas = append(p.deltas, text)
	if len(p.deltas) == 1 && p.first != nil {
		close(p.first)
	}
}

var now = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

func newExpert(t *testing.T, f *fakeOpenAI) (*llm.Expert, cognition.Task) {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	ws := uuid.NewString()
	mem := inmem.New()
	data, _ := json.Marshal(memory.ItemStored{ItemID: uuid.NewString(), Type: memory.TypeEntity, Content: "Ada is a mathematician",
		Metadata: json.RawMessage(`{"name":"Ada"}`)})
	if err := mem.Apply(context.Background(), eventstore.Event{StreamID: memory.StreamID(ws), StreamType: memory.StreamType,
		StreamVersion: 1, Type: memory.EventItemStored, SchemaVersion: 1, Data: data, RecordedAt: now}); err != nil {
		t.Fatal(err)
	}
	turns := history{{Role: "user", Content: "Hi, I am Grace."}, {Role: "assistant", Content: "Hello Grace."}}
	e, err := llm.New(llm.Config{BaseURL: srv.URL + "/v1", Model: "test-model", APIKey: "sk-test", Now: func() time.Time { return now }}, turns, mem)
	if err != nil {
		t.Fatal(err)
	}
	return e, cognition.Task{ID: uuid.NewString(), WorkspaceID: ws, ConversationID: uuid.NewString(), MessageID: uuid.NewString(),
		Expert: "llm", Input: "Who is Ada?", Attempt: 1}
}

func TestStreamsTheAnswer(t *testing.T) {
	f := &fakeOpenAI{respond: streamChunks("Ada ", "was a ", "mathematician.")}
	e, task := newExpert(t, f)
	var p progress
	res, err := e.Handle(context.Background(), task, &p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Output != "Ada was a mathematician." {
		t.Fatalf("output = %q", res.Output)
	}
	if strings.Join(p.deltas, "|") != "Ada |was a |mathematician." {
		t.Fatalf("deltas = %q", p.deltas)
	}
	req := f.requests[0]
	if req.Model != "test-model" || !req.Stream || f.auth[0] != "Bearer sk-test" {
		t.Fatalf("request = %+v, auth %q", req, f.auth[0])
	}
	var roles []string
	for _, m := range req.Messages {
		roles = append(roles, m.Role)
	}
	if strings.Join(roles, ",") != "system,user,assistant,user" {
		t.Fatalf("roles = %v", roles)
	}
	system := req.Messages[0].Content
	if !strings.Contains(system, "Known entities: Ada.") || !strings.Contains(system, "\n- Ada is a mathematician") {
		t.Fatalf("system prompt lacks the memory: %q", system)
	}
	if req.Messages[1].Content != "Hi, I am Grace." || req.Messages[3].Content != "Who is Ada?" {
		t.Fatalf("conversation = %+v", req.Messages)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		status    int
		permanent bool
	}{
		{http.StatusInternalServerError, false},
		{http.StatusTooManyRequests, false},
		{http.StatusBadGateway, false},
		{http.StatusUnauthorized, true},
		{http.StatusBadRequest, true},
		{http.StatusNotFound, true},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			f := &fakeOpenAI{respond: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				fmt.Fprint(w, `{"error":{"message":"nope","type":"server_error","code":"x"}}`)
			}}
			e, task := newExpert(t, f)
			_, err := e.Handle(context.Background(), task, &progress{})
			if err == nil {
				t.Fatal("no error")
			}
			if cognition.IsPermanent(err) != tt.permanent {
				t.Fatalf("permanent = %v for %v", cognition.IsPermanent(err), err)
			}
			if !strings.Contains(err.Error(), fmt.Sprint(tt.status)) || strings.Contains(err.Error(), "sk-test") {
				t.Fatalf("error = %q", err)
			}
			if len(f.requests) != 1 {
				t.Fatalf("%d requests: the client must not retry by itself", len(f.requests))
			}
		})
	}
}

func TestCancelStopsTheStream(t *testing.T) {
	disconnected := make(chan struct{})
	f := &fakeOpenAI{respond: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		data, _ := json.Marshal(map[string]any{"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
			"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"content": "Thinking"}}}})
		fmt.Fprintf(w, "data: %s\n\n", data)
		w.(http.Flusher).Flush()
		<-r.Context().Done() // stall until the client goes away
		close(disconnected)
	}}
	e, task := newExpert(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	p := &progress{first: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := e.Handle(ctx, task, p)
		done <- err
	}()
	select {
	case <-p.first:
	case <-time.After(5 * time.Second):
		t.Fatal("no delta streamed")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Handle did not return after cancel")
	}
	select {
	case <-disconnected:
	case <-time.After(5 * time.Second):
		t.Fatal("the request to the endpoint was not cancelled")
	}
}

func TestConfiguration(t *testing.T) {
	if _, err := llm.New(llm.Config{Model: "m"}, history{}, inmem.New()); err == nil {
		t.Fatal("no base URL accepted")
	}
	if _, err := llm.New(llm.Config{BaseURL: "http://x", Model: "m"}, nil, inmem.New()); err == nil {
		t.Fatal("no history accepted")
	}
}
