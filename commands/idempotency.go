package commands

import "github.com/engramhq/engram/eventstore"

// ErrIdempotencyKeyUsed means that the idempotency key of a command was
// used first by another request: the command wrote nothing, and the
// response to that request is stored under the key.
var ErrIdempotencyKeyUsed = eventstore.ErrIdempotencyKeyUsed

// Idempotency applies a creating command at most once per key. The key and
// the response rendered from the command's result are stored in the
// transaction of the command's events; a retry with the same key appends
// nothing and fails with ErrIdempotencyKeyUsed, so that the caller answers
// it with the stored response.
type Idempotency[R any] struct {
	// Scope separates the keys of different callers (the actor's id).
	Scope string
	// Key is the client's idempotency key.
	Key string
	// RequestHash identifies the request the key was sent with: the same
	// key with another request is the client's mistake.
	RequestHash []byte
	// Render builds the response to the command's result. It runs inside
	// the append's transaction: it must be deterministic and do no I/O.
	Render func(R) (status int, body []byte, err error)
}

// appendOptions returns the option that makes the command's append store
// the key and the response to the result that result builds from what the
// append wrote; none for a nil idem.
func (idem *Idempotency[R]) appendOptions(result func(Written) R) []eventstore.AppendOption {
	if idem == nil {
		return nil
	}
	return []eventstore.AppendOption{eventstore.WithIdempotency(eventstore.Idempotency{
		Scope: idem.Scope, Key: idem.Key, RequestHash: idem.RequestHash,
		Render: func(res eventstore.AppendResult) (int, []byte, error) {
			// An append with a key is written alone: its events are the
			// command's.
			return idem.Render(result(written(res, res.LastVersion())))
		},
	})}
}
