package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"

	"github.com/engramhq/engram/eventstore"
)

// exampleStore connects to the database named by ENGRAM_EXAMPLE_DATABASE_URL
// (a migrated Engram database).
func exampleStore() (*eventstore.Store, error) {
	db, err := sqlx.Open("postgres", os.Getenv("ENGRAM_EXAMPLE_DATABASE_URL"))
	if err != nil {
		return nil, err
	}
	return eventstore.New(db)
}

// Append the first events of a stream, then more with the version just
// written as the expected version.
func ExampleStore_Append() {
	ctx := context.Background()
	store, err := exampleStore()
	if err != nil {
		fmt.Println(err)
		return
	}
	stream := eventstore.Stream{ID: "conversation-" + uuid.NewString(), Type: "conversation"}
	md := eventstore.Metadata{ActorID: "user-1", RequestID: "req-1", CorrelationID: "req-1"}

	res, err := store.Append(ctx, stream, eventstore.NoStream, []eventstore.NewEvent{{
		ID: uuid.NewString(), Type: "conversation.created", Data: json.RawMessage(`{"title":"Kickoff"}`),
	}}, md)
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = store.Append(ctx, stream, res.LastVersion(), []eventstore.NewEvent{{
		ID: uuid.NewString(), Type: "conversation.message_posted", Data: json.RawMessage(`{"content":"hello"}`),
	}}, md)
	fmt.Println(err)
}

// A writer that read an older version loses the race: nothing is written.
func ExampleErrConcurrency() {
	ctx := context.Background()
	store, err := exampleStore()
	if err != nil {
		fmt.Println(err)
		return
	}
	stream := eventstore.Stream{ID: "conversation-" + uuid.NewString(), Type: "conversation"}
	first := []eventstore.NewEvent{{ID: uuid.NewString(), Type: "conversation.created", Data: json.RawMessage(`{}`)}}
	if _, err := store.Append(ctx, stream, eventstore.NoStream, first, eventstore.Metadata{}); err != nil {
		fmt.Println(err)
		return
	}
	again := []eventstore.NewEvent{{ID: uuid.NewString(), Type: "conversation.created", Data: json.RawMessage(`{}`)}}
	_, err = store.Append(ctx, stream, eventstore.NoStream, again, eventstore.Metadata{})
	fmt.Println(errors.Is(err, eventstore.ErrConcurrency))
}

// Tail the log in commit order: events whose transactions commit late are
// never skipped.
func ExampleStore_ReadCommitted() {
	ctx := context.Background()
	store, err := exampleStore()
	if err != nil {
		fmt.Println(err)
		return
	}
	var cursor eventstore.Cursor
	for {
		events, err := store.ReadCommitted(ctx, cursor, 500)
		if err != nil || len(events) == 0 {
			break
		}
		for _, e := range events {
			fmt.Println(e.GlobalPosition, e.Type)
		}
		last := events[len(events)-1]
		cursor = last.Cursor()
	}
}
