package task

import (
	"github.com/engramhq/engram/domain/domaintest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/engramhq/engram/domain"
)

const (
	tid = "t-1"
	wid = "w-1"
	cid = "c-1"
	mid = "m-1"
	uid = "u-1"
	w1  = "worker-1"
	w2  = "worker-2"
)

var (
	now      = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	deadline = now.Add(time.Minute)
)

func submitted() Submitted {
	return Submitted{TaskID: tid, WorkspaceID: wid, ConversationID: cid, MessageID: mid, RequestedBy: uid,
		Expert: "echo", Input: "hello", Priority: 3}
}

func started(worker string, attempt int) Started {
	return Started{Worker: worker, Attempt: attempt, Deadline: deadline}
}

func load(events ...domain.Event) *Task { return domaintest.Load(&Task{}, events...) }

func TestSubmit(t *testing.T) {
	tests := []struct {
		name                      string
		id, ws, conv, msg, by, ex string
		input                     string
		priority                  int
		then                      []domain.Event
		code                      string
		fields                    []string
	}{
		{name: "ok", id: tid, ws: wid, conv: cid, msg: mid, by: uid, ex: "echo", input: "hello", priority: 3,
			then: []domain.Event{submitted()}},
		{name: "empty input, top priority", id: tid, ws: wid, conv: cid, msg: mid, by: uid, ex: "memory", priority: 5,
			then: []domain.Event{Submitted{TaskID: tid, WorkspaceID: wid, ConversationID: cid, MessageID: mid, RequestedBy: uid, Expert: "memory", Priority: 5}}},
		{name: "everything invalid", ex: "two words", input: "a\x00", priority: 0,
			code: domain.CodeInvalid, fields: []string{"task_id", "workspace_id", "conversation_id", "message_id", "requested_by", "expert", "input", "priority"}},
		{name: "expert too long", id: tid, ws: wid, conv: cid, msg: mid, by: uid, ex: strings.Repeat("x", 101), priority: 1,
			code: domain.CodeInvalid, fields: []string{"expert"}},
		{name: "input too long", id: tid, ws: wid, conv: cid, msg: mid, by: uid, ex: "echo", input: strings.Repeat("ü", MaxInputRunes+1), priority: 1,
			code: domain.CodeInvalid, fields: []string{"input"}},
		{name: "priority 6", id: tid, ws: wid, conv: cid, msg: mid, by: uid, ex: "echo", priority: 6,
			code: domain.CodeInvalid, fields: []string{"priority"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			task, err := Submit(tt.id, tt.ws, tt.conv, tt.msg, tt.by, tt.ex, tt.input, tt.priority)
			var got []domain.Event
			if task != nil {
				got = task.Pending()
				if task.Status() != StatusSubmitted || task.Version() != 1 || task.ID() != tid {
					t.Fatalf("status %q version %d id %q", task.Status(), task.Version(), task.ID())
				}
			}
			domaintest.CheckOutcome(t, err, tt.code, tt.fields, got, tt.then)
		})
	}
}

