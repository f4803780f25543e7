package cognition

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
)

// Task is a piece of work as an Expert sees it.
type Task struct {
	ID             string
	WorkspaceID    string
	ConversationID string
	// MessageID is the message the task answers; RequestedBy its author.
	MessageID   string
	RequestedBy string
	Expert      string
	// Input is the message's content without its command word.
	Input    string
	Priority int
	// Attempt counts from 1; a failed attempt may be retried.
	Attempt int
}

// Result is what an expert answers. An empty Output posts no reply.
type Result struct {
	Output string
}

// Progress is how an expert tells the conversation what it is doing.
type Progress interface {
	// Report records how far the task has come (0–100) with a short note,
	// as a task.progressed event. It fails when the task was cancelled or
	// is no longer this attempt's; the expert should then stop.
	Report(ctx context.Context, percent int, note string) error
	// Status sends a short, ephemeral status line to the conversation's
	// live subscribers. It is not stored.
	Status(ctx context.Context, text string)
	// Delta streams a piece of the answer to the conversation's live
	// subscribers. It is not stored: the whole answer is, once returned.
	Delta(ctx context.Context, text string)
}

// Expert is a domain expert: it handles the tasks routed to it.
type Expert interface {
	// Name is the expert's stable name ("echo"), used in routing rules and
	// in the author id of its replies ("expert:echo").
	Name() string
	// Capabilities says what the expert can do, for clients (GET
	// /v1/experts).
	Capabilities() []string
	// Handle does the work. It runs outside any transaction and may call
	// the network; it must return soon after ctx is done (the task was
	// cancelled, its attempt timed out or the server is shutting down).
	// An error fails the attempt: it is retried with backoff unless it is
	// Permanent.
	Handle(ctx context.Context, t Task, p Progress) (Result, error)
}

// permanent marks an error that retrying cannot fix.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as one that another attempt cannot fix (a bad request,
// a missing credential): the task fails at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

// expertName is the shape of an expert's name.
var expertName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)

// Experts is the set of experts an instance runs, in the order given.
type Experts struct {
	byName map[string]Expert
	order  []string
}

// NewExperts returns the set of the given experts. It refuses an expert
// without a valid name (lower-case letters, digits, "_" and "-", starting
// with a letter, at most 64) and two experts of the same name.
func NewExperts(experts ...Expert) (*Experts, error) {
	s := &Experts{byName: map[string]Expert{}}
	for _, e := range experts {
		if e == nil {
			return nil, errors.New("cognition: nil expert")
		}
		name := e.Name()
		if !expertName.MatchString(name) {
			return nil, fmt.Errorf("cognition: expert name %q is not a lower-case name", name)
		}
		if _, dup := s.byName[name]; dup {
			return nil, fmt.Errorf("cognition: two experts are called %q", name)
		}
		s.byName[name] = e
		s.order = append(s.order, name)
	}
	return s, nil
}

// Get returns the expert called name.
func (s *Experts) Get(name string) (Expert, bool) {
	e, ok := s.byName[name]
	return e, ok
}

// Names returns the experts' names in order.
func (s *Experts) Names() []string { return slices.Clone(s.order) }

// All returns the experts in order.
func (s *Experts) All() []Expert {
	out := make([]Expert, len(s.order))
	for i, n := range s.order {
		out[i] = s.byName[n]
	}
	return out
}

// Turn is one message of a conversation's history, as an expert reads it.
type Turn struct {
	ID       string `db:"id"`
	Role     string `db:"role"`
	AuthorID string `db:"author_id"`
	Content  string `db:"content"`
}
