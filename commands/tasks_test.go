package commands_test

import (
	"testing"
	"time"

	"github.com/engramhq/engram/commands"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/access"
	"github.com/engramhq/engram/domain/catalog"
	"github.com/engramhq/engram/domain/conversation"
	"github.com/engramhq/engram/domain/task"
)

const replyID = "0190a6f4-0000-7000-8000-0000000000d2"

var (
	submitted = task.Submitted{TaskID: taskID, WorkspaceID: wsID, ConversationID: convID, MessageID: msgID, RequestedBy: bobID,
		Expert: "echo", Input: "hello", Priority: 3}
	running   = task.Started{Worker: "w1", Attempt: 1, Deadline: t0.Add(time.Minute)}
	completed = task.Completed{Output: "ECHO: hello", ReplyMessageID: replyID}
	// reply is the message that carries the completed task's output.
	reply = conversation.MessagePosted{MessageID: replyID, AuthorID: "expert:echo", Role: conversation.RoleAssistant,
		Content: "ECHO: hello", Metadata: object(`{"expert":"echo","task_id":"` + taskID + `"}`)}
)

// echo is the team's task for bob's message; more events follow its
// submission.
func echo(more ...domain.Event) given {
	return stream(catalog.Tasks.Kind, taskID, append([]domain.Event{submitted}, more...)...)
}

func TestTaskHandlers(t *testing.T) {
	submit := func(w *world) ([]domain.Event, error) {
		_, err := w.cmds.SubmitTask.Handle(w.ctx, commands.SubmitTask{TaskID: taskID, WorkspaceID: wsID, ConversationID: convID,
			MessageID: msgID, RequestedBy: bobID, Expert: "echo", Input: "hello", Priority: 3})
		return then(err, submitted)
	}
	start := func(worker string, retry bool, attempt int) func(w *world) ([]domain.Event, error) {
		return func(w *world) ([]domain.Event, error) {
			_, err := w.cmds.StartTask.Handle(w.ctx, commands.StartTask{TaskID: taskID, Worker: worker, Timeout: time.Minute, Retry: retry})
			return then(err, task.Started{Worker: worker, Attempt: attempt, Deadline: t0.Add(time.Minute)})
		}
	}
	progress := func(worker string) func(w *world) ([]domain.Event, error) {
		return func(w *world) ([]domain.Event, error) {
			_, err := w.cmds.ReportTaskProgress.Handle(w.ctx, commands.ReportTaskProgress{TaskID: taskID, Worker: worker, Progress: 50, Note: "half"})
			return then(err, task.Progressed{Progress: 50, Note: "half"})
		}
	}
	complete := func(w *world) ([]domain.Event, error) {
		_, err := w.cmds.CompleteTask.Handle(w.ctx, commands.CompleteTask{TaskID: taskID, Worker: "w1", Output: "ECHO: hello", ReplyMessageID: replyID})
		return then(err, completed)
	}
	fail := func(worker string) func(w *world) ([]domain.Event, error) {
		return func(w *world) ([]domain.Event, error) {
			_, err := w.cmds.FailTask.Handle(w.ctx, commands.FailTask{TaskID: taskID, Worker: worker, Reason: "boom"})
			return then(err, task.Failed{Reason: "boom", Attempts: 1})
		}
	}
	cancel := func(actor access.Actor) func(w *world) ([]domain.Event, error) {
		return func(w *world) ([]domain.Event, error) {
			_, err := w.cmds.CancelTask.Handle(w.ctx, commands.CancelTask{Actor: actor, TaskID: taskID})
			return then(err, task.Cancelled{Reason: task.ReasonCancelled})
		}
	}
	run(t, []handlerCase{
		// SubmitTask
		{name: "a task is submitted", when: submit},
		{name: "and only once", given: []given{echo()}, when: submit, code: domain.CodeConflict},
		{name: "an invalid task", when: func(w *world) ([]domain.Event, error) {
			_, err := w.cmds.SubmitTask.Handle(w.ctx, commands.SubmitTask{TaskID: taskID, WorkspaceID: wsID, ConversationID: convID,
				MessageID: msgID, RequestedBy: bobID, Expert: "two words", Priority: 9})
			return nil, err
		}, code: domain.CodeInvalid, fields: []string{"expert", "priority"}},
		// StartTask
		{name: "a worker claims it", given: []given{echo()}, when: start("w1", false, 1)},
		{name: "not while it runs for another", given: []given{echo(running)}, when: start("w2", false, 2), code: domain.CodeConflict},
		{name: "its worker retries it", given: []given{echo(running)}, when: start("w1", true, 2)},
		{name: "a missing task", when: start("w1", false, 1), code: domain.CodeNotFound},
		// ReportTaskProgress, CompleteTask, FailTask
		{name: "its worker reports progress", given: []given{echo(running)}, when: progress("w1")},
		{name: "another worker may not", given: []given{echo(running)}, when: progress("w2"), code: domain.CodeConflict},
		{name: "its worker completes it", given: []given{echo(running)}, when: complete},
		{name: "not once cancelled", given: []given{echo(running, task.Cancelled{Reason: "stop"})}, when: complete,
			code: domain.CodeConflict},
		{name: "its worker fails it", given: []given{echo(running)}, when: fail("w1")},
		{name: "not after it ended", given: []given{echo(running, completed)}, when: fail("w1"), code: domain.CodeConflict},
		// CancelTask
		{name: "an editor cancels it", given: []given{team(), echo()}, when: cancel(bob), actor: bobID},
		{name: "a viewer may not", given: []given{team(), echo()}, when: cancel(cy), code: domain.CodeForbidden},
		{name: "a stranger does not find it", given: []given{team(), echo()}, when: cancel(eve), code: domain.CodeNotFound},
		{name: "not after it ended", given: []given{team(), echo(running, completed)}, when: cancel(bob), code: domain.CodeConflict},
	})
}

