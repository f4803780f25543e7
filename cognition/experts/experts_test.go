package experts_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/engramhq/engram/cognition"
	"github.com/engramhq/engram/cognition/experts"
	"github.com/engramhq/engram/cognition/inmem"
	"github.com/engramhq/engram/domain"
	"github.com/engramhq/engram/domain/memory"
	"github.com/engramhq/engram/eventstore"
)

// progress records what an expert reports.
type progress struct {
	statuses []string
}

func (p *progress) Report(context.Context, int, string) error { return nil }
func (p *progress) Status(_ context.Context, text string)     { p.statuses = append(p.statuses, text) }
func (p *progress) Delta(context.Context, string)             {}

func TestEcho(t *testing.T) {
	var p progress
	res, err := experts.Echo{}.Handle(context.Background(), cognition.Task{Input: "hello"}, &p)
	if err != nil || res.Output != "ECHO: hello" {
		t.Fatalf("echo = %+v, %v", res, err)
	}
	if len(p.statuses) != 1 || p.statuses[0] != "Processing your request..." {
		t.Fatalf("statuses = %q", p.statuses)
	}
}

var now = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

func TestRecall(t *testing.T) {
	ws := uuid.NewString()
	mem := inmem.New()
	version := 0
	store := func(typ, content, metadata, source string) {
		version++
		data, _ := json.Marshal(memory.ItemStored{ItemID: uuid.NewString(), Type: typ, Content: content,
			Metadata: json.RawMessage(metadata), SourceMessageID: source})
		err := mem.Apply(context.Background(), eventstore.Event{StreamID: memory.StreamID(ws), StreamType: memory.StreamType,
			StreamVersion: version, Type: memory.EventItemStored, SchemaVersion: 1, Data: data, RecordedAt: now.Add(time.Duration(version) * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
	}
	asking := uuid.NewString()
	store(memory.TypeEntity, "Ada is a mathematician", `{"name":"Ada"}`, "")
	store(memory.TypeMessage, "Ada lives in London", `{"role":"user"}`, uuid.NewString())
	store(memory.TypeMessage, "ECHO: Ada lives in London", `{"role":"assistant"}`, uuid.NewString())
	store(memory.TypeMessage, "/recall Ada", `{"role":"user"}`, asking)
	store(memory.TypeEvent, "Launch in Paris", `{}`, "")

	recall := experts.NewRecall(mem, func() time.Time { return now.Add(time.Hour) })
	ask := func(input string) string {
		t.Helper()
		var p progress
		res, err := recall.Handle(context.Background(), cognition.Task{WorkspaceID: ws, MessageID: asking, Input: input}, &p)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.statuses) == 0 {
			t.Fatal("no status sent")
		}
		return res.Output
	}

	got := ask("Ada")
	if !strings.Contains(got, "[entity] Ada is a mathematician") || !strings.Contains(got, "[message] Ada lives in London") {
		t.Fatalf("recall Ada = %q", got)
	}
	if strings.Contains(got, "ECHO") || strings.Contains(got, "/recall") {
		t.Fatalf("recall answered with a reply or the question: %q", got)
	}
	if got := ask("what do you know about paris?"); !strings.Contains(got, "[event] Launch in Paris") || strings.Contains(got, "Ada") {
		t.Fatalf("recall paris = %q", got)
	}
	if got := ask("Babbage"); got != "I don't remember anything about “Babbage”." {
		t.Fatalf("recall unknown = %q", got)
	}
	if got := ask(""); !strings.Contains(got, "Known entities: Ada.") {
		t.Fatalf("summary = %q", got)
	}
}

func TestExpertsSet(t *testing.T) {
	set, err := cognition.NewExperts(experts.Echo{}, experts.NewRecall(inmem.New(), nil))
	if err != nil {
		t.Fatal(err)
	}
	if names := set.Names(); len(names) != 2 || names[0] != "echo" || names[1] != "memory" {
		t.Fatalf("names = %v", names)
	}
	if e, ok := set.Get("memory"); !ok || e.Name() != "memory" {
		t.Fatal("memory expert not found")
	}
	if _, err := cognition.NewExperts(experts.Echo{}, experts.Echo{}); err == nil {
		t.Fatal("two experts of one name accepted")
	}
	if !cognition.IsPermanent(cognition.Permanent(domain.Errorf(domain.CodeInvalid, "x"))) || cognition.IsPermanent(context.Canceled) {
		t.Fatal("Permanent is not recognised")
	}
}