func TestCommands(t *testing.T) {
	base := []domain.Event{submitted()}
	running := []domain.Event{submitted(), started(w1, 1)}
	completed := append(slices.Clone(running), Completed{Output: "ECHO: hello", ReplyMessageID: "r-1"})
	failed := append(slices.Clone(running), Failed{Reason: "boom", Attempts: 1})
	cancelled := append(slices.Clone(base), Cancelled{Reason: "no longer needed"})
	later := deadline.Add(time.Second)
	tests := []domaintest.Case[*Task]{
		// Claim and Retry
		{Name: "claim a submitted task", Given: base,
			When: func(t *Task) error { return t.Claim(w1, now, deadline) },
			Then: []domain.Event{started(w1, 1)}},
		{Name: "a running task may not be claimed, even by its worker", Given: running,
			When: func(t *Task) error { return t.Claim(w1, now, deadline) },
			Code: domain.CodeConflict},
		{Name: "another worker claims an abandoned attempt", Given: running,
			When: func(t *Task) error { return t.Claim(w2, deadline, later) },
			Then: []domain.Event{Started{Worker: w2, Attempt: 2, Deadline: later}}},
		{Name: "a completed task is never claimed again", Given: completed,
			When: func(t *Task) error { return t.Claim(w1, later, later.Add(time.Minute)) },
			Code: domain.CodeConflict},
		{Name: "a cancelled task is never claimed", Given: cancelled,
			When: func(t *Task) error { return t.Claim(w1, now, deadline) },
			Code: domain.CodeConflict},
		{Name: "claim invalid", Given: base,
			When: func(t *Task) error { return t.Claim("", now, now) },
			Code: domain.CodeInvalid, Fields: []string{"worker", "deadline"}},
		{Name: "the worker retries", Given: running,
			When: func(t *Task) error { return t.Retry(w1, now, deadline) },
			Then: []domain.Event{started(w1, 2)}},
		{Name: "another worker may not retry", Given: running,
			When: func(t *Task) error { return t.Retry(w2, later, later.Add(time.Minute)) },
			Code: domain.CodeConflict},
		{Name: "no retry of a submitted task", Given: base,
			When: func(t *Task) error { return t.Retry(w1, now, deadline) },
			Code: domain.CodeConflict},
		{Name: "no retry after a cancellation", Given: append(slices.Clone(running), Cancelled{Reason: "stop"}),
			When: func(t *Task) error { return t.Retry(w1, now, deadline) },
			Code: domain.CodeConflict},
		{Name: "retry invalid", Given: running,
			When: func(t *Task) error { return t.Retry(w1, now, now.Add(-time.Second)) },
			Code: domain.CodeInvalid, Fields: []string{"deadline"}},
		// Progress
		{Name: "progress", Given: running,
			When: func(t *Task) error { return t.Progress(w1, 40, " halfway ") },
			Then: []domain.Event{Progressed{Progress: 40, Note: "halfway"}}},
		{Name: "progress of another worker", Given: running,
			When: func(t *Task) error { return t.Progress(w2, 40, "") },
			Code: domain.CodeConflict},
		{Name: "progress before start", Given: base,
			When: func(t *Task) error { return t.Progress(w1, 40, "") },
			Code: domain.CodeConflict},
		{Name: "progress invalid", Given: running,
			When: func(t *Task) error { return t.Progress(w1, 101, strings.Repeat("n", MaxNoteRunes+1)) },
			Code: domain.CodeInvalid, Fields: []string{"progress", "note"}},
		// Complete
		{Name: "complete", Given: running,
			When: func(t *Task) error { return t.Complete(w1, "ECHO: hello", "r-1") },
			Then: []domain.Event{Completed{Output: "ECHO: hello", ReplyMessageID: "r-1"}}},
		{Name: "complete without output", Given: running,
			When: func(t *Task) error { return t.Complete(w1, "  ", "") },
			Then: []domain.Event{Completed{}}},
		{Name: "complete with output needs a reply id", Given: running,
			When: func(t *Task) error { return t.Complete(w1, "x", "") },
			Code: domain.CodeInvalid, Fields: []string{"reply_message_id"}},
		{Name: "no reply without output", Given: running,
			When: func(t *Task) error { return t.Complete(w1, "", "r-1") },
			Code: domain.CodeInvalid, Fields: []string{"reply_message_id"}},
		{Name: "complete by another worker", Given: running,
			When: func(t *Task) error { return t.Complete(w2, "x", "r-1") },
			Code: domain.CodeConflict},
		{Name: "complete twice", Given: completed,
			When: func(t *Task) error { return t.Complete(w1, "x", "r-1") },
			Code: domain.CodeConflict},
		{Name: "complete a cancelled task", Given: append(slices.Clone(running), Cancelled{Reason: "stop"}),
			When: func(t *Task) error { return t.Complete(w1, "x", "r-1") },
			Code: domain.CodeConflict},
		// Fail
		{Name: "fail", Given: running,
			When: func(t *Task) error { return t.Fail(w1, " boom ", now) },
			Then: []domain.Event{Failed{Reason: "boom", Attempts: 1}}},
		{Name: "expire a submitted task", Given: base,
			When: func(t *Task) error { return t.Fail(w2, "expired", now) },
			Then: []domain.Event{Failed{Reason: "expired", Attempts: 0}}},
		{Name: "another worker may not fail a running attempt", Given: running,
			When: func(t *Task) error { return t.Fail(w2, "boom", now) },
			Code: domain.CodeConflict},
		{Name: "another worker fails an abandoned attempt", Given: running,
			When: func(t *Task) error { return t.Fail(w2, "abandoned", later) },
			Then: []domain.Event{Failed{Reason: "abandoned", Attempts: 1}}},
		{Name: "fail twice", Given: failed,
			When: func(t *Task) error { return t.Fail(w1, "boom", now) },
			Code: domain.CodeConflict},
		{Name: "fail needs a reason", Given: running,
			When: func(t *Task) error { return t.Fail(w1, " ", now) },
			Code: domain.CodeInvalid, Fields: []string{"reason"}},
		// Cancel
		{Name: "cancel a submitted task", Given: base,
			When: func(t *Task) error { return t.Cancel("") },
			Then: []domain.Event{Cancelled{Reason: ReasonCancelled}}},
		{Name: "cancel a running task", Given: running,
			When: func(t *Task) error { return t.Cancel("no longer needed") },
			Then: []domain.Event{Cancelled{Reason: "no longer needed"}}},
		{Name: "cancel a completed task", Given: completed,
			When: func(t *Task) error { return t.Cancel("") },
			Code: domain.CodeConflict},
		{Name: "cancel twice", Given: cancelled,
			When: func(t *Task) error { return t.Cancel("") },
			Code: domain.CodeConflict},
		{Name: "cancel reason too long", Given: base,
			When: func(t *Task) error { return t.Cancel(strings.Repeat("r", MaxReasonRunes+1)) },
			Code: domain.CodeInvalid, Fields: []string{"reason"}},
	}
	domaintest.Run(t, func() *Task { return &Task{} }, tests)
}

