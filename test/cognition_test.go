package test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engramhq/engram/cognition/engine"
	"github.com/engramhq/engram/test/enginetest"
)

// cogWorld is a workspace with a conversation whose live stream is open.
type cogWorld struct {
	inst     *enginetest.Instance
	ada      *enginetest.Client
	ws, conv string
	stream   *enginetest.Stream
}

func newCogWorld(t *testing.T, inst *enginetest.Instance) *cogWorld {
	t.Helper()
	w := &cogWorld{inst: inst, ada: inst.Signup(t, "Ada")}
	w.ws = w.ada.Must(http.StatusCreated, "POST", "/v1/workspaces", map[string]any{"name": "Lab"}).Map(t)["id"].(string)
	w.conv = w.ada.Must(http.StatusCreated, "POST", "/v1/workspaces/"+w.ws+"/conversations", map[string]any{"title": "Chat"}).Map(t)["id"].(string)
	w.stream = w.ada.Stream("/v1/conversations/" + w.conv + "/events")
	if w.stream.Status != http.StatusOK {
		t.Fatalf("stream: %d %s", w.stream.Status, w.stream.Body)
	}
	return w
}

// post posts a message as Ada and returns its id.
func (w *cogWorld) post(t *testing.T, content string) string {
	t.Helper()
	return w.ada.Must(http.StatusCreated, "POST", "/v1/conversations/"+w.conv+"/messages", map[string]any{"content": content}).Map(t)["id"].(string)
}

// frame is an event frame of the live stream, decoded.
type frame struct {
	enginetest.Frame
	StreamID string `json:"stream_id"`
	Type     string `json:"type"`
	Data     struct {
		MessageID string `json:"message_id"`
		Role      string `json:"role"`
		AuthorID  string `json:"author_id"`
		Content   string `json:"content"`
		Action    string `json:"action"`
		Expert    string `json:"expert"`
	} `json:"data"`
	Metadata struct {
		CorrelationID string `json:"correlation_id"`
		CausationID   string `json:"causation_id"`
	} `json:"metadata"`
	EventID string `json:"event_id"`
	// received is when the test read the frame.
	received time.Time
}

func decodeFrame(t *testing.T, f enginetest.Frame) frame {
	t.Helper()
	out := frame{Frame: f, received: time.Now()}
	if f.ID != "" {
		f.JSON(t, &out)
	}
	return out
}

// untilReply reads the live stream up to the assistant's answer to the
// message messageID (the reply id is derived from it) and returns the
// frames from the message on, events and signals.
func (w *cogWorld) untilReply(t *testing.T, messageID string) []frame {
	t.Helper()
	reply := engine.ReplyID(engine.TaskID(messageID))
	var out []frame
	w.stream.Until(func(f enginetest.Frame) bool {
		d := decodeFrame(t, f)
		if d.Type == "conversation.message_posted" && d.Data.MessageID == messageID {
			out = nil // what came before the message is not its story
		}
		out = append(out, d)
		return d.Type == "conversation.message_posted" && d.Data.MessageID == reply
	})
	return out
}

// untilSettled is untilReply, and then reads on until the signal last
// came: signals travel apart from events, so the last of them may come
// after the reply. Frames after the reply are events of other work.
func (w *cogWorld) untilSettled(t *testing.T, messageID string, last func(enginetest.Frame) bool) (events, signals []frame) {
	t.Helper()
	frames := w.untilReply(t, messageID)
	signals = slices.Clone(frames)
	if !slices.ContainsFunc(frames, func(f frame) bool { return last(f.Frame) }) {
		for _, f := range w.stream.Until(last) {
			signals = append(signals, decodeFrame(t, f))
		}
	}
	return frames, signals
}

type memoryItem struct {
	ID       string         `json:"id"`
	Type     string         `json:"type"`
	Content  string         `json:"content"`
	Metadata map[string]any `json:"metadata"`
}

type memoryPage struct {
	Items      []memoryItem `json:"items"`
	NextCursor string       `json:"next_cursor"`
}