func TestReplyAndRoutingHandlers(t *testing.T) {
	postReply := func(w *world) ([]domain.Event, error) {
		r, err := w.cmds.PostReply.Handle(w.ctx, commands.PostReply{TaskID: taskID})
		if r.AlreadyPosted {
			return nil, err
		}
		return then(err, reply)
	}
	// decide asks to delegate messageID to the echo expert; the answer
	// must be onRecord's decision, recorded by this command when fresh.
	decide := func(messageID string, onRecord conversation.RoutingDecided, fresh bool) func(w *world) ([]domain.Event, error) {
		return func(w *world) ([]domain.Event, error) {
			r, err := w.cmds.DecideRouting.Handle(w.ctx, commands.DecideRouting{ConversationID: convID, MessageID: messageID,
				Action: conversation.ActionDelegate, Expert: "echo", Priority: 3, Reason: "a greeting"})
			if err == nil && (r.Decision != onRecord || r.AlreadyDecided == fresh) {
				t.Errorf("decision %+v (already decided: %v), want %+v", r.Decision, r.AlreadyDecided, onRecord)
			}
			if !fresh {
				return nil, err
			}
			return then(err, onRecord)
		}
	}
	delegated := conversation.RoutingDecided{MessageID: msgID, Action: conversation.ActionDelegate, Expert: "echo", Priority: 3,
		Reason: "a greeting"}
	decided := conversation.RoutingDecided{MessageID: msgID, Action: conversation.ActionIgnore, Priority: 1}
	run(t, []handlerCase{
		// PostReply
		{name: "the answer of a completed task is posted", given: []given{team(), plans(), echo(running, completed)},
			when: postReply, actor: "expert:echo"},
		{name: "and only once", given: []given{team(), plans(reply), echo(running, completed)}, when: postReply},
		{name: "not before it is completed", given: []given{team(), plans(), echo(running)}, when: postReply, code: domain.CodeConflict},
		{name: "not into an archived conversation", given: []given{team(), plans(conversation.Archived{}), echo(running, completed)},
			when: postReply, code: domain.CodeConflict},
		// DecideRouting
		{name: "the router decides on a message", given: []given{team(), plans()}, when: decide(msgID, delegated, true)},
		{name: "a decision on record is kept", given: []given{team(), plans(decided)}, when: decide(msgID, decided, false)},
		{name: "a message not in the conversation", given: []given{team(), plans()}, when: decide(missingID, delegated, true),
			code: domain.CodeNotFound},
		{name: "not in an archived conversation", given: []given{team(), plans(conversation.Archived{})},
			when: decide(msgID, delegated, true), code: domain.CodeConflict},
	})
}
