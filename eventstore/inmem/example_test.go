package inmem_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/eventstore/inmem"
)

// An append names the version it expects the stream at; a second writer
// that expected the same version is refused and nothing is written.
func Example() {
	ctx := context.Background()
	s := inmem.New()
	stream := eventstore.Stream{ID: "note-1", Type: "note"}
	created := eventstore.NewEvent{ID: "e-1", Type: "note.created", Data: json.RawMessage(`{"text":"hi"}`)}
	res, _ := s.Append(ctx, stream, eventstore.NoStream, []eventstore.NewEvent{created}, eventstore.Metadata{ActorID: "ada"})
	fmt.Println("version", res.LastVersion(), "at position", res.LastPosition())

	edited := eventstore.NewEvent{ID: "e-2", Type: "note.edited", Data: json.RawMessage(`{"text":"hello"}`)}
	_, err := s.Append(ctx, stream, eventstore.NoStream, []eventstore.NewEvent{edited}, eventstore.Metadata{})
	fmt.Println("expected no stream:", errors.Is(err, eventstore.ErrConcurrency))

	events, _ := s.ReadStream(ctx, stream.ID, 0)
	fmt.Println(len(events), "event, chained:", len(eventstore.VerifyChain(events)) == 0)
	// Output:
	// version 1 at position 1
	// expected no stream: true
	// 1 event, chained: true
}