func (w *cogWorld) memory(t *testing.T, query string) memoryPage {
	t.Helper()
	var p memoryPage
	w.ada.Must(http.StatusOK, "GET", "/v1/workspaces/"+w.ws+"/memory?"+query, nil).JSON(t, &p)
	return p
}

// eventually polls check until it holds, for at most 10 s.
func eventually(t *testing.T, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The whole loop with no configuration: a message is routed, handed to the
// echo expert and answered, in order, on the conversation's live stream;
// the answer is in the messages list, the task is visible, and the
// workspace memory remembers. Replaying the log into the reactor from the
// start after a restart answers nothing twice.
func TestCognitionEndToEnd(t *testing.T) {
	inst := enginetest.Start(t, enginetest.Options{})
	w := newCogWorld(t, inst)

	var experts struct {
		Items []struct {
			Name         string   `json:"name"`
			Capabilities []string `json:"capabilities"`
		} `json:"items"`
	}
	w.ada.Must(http.StatusOK, "GET", "/v1/experts", nil).JSON(t, &experts)
	if len(experts.Items) != 2 || experts.Items[0].Name != "echo" || experts.Items[1].Name != "memory" {
		t.Fatalf("experts = %+v", experts)
	}

	start := time.Now()
	msg := w.post(t, "hello")
	frames, signalFrames := w.untilSettled(t, msg, func(f enginetest.Frame) bool {
		return f.Event == "status" && strings.Contains(f.Data, "Processing your request...")
	})
	latency := frames[len(frames)-1].received.Sub(start)
	// How fast is measured by make bench, not asserted here: a loaded
	// machine may take longer, and untilSettled bounds the wait.
	t.Logf("ECHO reply on the live stream %s after the post", latency.Round(time.Millisecond))

	// Events in order, each caused by what came before; signals between.
	var (
		events    []frame
		types     []string
		sawStatus bool
	)
	for _, f := range frames {
		if f.ID != "" {
			events, types = append(events, f), append(types, f.Type)
		}
	}
	// The echo expert answers at once: its status line, and no typing
	// indicator (shown only for an answer that takes a while; the engine's
	// tests cover both).
	for _, f := range signalFrames {
		if f.Event == "status" && strings.Contains(f.Frame.Data, "Processing your request...") {
			sawStatus = true
		}
	}
	want := []string{"conversation.message_posted", "conversation.routing_decided", "task.submitted", "task.started",
		"task.completed", "conversation.message_posted"}
	if !slices.Equal(types, want) {
		t.Fatalf("event frames = %v, want %v", types, want)
	}
	if !sawStatus {
		t.Error("no status signal from the echo expert")
	}
	user, routing, reply := events[0], events[1], events[len(events)-1]
	for _, f := range events {
		if f.Metadata.CorrelationID != user.Metadata.CorrelationID {
			t.Errorf("%s correlation %q, want %q", f.Type, f.Metadata.CorrelationID, user.Metadata.CorrelationID)
		}
	}
	if routing.Data.Action != "respond" || routing.Data.Expert != "echo" || routing.Metadata.CausationID != user.EventID ||
		reply.Metadata.CausationID != user.EventID {
		t.Fatalf("routing %+v / reply %+v not caused by the message %s", routing, reply, user.EventID)
	}
	if reply.Data.Role != "assistant" || reply.Data.AuthorID != "expert:echo" || reply.Data.Content != "ECHO: hello" {
		t.Fatalf("reply = %+v", reply.Data)
	}

	// The messages list and the task.
	var page struct {
		Items []struct {
			ID       string            `json:"id"`
			Role     string            `json:"role"`
			AuthorID string            `json:"author_id"`
			Content  string            `json:"content"`
			Metadata map[string]string `json:"metadata"`
		} `json:"items"`
	}
	w.ada.Must(http.StatusOK, "GET", "/v1/conversations/"+w.conv+"/messages", nil, "Engram-Min-Position: "+reply.ID).JSON(t, &page)
	if len(page.Items) != 2 || page.Items[1].Content != "ECHO: hello" || page.Items[1].AuthorID != "expert:echo" {
		t.Fatalf("messages = %+v", page.Items)
	}
	taskID := page.Items[1].Metadata["task_id"]
	if taskID != engine.TaskID(msg) {
		t.Fatalf("reply metadata = %v", page.Items[1].Metadata)
	}
	task := w.ada.Must(http.StatusOK, "GET", "/v1/tasks/"+taskID, nil, "Engram-Min-Position: "+reply.ID).Map(t)
	if task["status"] != "completed" || task["expert"] != "echo" || task["input"] != "hello" || task["output"] != "ECHO: hello" ||
		task["reply_message_id"] != page.Items[1].ID || task["attempts"] != float64(1) || task["message_id"] != msg {
		t.Fatalf("task = %v", task)
	}
	w.ada.Must(http.StatusConflict, "POST", "/v1/tasks/"+taskID+"/cancel", nil)
	w.ada.Must(http.StatusNotFound, "GET", "/v1/tasks/00000000-0000-0000-0000-000000000000", nil)
	eve := inst.Signup(t, "Eve")
	eve.Must(http.StatusNotFound, "GET", "/v1/tasks/"+taskID, nil)
	eve.Must(http.StatusNotFound, "POST", "/v1/tasks/"+taskID+"/cancel", nil)

	// Memory: messages are remembered; /remember stores an entity (no
	// answer); /recall answers from memory.
	eventually(t, "the message in memory", func() bool {
		p := w.memory(t, "type=message&q=hello")
		return len(p.Items) == 2 // "hello" and "ECHO: hello"
	})
	w.post(t, "/remember Ada: a mathematician who wrote the first program")
	eventually(t, "the entity in memory", func() bool {
		p := w.memory(t, "type=entity")
		return len(p.Items) == 1 && p.Items[0].Metadata["name"] == "Ada"
	})
	recall := w.post(t, "/recall Ada")
	frames = w.untilReply(t, recall)
	if answer := frames[len(frames)-1].Data; answer.AuthorID != "expert:memory" || !strings.Contains(answer.Content, "mathematician") {
		t.Fatalf("recall answer = %+v", answer)
	}
	answers := 0
	for _, f := range frames {
		if f.Type == "conversation.message_posted" && f.Data.Role == "assistant" {
			answers++
		}
	}
	if answers != 1 {
		t.Fatalf("%d answers to /remember and /recall, want 1", answers)
	}
	mc := w.ada.Must(http.StatusOK, "GET", "/v1/workspaces/"+w.ws+"/memory/context", nil).Map(t)
	if _, ok := mc["entities"].(map[string]any)["Ada"]; !ok || !strings.Contains(mc["summary"].(string), "Ada") || len(mc["recent"].([]any)) == 0 {
		t.Fatalf("memory context = %v", mc)
	}

	testMemoryAPI(t, w)

	// Replay: stop, move the reactor back to the start of the log, start
	// again. Everything is reprocessed and nothing is written.
	db := openDB(t, inst.DatabaseURL)
	before := countEvents(t, db)
	assistantBefore := countAssistantMessages(t, db)
	inst.Stop(t)
	if _, err := db.Exec(`UPDATE consumer_offsets SET offset_acked = 0, last_processed_transaction_id = '0'
		WHERE consumer_group = 'cognition'`); err != nil {
		t.Fatal(err)
	}
	inst.Restart(t)
	eventually(t, "the reactor catching up after the replay", func() bool { return caughtUp(t, db, "cognition") })
	if after := countEvents(t, db); after != before {
		t.Fatalf("replaying wrote %d events", after-before)
	}
	if n := countAssistantMessages(t, db); n != assistantBefore {
		t.Fatalf("%d assistant messages after the replay, %d before", n, assistantBefore)
	}
}

// testMemoryAPI checks the memory routes: storing, validation, filters,
// expiry, deletion and access.
func testMemoryAPI(t *testing.T, w *cogWorld) {
	path := "/v1/workspaces/" + w.ws + "/memory"
	created := w.ada.Must(http.StatusCreated, "POST", path, map[string]any{"type": "event", "content": "Launch party in Paris",
		"metadata": map[string]any{"topic": "launch", "size": 40}})
	item := created.Map(t)
	if item["type"] != "event" || item["workspace_id"] != w.ws || created.Header.Get("Location") != path+"/"+item["id"].(string) ||
		created.Position() == "" {
		t.Fatalf("stored item = %v (%v)", item, created.Header)
	}
	id := item["id"].(string)

	bad := w.ada.Must(http.StatusUnprocessableEntity, "POST", path, map[string]any{"type": "fact", "content": " ",
		"metadata": map[string]any{"a": "\u0000"}, "expires_at": time.Now().Add(-time.Hour).Format(time.RFC3339)}).Map(t)
	var fields []string
	for _, e := range bad["errors"].([]any) {
		fields = append(fields, e.(map[string]any)["field"].(string))
	}
	if !slices.Equal(fields, []string{"type", "content", "metadata", "expires_at"}) {
		t.Fatalf("invalid fields = %v", fields)
	}
	w.ada.Must(http.StatusUnprocessableEntity, "POST", path, map[string]any{"type": "event", "content": "x", "expires_at": "tomorrow"})
	w.ada.Must(http.StatusBadRequest, "POST", path, map[string]any{"type": "event", "content": "x", "color": "red"})

	pos := "Engram-Min-Position: " + created.Position()
	var p memoryPage
	w.ada.Must(http.StatusOK, "GET", path+"?q=paris+launch&metadata.topic=launch&metadata%5Bsize%5D=40&type=event,entity", nil, pos).JSON(t, &p)
	if len(p.Items) != 1 || p.Items[0].ID != id {
		t.Fatalf("filtered = %+v", p)
	}
	from := url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339))
	if p := w.memory(t, "from="+from); len(p.Items) != 0 {
		t.Fatalf("items from the future = %+v", p)
	}
	if p := w.memory(t, "q=paris+mathematician&match=any&type=event&type=entity"); len(p.Items) != 2 {
		t.Fatalf("any word = %+v", p)
	}
	if p := w.memory(t, "limit=1"); len(p.Items) != 1 || p.NextCursor == "" {
		t.Fatalf("first page = %+v", p)
	} else if next := w.memory(t, "limit=1&cursor="+p.NextCursor); len(next.Items) != 1 || next.Items[0].ID == p.Items[0].ID {
		t.Fatalf("second page = %+v", next)
	}
	bad = w.ada.Must(http.StatusUnprocessableEntity, "GET", path+"?type=fact&from=yesterday&match=some&include_expired=maybe&limit=0", nil).Map(t)
	fields = nil
	for _, e := range bad["errors"].([]any) {
		fields = append(fields, e.(map[string]any)["field"].(string))
	}
	if !slices.Equal(fields, []string{"match", "from", "include_expired", "limit"}) {
		t.Fatalf("invalid query fields = %v", fields)
	}
	w.ada.Must(http.StatusUnprocessableEntity, "GET", path+"?type=fact", nil)

	// Expiry: an item stops being found when it expires, unless asked for.
	stored := w.ada.Must(http.StatusCreated, "POST", path, map[string]any{"type": "event", "content": "standup in a moment",
		"expires_at": time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)})
	soon := stored.Map(t)["id"].(string)
	w.ada.Must(http.StatusOK, "GET", path+"?q=standup&include_expired=true", nil, "Engram-Min-Position: "+stored.Position()).JSON(t, &p)
	if len(p.Items) != 1 {
		t.Fatalf("stored item not found: %+v", p)
	}
	eventually(t, "the item to expire", func() bool {
		p := w.memory(t, "q=standup")
		return len(p.Items) == 0
	})
	if p := w.memory(t, "q=standup&include_expired=true"); len(p.Items) != 1 || p.Items[0].ID != soon {
		t.Fatalf("expired item = %+v", p)
	}

	// Access: a viewer reads but may not change; an outsider sees nothing.
	bob := w.inst.Signup(t, "Bob")
	w.ada.Must(http.StatusCreated, "POST", "/v1/workspaces/"+w.ws+"/members", map[string]any{"user_id": bob.UserID, "role": "viewer"})
	eventually(t, "Bob's membership", func() bool { return bob.Do("GET", path, nil).Status == http.StatusOK })
	bob.Must(http.StatusForbidden, "POST", path, map[string]any{"type": "event", "content": "x"})
	bob.Must(http.StatusForbidden, "DELETE", path+"/"+id, nil)
	eve := w.inst.Signup(t, "Eve")
	eve.Must(http.StatusNotFound, "GET", path, nil)
	eve.Must(http.StatusNotFound, "GET", path+"/context", nil)
	eve.Must(http.StatusNotFound, "POST", path, map[string]any{"type": "event", "content": "x"})

	// Deletion.
	del := w.ada.Must(http.StatusNoContent, "DELETE", path+"/"+id, nil)
	w.ada.Must(http.StatusNotFound, "DELETE", path+"/"+id, nil)
	w.ada.Must(http.StatusNotFound, "DELETE", path+"/not-an-id", nil)
	w.ada.Must(http.StatusOK, "GET", path+"?q=paris", nil, "Engram-Min-Position: "+del.Position()).JSON(t, &p)
	if len(p.Items) != 0 {
		t.Fatalf("deleted item still found: %+v", p)
	}
}

