// Package task is the task aggregate: one piece of work handed to a domain
// expert on behalf of a message. Its stream is "task-<id>".
//
// A task is submitted, then claimed by a worker for an attempt (started),
// which may report progress and ends completed, or is retried (started
// again) and finally failed; it can be cancelled until it ends. Every attempt
// carries a deadline: while it runs only its worker may change the task,
// after it another worker may claim the task again. Once completed, failed
// or cancelled the task accepts no further change, so a finished task is
// never run twice.
package task

import (
	"cmp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/engramhq/engram/domain"
)

// StreamType is the stream type of task streams.
const StreamType = "task"

// StreamID returns the stream identifier of the task with the given id.
func StreamID(id string) string { return domain.StreamID(StreamType, id) }

// Statuses of a task.
const (
	StatusSubmitted = "submitted" // waiting for a worker
	StatusRunning   = "running"   // a worker runs an attempt
	StatusCompleted = "completed" // the expert answered
	StatusFailed    = "failed"    // given up after its attempts
	StatusCancelled = "cancelled" // cancelled before it ended
)

// Rule limits.
const (
	MaxExpertBytes = 100
	MaxInputRunes  = 32000
	MaxOutputRunes = 32000
	MaxNoteRunes   = 500
	MaxReasonRunes = 1000
	MinPriority    = 1
	MaxPriority    = 5
)

// ReasonCancelled is the reason recorded when a cancellation gives none.
const ReasonCancelled = "cancelled"

// Task is the task aggregate. The zero value is an empty aggregate ready to
// have stored events applied.
type Task struct {
	domain.Root

	id             string
	workspaceID    string
	conversationID string
	messageID      string
	requestedBy    string
	expert         string
	input          string
	priority       int

	status         string
	worker         string
	attempts       int
	deadline       time.Time
	progress       int
	output         string
	replyMessageID string
	reason         string
}

// Submit validates a new task and records task.submitted. Identifiers are
// required; expert names the expert (at most 100 bytes, no white space);
// input is stored as given and may be empty (at most 32,000 characters);
// priority is 1–5, 5 the most urgent.
func Submit(id, workspaceID, conversationID, messageID, requestedBy, expert, input string, priority int) (*Task, error) {
	var v domain.Validation
	v.ID("task_id", id)
	v.ID("workspace_id", workspaceID)
	v.ID("conversation_id", conversationID)
	v.ID("message_id", messageID)
	v.ID("requested_by", requestedBy)
	if v.ID("expert", expert) {
		v.Check(len(expert) <= MaxExpertBytes, "expert", "must be at most %d bytes", MaxExpertBytes)
	}
	if p := domain.TextProblem(input); p != "" {
		v.Add("input", "%s", p)
	} else if utf8.RuneCountInString(input) > MaxInputRunes {
		v.Add("input", "must be at most %d characters", MaxInputRunes)
	}
	v.Check(priority >= MinPriority && priority <= MaxPriority, "priority", "must be between %d and %d", MinPriority, MaxPriority)
	if err := v.Err(); err != nil {
		return nil, err
	}
	t := &Task{}
	t.Record(t.Apply, Submitted{TaskID: id, WorkspaceID: workspaceID, ConversationID: conversationID, MessageID: messageID,
		RequestedBy: requestedBy, Expert: expert, Input: input, Priority: priority})
	return t, nil
}

// Claim starts the task's next attempt for worker, which gives it up at
// deadline (after now). A task may be claimed when it is submitted, or when
// it runs and the running attempt's deadline has passed (its worker died);
// otherwise Claim fails with CodeConflict, as it does when the task has
// ended. Of two claims loaded at the same version, the expected-version
// check lets one be stored.
func (t *Task) Claim(worker string, now, deadline time.Time) error {
	if err := checkStart(worker, now, deadline); err != nil {
		return err
	}
	switch {
	case t.Ended():
		return domain.Errorf(domain.CodeConflict, "task is already %s", t.status)
	case t.status == StatusRunning && now.Before(t.deadline):
		return domain.Errorf(domain.CodeConflict, "task is running")
	}
	t.Record(t.Apply, Started{Worker: worker, Attempt: t.attempts + 1, Deadline: deadline.UTC()})
	return nil
}

