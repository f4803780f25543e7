package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/engramhq/engram/cognition/postgres"
	"github.com/engramhq/engram/test/pgtest"
)

func TestTasksAndConversations(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	since := now.Add(-10 * time.Minute)
	task := func(status, expert string, priority int, submitted time.Time, deadline *time.Time) string {
		id := uuid.NewString()
		_, err := db.ExecContext(ctx, `INSERT INTO tasks (id, workspace_id, conversation_id, message_id, requested_by, expert, input,
			priority, status, deadline, submitted_at, updated_at, version) VALUES ($1, $2, $2, $2, 'u', $3, '', $4, $5, $6, $7, $7, 1)`,
			id, uuid.NewString(), expert, priority, status, deadline, submitted)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	passed, ahead := now.Add(-time.Second), now.Add(time.Minute)
	urgent := task("submitted", "echo", 5, now.Add(-time.Minute), nil)
	older := task("submitted", "echo", 3, now.Add(-2*time.Minute), nil)
	newer := task("submitted", "echo", 3, now.Add(-time.Minute), nil)
	abandoned := task("running", "echo", 3, now.Add(-3*time.Minute), &passed)
	task("running", "echo", 3, now.Add(-time.Minute), &ahead)       // runs elsewhere
	task("completed", "echo", 5, now.Add(-time.Minute), nil)        // done
	task("submitted", "llm", 5, now.Add(-time.Minute), nil)         // not our expert
	stale := task("submitted", "echo", 3, now.Add(-time.Hour), nil) // too old
	staleRunning := task("running", "llm", 3, now.Add(-time.Hour), &passed)
	task("running", "echo", 3, now.Add(-time.Hour), &ahead) // old but running

	tasks := postgres.NewTasks(db)
	got, err := tasks.Claimable(ctx, []string{"echo", "memory"}, now, since, 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{urgent, abandoned, older, newer}; !slices.Equal(got, want) {
		t.Fatalf("claimable = %v, want %v", got, want)
	}
	if got, _ := tasks.Claimable(ctx, []string{"echo"}, now, since, 1); len(got) != 1 || got[0] != urgent {
		t.Fatalf("limit 1 = %v", got)
	}
	got, err = tasks.Stale(ctx, now, since, 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{stale, staleRunning}; !slices.Equal(got, want) && !slices.Equal(got, []string{staleRunning, stale}) {
		t.Fatalf("stale = %v, want %v", got, want)
	}

	conv := uuid.NewString()
	var ids []string
	for i, m := range []struct{ role, content string }{{"user", "one"}, {"assistant", "ECHO: one"}, {"user", "two"}, {"user", "three"}} {
		id := uuid.NewString()
		ids = append(ids, id)
		if _, err := db.ExecContext(ctx, `INSERT INTO messages (id, conversation_id, workspace_id, author_id, role, content, created_at,
			position, stream_version) VALUES ($1, $2, $2, 'a', $3, $4, $5, $6, $7)`, id, conv, m.role, m.content, now, i+10, i+1); err != nil {
			t.Fatal(err)
		}
	}
	history := postgres.NewConversations(db)
	turns, err := history.Recent(ctx, conv, ids[3], 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(turns) != 2 || turns[0].Content != "ECHO: one" || turns[1].Content != "two" || turns[0].Role != "assistant" {
		t.Fatalf("recent before the last = %+v", turns)
	}
	if turns, _ := history.Recent(ctx, conv, uuid.NewString(), 10); len(turns) != 4 || turns[3].Content != "three" {
		t.Fatalf("recent before an unknown message = %+v", turns)
	}
}