func countAssistantMessages(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM events WHERE type = 'conversation.message_posted' AND data->>'role' = 'assistant'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// caughtUp reports whether a consumer group has acknowledged the last event.
func caughtUp(t *testing.T, db *sql.DB, group string) bool {
	t.Helper()
	var ok bool
	err := db.QueryRow(`SELECT coalesce((SELECT (o.last_processed_transaction_id, o.offset_acked) >= (e.tx_id, e.global_position)
		FROM consumer_offsets o WHERE o.consumer_group = $1), false)
		FROM events e ORDER BY e.global_position DESC LIMIT 1`, group).Scan(&ok)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// fakeLLM is an OpenAI-compatible endpoint whose answer depends on the last
// user message: "fail" answers 500, "stall" streams a piece and waits for
// the client to give up, anything else streams an answer.
type fakeLLM struct {
	mu           sync.Mutex
	requests     []string // the last user message of each request
	systems      []string
	stalled      chan struct{}
	disconnected chan struct{}
}

func (f *fakeLLM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Messages []struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"messages"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Messages) == 0 {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	last := req.Messages[len(req.Messages)-1].Content
	f.mu.Lock()
	f.requests = append(f.requests, last)
	f.systems = append(f.systems, req.Messages[0].Content)
	f.mu.Unlock()
	chunk := func(text string) {
		data, _ := json.Marshal(map[string]any{"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "fake",
			"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"content": text}}}})
		fmt.Fprintf(w, "data: %s\n\n", data)
		w.(http.Flusher).Flush()
	}
	switch {
	case strings.Contains(last, "fail"):
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, `{"error":{"message":"overloaded","type":"server_error"}}`)
	case strings.Contains(last, "stall"):
		w.Header().Set("Content-Type", "text/event-stream")
		chunk("Let me think")
		close(f.stalled)
		<-r.Context().Done()
		close(f.disconnected)
	default:
		w.Header().Set("Content-Type", "text/event-stream")
		for _, p := range []string{"Hello ", "from ", "the model."} {
			chunk(p)
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}
}

func (f *fakeLLM) count(substr string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.requests {
		if strings.Contains(r, substr) {
			n++
		}
	}
	return n
}

// The llm expert against a local OpenAI-compatible endpoint: answers are
// streamed as delta signals and stored once; an endpoint that fails is
// retried, then the task fails with a status signal; a stalled answer is
// cancelled.
func TestCognitionLLM(t *testing.T) {
	fake := &fakeLLM{stalled: make(chan struct{}), disconnected: make(chan struct{})}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	inst := enginetest.Start(t, enginetest.Options{Env: map[string]string{
		"ENGRAM_LLM_BASE_URL": srv.URL + "/v1", "ENGRAM_LLM_MODEL": "fake", "ENGRAM_LLM_API_KEY": "sk-fake",
		"ENGRAM_TASK_ATTEMPTS": "2",
	}})
	w := newCogWorld(t, inst)
	var experts struct {
		Items []struct {
			Name string `json:"name"`
		} `json:"items"`
	}
	w.ada.Must(http.StatusOK, "GET", "/v1/experts", nil).JSON(t, &experts)
	if len(experts.Items) != 3 || experts.Items[2].Name != "llm" {
		t.Fatalf("experts = %+v", experts)
	}

	msg := w.post(t, "hi there")
	frames, signalFrames := w.untilSettled(t, msg, func(f enginetest.Frame) bool {
		return f.Event == "delta" && strings.Contains(f.Data, "the model.")
	})
	var deltas []string
	for _, f := range signalFrames {
		if f.Event == "delta" {
			var d struct {
				Data struct {
					Text  string `json:"text"`
					Index int    `json:"index"`
				} `json:"data"`
			}
			f.JSON(t, &d)
			if d.Data.Index != len(deltas) {
				t.Fatalf("delta %d has index %d", len(deltas), d.Data.Index)
			}
			deltas = append(deltas, d.Data.Text)
		}
	}
	reply := frames[len(frames)-1].Data
	if reply.Content != "Hello from the model." || reply.AuthorID != "expert:llm" {
		t.Fatalf("reply = %+v", reply)
	}
	if strings.Join(deltas, "") != "Hello from the model." {
		t.Fatalf("deltas = %q", deltas)
	}

	// The conversation so far and the memory go into the prompt.
	w.post(t, "/remember Grace: an admiral")
	eventually(t, "Grace in memory", func() bool { return len(w.memory(t, "type=entity").Items) == 1 })
	second := w.post(t, "and who is Grace?")
	w.untilReply(t, second)
	fake.mu.Lock()
	system := fake.systems[len(fake.systems)-1]
	fake.mu.Unlock()
	if !strings.Contains(system, "Grace: an admiral") {
		t.Fatalf("system prompt lacks the memory: %q", system)
	}

	// Failure: two attempts, then the task fails and the conversation is told.
	failed := w.post(t, "please fail")
	taskID := engine.TaskID(failed)
	w.stream.Until(func(f enginetest.Frame) bool {
		return f.Event == "status" && strings.Contains(f.Data, "could not answer") && strings.Contains(f.Data, taskID)
	})
	var task map[string]any
	eventually(t, "the failed task", func() bool {
		task = w.ada.Must(http.StatusOK, "GET", "/v1/tasks/"+taskID, nil).Map(t)
		return task["status"] == "failed"
	})
	if task["attempts"] != float64(2) || !strings.Contains(task["reason"].(string), "500") || fake.count("please fail") != 2 {
		t.Fatalf("failed task = %v after %d requests", task, fake.count("please fail"))
	}

	// Cancel mid-answer: the request to the endpoint is abandoned and
	// nothing is posted.
	stalled := w.post(t, "stall for a while")
	select {
	case <-fake.stalled:
	case <-time.After(10 * time.Second):
		t.Fatal("the endpoint was not asked")
	}
	stalledTask := engine.TaskID(stalled)
	var cancelled map[string]any
	eventually(t, "the task to be cancellable", func() bool {
		r := w.ada.Do("POST", "/v1/tasks/"+stalledTask+"/cancel", map[string]any{"reason": "too slow"})
		if r.Status == http.StatusOK {
			cancelled = r.Map(t)
		}
		return r.Status == http.StatusOK
	})
	if cancelled["status"] != "cancelled" || cancelled["reason"] != "too slow" {
		t.Fatalf("cancelled task = %v", cancelled)
	}
	select {
	case <-fake.disconnected:
	case <-time.After(10 * time.Second):
		t.Fatal("the request to the endpoint was not cancelled")
	}
	after := w.post(t, "after the cancel")
	w.untilReply(t, after)
	db := openDB(t, inst.DatabaseURL)
	var replies int
	if err := db.QueryRowContext(context.Background(), `SELECT count(*) FROM events WHERE type = 'conversation.message_posted'
		AND data->>'message_id' = $1`, engine.ReplyID(stalledTask)).Scan(&replies); err != nil || replies != 0 {
		t.Fatalf("the cancelled task was answered (%d, %v)", replies, err)
	}
	if task := w.ada.Must(http.StatusOK, "GET", "/v1/tasks/"+stalledTask, nil).Map(t); task["status"] != "cancelled" {
		t.Fatalf("task = %v", task)
	}
}