// Retry starts another attempt of the task for the worker that runs it,
// after an attempt failed; the new attempt is given up at deadline. It fails
// with CodeConflict when the task is not running or runs for another worker
// (it was cancelled, or taken over).
func (t *Task) Retry(worker string, now, deadline time.Time) error {
	if err := checkStart(worker, now, deadline); err != nil {
		return err
	}
	if err := t.checkRunningFor(worker); err != nil {
		return err
	}
	t.Record(t.Apply, Started{Worker: worker, Attempt: t.attempts + 1, Deadline: deadline.UTC()})
	return nil
}

func checkStart(worker string, now, deadline time.Time) error {
	var v domain.Validation
	v.ID("worker", worker)
	v.Check(deadline.After(now), "deadline", "must be after now")
	return v.Err()
}

// Progress records how far worker's running attempt has come: percent is
// 0–100 and note at most 500 characters. It fails with CodeConflict when the
// task is not running or runs for another worker.
func (t *Task) Progress(worker string, percent int, note string) error {
	var v domain.Validation
	v.Check(percent >= 0 && percent <= 100, "progress", "must be between 0 and 100")
	note = v.Text("note", note, 0, MaxNoteRunes)
	if err := v.Err(); err != nil {
		return err
	}
	if err := t.checkRunningFor(worker); err != nil {
		return err
	}
	t.Record(t.Apply, Progressed{Progress: percent, Note: note})
	return nil
}

// Complete records the answer of worker's running attempt. output is stored
// as given (at most 32,000 characters); when it is not blank,
// replyMessageID names the assistant message that will carry it; a blank
// output is recorded empty, without a reply. It fails with CodeConflict when
// the task is not running or runs for another worker.
func (t *Task) Complete(worker, output, replyMessageID string) error {
	var v domain.Validation
	switch {
	case domain.TextProblem(output) != "":
		v.Add("output", "%s", domain.TextProblem(output))
	case utf8.RuneCountInString(output) > MaxOutputRunes:
		v.Add("output", "must be at most %d characters", MaxOutputRunes)
	case strings.TrimSpace(output) == "":
		output = ""
		v.Check(replyMessageID == "", "reply_message_id", "must be empty when there is no output")
	default:
		v.ID("reply_message_id", replyMessageID)
	}
	if err := v.Err(); err != nil {
		return err
	}
	if err := t.checkRunningFor(worker); err != nil {
		return err
	}
	t.Record(t.Apply, Completed{Output: output, ReplyMessageID: replyMessageID})
	return nil
}

// Fail gives the task up with a reason (1–1,000 characters), recording the
// number of attempts made. A submitted task may be failed by any worker (it
// expired before anyone ran it); a running one by its own worker, or by any
// once its attempt's deadline has passed. It fails with CodeConflict
// otherwise, and when the task has ended.
func (t *Task) Fail(worker, reason string, now time.Time) error {
	var v domain.Validation
	v.ID("worker", worker)
	reason = v.Text("reason", reason, 1, MaxReasonRunes)
	if err := v.Err(); err != nil {
		return err
	}
	if err := t.checkWorker(worker, now); err != nil {
		return err
	}
	t.Record(t.Apply, Failed{Reason: reason, Attempts: t.attempts})
	return nil
}

// Cancel cancels a task that has not ended; reason is at most 1,000
// characters and defaults to "cancelled". It fails with CodeConflict when
// the task has ended.
func (t *Task) Cancel(reason string) error {
	var v domain.Validation
	reason = v.Text("reason", reason, 0, MaxReasonRunes)
	if err := v.Err(); err != nil {
		return err
	}
	if t.Ended() {
		return domain.Errorf(domain.CodeConflict, "task is already %s", t.status)
	}
	reason = cmp.Or(reason, ReasonCancelled)
	t.Record(t.Apply, Cancelled{Reason: reason})
	return nil
}

