package task

import (
	"encoding/json"
	"errors"
	"github.com/engramhq/engram/domain/domaintest"
	"reflect"
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

func load(events ...domain.Event) *Task {
	t := &Task{}
	for _, e := range events {
		t.Apply(e)
	}
	return t
}

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
	tests := []struct {
		name   string
		given  []domain.Event
		when   func(*Task) error
		then   []domain.Event
		code   string
		fields []string
	}{
		// Claim and Retry
		{name: "claim a submitted task", given: base,
			when: func(t *Task) error { return t.Claim(w1, now, deadline) },
			then: []domain.Event{started(w1, 1)}},
		{name: "a running task may not be claimed, even by its worker", given: running,
			when: func(t *Task) error { return t.Claim(w1, now, deadline) },
			code: domain.CodeConflict},
		{name: "another worker claims an abandoned attempt", given: running,
			when: func(t *Task) error { return t.Claim(w2, deadline, later) },
			then: []domain.Event{Started{Worker: w2, Attempt: 2, Deadline: later}}},
		{name: "a completed task is never claimed again", given: completed,
			when: func(t *Task) error { return t.Claim(w1, later, later.Add(time.Minute)) },
			code: domain.CodeConflict},
		{name: "a cancelled task is never claimed", given: cancelled,
			when: func(t *Task) error { return t.Claim(w1, now, deadline) },
			code: domain.CodeConflict},
		{name: "claim invalid", given: base,
			when: func(t *Task) error { return t.Claim("", now, now) },
			code: domain.CodeInvalid, fields: []string{"worker", "deadline"}},
		{name: "the worker retries", given: running,
			when: func(t *Task) error { return t.Retry(w1, now, deadline) },
			then: []domain.Event{started(w1, 2)}},
		{name: "another worker may not retry", given: running,
			when: func(t *Task) error { return t.Retry(w2, later, later.Add(time.Minute)) },
			code: domain.CodeConflict},
		{name: "no retry of a submitted task", given: base,
			when: func(t *Task) error { return t.Retry(w1, now, deadline) },
			code: domain.CodeConflict},
		{name: "no retry after a cancellation", given: append(slices.Clone(running), Cancelled{Reason: "stop"}),
			when: func(t *Task) error { return t.Retry(w1, now, deadline) },
			code: domain.CodeConflict},
		{name: "retry invalid", given: running,
			when: func(t *Task) error { return t.Retry(w1, now, now.Add(-time.Second)) },
			code: domain.CodeInvalid, fields: []string{"deadline"}},
		// Progress
		{name: "progress", given: running,
			when: func(t *Task) error { return t.Progress(w1, 40, " halfway ") },
			then: []domain.Event{Progressed{Progress: 40, Note: "halfway"}}},
		{name: "progress of another worker", given: running,
			when: func(t *Task) error { return t.Progress(w2, 40, "") },
			code: domain.CodeConflict},
		{name: "progress before start", given: base,
			when: func(t *Task) error { return t.Progress(w1, 40, "") },
			code: domain.CodeConflict},
		{name: "progress invalid", given: running,
			when: func(t *Task) error { return t.Progress(w1, 101, strings.Repeat("n", MaxNoteRunes+1)) },
			code: domain.CodeInvalid, fields: []string{"progress", "note"}},
		// Complete
		{name: "complete", given: running,
			when: func(t *Task) error { return t.Complete(w1, "ECHO: hello", "r-1") },
			then: []domain.Event{Completed{Output: "ECHO: hello", ReplyMessageID: "r-1"}}},
		{name: "complete without output", given: running,
			when: func(t *Task) error { return t.Complete(w1, "  ", "") },
			then: []domain.Event{Completed{}}},
		{name: "complete with output needs a reply id", given: running,
			when: func(t *Task) error { return t.Complete(w1, "x", "") },
			code: domain.CodeInvalid, fields: []string{"reply_message_id"}},
		{name: "no reply without output", given: running,
			when: func(t *Task) error { return t.Complete(w1, "", "r-1") },
			code: domain.CodeInvalid, fields: []string{"reply_message_id"}},
		{name: "complete by another worker", given: running,
			when: func(t *Task) error { return t.Complete(w2, "x", "r-1") },
			code: domain.CodeConflict},
		{name: "complete twice", given: completed,
			when: func(t *Task) error { return t.Complete(w1, "x", "r-1") },
			code: domain.CodeConflict},
		{name: "complete a cancelled task", given: append(slices.Clone(running), Cancelled{Reason: "stop"}),
			when: func(t *Task) error { return t.Complete(w1, "x", "r-1") },
			code: domain.CodeConflict},
		// Fail
		{name: "fail", given: running,
			when: func(t *Task) error { return t.Fail(w1, " boom ", now) },
			then: []domain.Event{Failed{Reason: "boom", Attempts: 1}}},
		{name: "expire a submitted task", given: base,
			when: func(t *Task) error { return t.Fail(w2, "expired", now) },
			then: []domain.Event{Failed{Reason: "expired", Attempts: 0}}},
		{name: "another worker may not fail a running attempt", given: running,
			when: func(t *Task) error { return t.Fail(w2, "boom", now) },
			code: domain.CodeConflict},
		{name: "another worker fails an abandoned attempt", given: running,
			when: func(t *Task) error { return t.Fail(w2, "abandoned", later) },
			then: []domain.Event{Failed{Reason: "abandoned", Attempts: 1}}},
		{name: "fail twice", given: failed,
			when: func(t *Task) error { return t.Fail(w1, "boom", now) },
			code: domain.CodeConflict},
		{name: "fail needs a reason", given: running,
			when: func(t *Task) error { return t.Fail(w1, " ", now) },
			code: domain.CodeInvalid, fields: []string{"reason"}},
		// Cancel
		{name: "cancel a submitted task", given: base,
			when: func(t *Task) error { return t.Cancel("") },
			then: []domain.Event{Cancelled{Reason: ReasonCancelled}}},
		{name: "cancel a running task", given: running,
			when: func(t *Task) error { return t.Cancel("no longer needed") },
			then: []domain.Event{Cancelled{Reason: "no longer needed"}}},
		{name: "cancel a completed task", given: completed,
			when: func(t *Task) error { return t.Cancel("") },
			code: domain.CodeConflict},
		{name: "cancel twice", given: cancelled,
			when: func(t *Task) error { return t.Cancel("") },
			code: domain.CodeConflict},
		{name: "cancel reason too long", given: base,
			when: func(t *Task) error { return t.Cancel(strings.Repeat("r", MaxReasonRunes+1)) },
			code: domain.CodeInvalid, fields: []string{"reason"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			task := load(tt.given...)
			before := task.Version()
			err := tt.when(task)
			got := task.Pending()
			if err != nil && len(got) != 0 {
				t.Fatalf("failed command recorded %v", got)
			}
			if task.Version() != before+len(got) {
				t.Fatalf("version %d after %d events from %d", task.Version(), len(got), before)
			}
			domaintest.CheckOutcome(t, err, tt.code, tt.fields, got, tt.then)
		})
	}
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
	for _, e := range events {
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(e.EventType(), 1, data)
		if err != nil {
			t.Fatalf("decode %s: %v", e.EventType(), err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("round trip of %s = %#v, want %#v", e.EventType(), got, e)
		}
	}
	if _, err := Decode(EventSubmitted, 2, []byte(`{}`)); !errors.Is(err, domain.ErrUnknownEvent) {
		t.Fatalf("schema version 2: %v", err)
	}
	if _, err := Decode("task.exploded", 1, []byte(`{}`)); !errors.Is(err, domain.ErrUnknownEvent) {
		t.Fatalf("unknown type: %v", err)
	}
	if _, err := Decode(EventFailed, 1, []byte(`{"attempts":"x"}`)); err == nil {
		t.Fatal("bad data decoded")
	}
}