func TestState(t *testing.T) {
	task := load(submitted(), started(w1, 1), Progressed{Progress: 50, Note: "half"})
	if task.Status() != StatusRunning || task.Worker() != w1 || task.Attempts() != 1 || !task.Deadline().Equal(deadline) ||
		task.ProgressPercent() != 50 || task.Ended() {
		t.Fatalf("running state wrong: %+v", task)
	}
	if task.WorkspaceID() != wid || task.ConversationID() != cid || task.MessageID() != mid || task.RequestedBy() != uid ||
		task.Expert() != "echo" || task.Input() != "hello" || task.Priority() != 3 {
		t.Fatalf("submitted state wrong: %+v", task)
	}
	task.Apply(Completed{Output: "out", ReplyMessageID: "r"})
	if task.Status() != StatusCompleted || !task.Ended() || task.Output() != "out" || task.ReplyMessageID() != "r" || task.ProgressPercent() != 100 {
		t.Fatalf("completed state wrong: %+v", task)
	}
	cancelled := load(submitted(), Cancelled{Reason: "stop"})
	if cancelled.Status() != StatusCancelled || cancelled.Reason() != "stop" {
		t.Fatalf("cancelled state wrong: %+v", cancelled)
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	events := []domain.Event{submitted(), started(w1, 1), Progressed{Progress: 10, Note: "n"},
		Completed{Output: "o", ReplyMessageID: "r"}, Failed{Reason: "x", Attempts: 3}, Cancelled{Reason: "c"}}
	domaintest.RoundTrip(t, Decode, events...)
	domaintest.Unknown(t, Decode, EventSubmitted)
	if _, err := Decode(EventFailed, 1, []byte(`{"attempts":"x"}`)); err == nil {
		t.Fatal("bad data decoded")
	}
}

func TestStreamID(t *testing.T) { domaintest.StreamID(t, StreamID, StreamType) }
