package cognition_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/engramhq/engram/cognition"
	"github.com/engramhq/engram/cognition/inmem"
	"github.com/engramhq/engram/domain/memory"
	"github.com/engramhq/engram/eventstore"
	"github.com/engramhq/engram/projections"
)

// Shouting sends messages written in capitals to the llm expert, urgently,
// and lets the echo expert answer the others.
type Shouting struct{}

func (Shouting) Route(_ context.Context, m cognition.Message) (cognition.Decision, error) {
	if strings.ToUpper(m.Content) == m.Content {
		return cognition.Decision{Action: cognition.ActionDelegate, Expert: "llm", Priority: cognition.MaxPriority,
			Reason: "shouting", Input: m.Content}, nil
	}
	return cognition.Decision{Action: cognition.ActionRespond, Expert: "echo", Priority: cognition.DefaultPriority,
		Reason: "calm", Input: m.Content}, nil
}

// A router decides, for every message a user posts, what to do with it.
func Example_router() {
	var r cognition.Router = Shouting{}
	d, _ := r.Route(context.Background(), cognition.Message{Role: "user", Content: "HELP"})
	fmt.Println(d.Action, d.Expert, d.Priority, d.Validate() == nil)
	// Output: delegate llm 5 true
}

// Reverse answers with its input reversed.
type Reverse struct{}

func (Reverse) Name() string           { return "reverse" }
func (Reverse) Capabilities() []string { return []string{"respond"} }

func (Reverse) Handle(ctx context.Context, t cognition.Task, p cognition.Progress) (cognition.Result, error) {
	p.Status(ctx, "Reversing...")
	r := []rune(t.Input)
	slices.Reverse(r)
	if err := p.Report(ctx, 100, "reversed"); err != nil {
		return cognition.Result{}, err // cancelled, or no longer ours: stop
	}
	return cognition.Result{Output: string(r)}, nil
}

// printProgress prints what an expert reports.
type printProgress struct{}

func (printProgress) Report(_ context.Context, percent int, note string) error {
	fmt.Printf("progress %d%% %s\n", percent, note)
	return nil
}
func (printProgress) Status(_ context.Context, text string) { fmt.Println("status", text) }
func (printProgress) Delta(_ context.Context, text string)  { fmt.Println("delta", text) }

// An expert handles the tasks routed to it; the worker runs it outside any
// transaction, retries it, and posts its answer.
func Example_expert() {
	experts, err := cognition.NewExperts(Reverse{})
	if err != nil {
		panic(err)
	}
	e, _ := experts.Get("reverse")
	res, _ := e.Handle(context.Background(), cognition.Task{Input: "engram"}, printProgress{})
	fmt.Println(res.Output)
	// Output:
	// status Reversing...
	// progress 100% reversed
	// margne
}

// Feed is a consumer group that keeps a Memory up to date with the log.
type Feed struct{ Memory *inmem.Memory }

func (Feed) Name() string { return "my_memory" }

func (f Feed) Apply(ctx context.Context, _ projections.Execer, e eventstore.Event) error {
	return f.Memory.Apply(ctx, e)
}

// A memory is a projection of memory.* events that answers searches.
func Example_memory() {
	m := inmem.New()
	var feed projections.Projector = Feed{Memory: m}
	data, _ := json.Marshal(memory.ItemStored{ItemID: "i-1", Type: memory.TypeEntity, Content: "Ada: a mathematician",
		Metadata: json.RawMessage(`{"name":"Ada"}`)})
	_ = feed.Apply(context.Background(), nil, eventstore.Event{StreamID: memory.StreamID("w-1"), StreamType: memory.StreamType,
		StreamVersion: 1, Type: memory.EventItemStored, SchemaVersion: 1, Data: data, RecordedAt: time.Now()})

	items, _ := m.Search(context.Background(), "w-1", cognition.Query{Words: "ada"})
	fmt.Println(len(items), cognition.Describe(items[0], 80))
	// Output: 1 Ada: a mathematician
}