// checkWorker allows worker to give the task up at now (see Fail).
func (t *Task) checkWorker(worker string, now time.Time) error {
	switch {
	case t.Ended():
		return domain.Errorf(domain.CodeConflict, "task is already %s", t.status)
	case t.status == StatusRunning && t.worker != worker && now.Before(t.deadline):
		return domain.Errorf(domain.CodeConflict, "task is running for another worker")
	}
	return nil
}

// checkRunningFor allows only the worker of the running attempt.
func (t *Task) checkRunningFor(worker string) error {
	switch {
	case t.status != StatusRunning:
		return domain.Errorf(domain.CodeConflict, "task is %s, not running", t.status)
	case t.worker != worker:
		return domain.Errorf(domain.CodeConflict, "task is running for another worker")
	}
	return nil
}

// Apply changes the state by one event; it is used both when recording new
// events and when loading stored ones, and it never fails.
func (t *Task) Apply(e domain.Event) {
	t.Applied()
	switch e := e.(type) {
	case Submitted:
		t.id = e.TaskID
		t.workspaceID = e.WorkspaceID
		t.conversationID = e.ConversationID
		t.messageID = e.MessageID
		t.requestedBy = e.RequestedBy
		t.expert = e.Expert
		t.input = e.Input
		t.priority = e.Priority
		t.status = StatusSubmitted
	case Started:
		t.status = StatusRunning
		t.worker = e.Worker
		t.attempts = e.Attempt
		t.deadline = e.Deadline
		t.progress = 0
	case Progressed:
		t.progress = e.Progress
	case Completed:
		t.status = StatusCompleted
		t.progress = 100
		t.output = e.Output
		t.replyMessageID = e.ReplyMessageID
	case Failed:
		t.status = StatusFailed
		t.reason = e.Reason
	case Cancelled:
		t.status = StatusCancelled
		t.reason = e.Reason
	}
}

// ID returns the task's identifier.
func (t *Task) ID() string { return t.id }

// WorkspaceID returns the workspace of the task's conversation.
func (t *Task) WorkspaceID() string { return t.workspaceID }

// ConversationID returns the conversation the task answers in.
func (t *Task) ConversationID() string { return t.conversationID }

// MessageID returns the message the task was submitted for.
func (t *Task) MessageID() string { return t.messageID }

// RequestedBy returns the author of the message.
func (t *Task) RequestedBy() string { return t.requestedBy }

// Expert returns the name of the expert that handles the task.
func (t *Task) Expert() string { return t.expert }

// Input returns what the expert is given.
func (t *Task) Input() string { return t.input }

// Priority returns the priority, 1–5, 5 the most urgent.
func (t *Task) Priority() int { return t.priority }

// Status returns submitted, running, completed, failed or cancelled.
func (t *Task) Status() string { return t.status }

// Ended reports whether the task is completed, failed or cancelled.
func (t *Task) Ended() bool {
	return t.status == StatusCompleted || t.status == StatusFailed || t.status == StatusCancelled
}

// Worker returns the worker of the latest attempt ("" before the first).
func (t *Task) Worker() string { return t.worker }

// Attempts returns the number of attempts started.
func (t *Task) Attempts() int { return t.attempts }

// Deadline returns when the latest attempt is given up.
func (t *Task) Deadline() time.Time { return t.deadline }

// ProgressPercent returns the latest reported progress, 0–100.
func (t *Task) ProgressPercent() int { return t.progress }

// Output returns the expert's answer once completed.
func (t *Task) Output() string { return t.output }

// ReplyMessageID returns the id of the assistant message carrying the output.
func (t *Task) ReplyMessageID() string { return t.replyMessageID }

// Reason returns why the task failed or was cancelled.
func (t *Task) Reason() string { return t.reason }
