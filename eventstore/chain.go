package eventstore

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ChainHash returns the hash that Append gives e when the event before it
// in its stream has the hash prev (nil for version 1): SHA-256 of prev and
// e's canonical form, with the exact scheme. It fails for data or metadata
// that Append refuses (a number beyond the range of a double). Stores other
// than Store (an in-memory one) chain their events with it.
func ChainHash(prev []byte, e *Event) ([]byte, error) {
	md, err := json.Marshal(e.Metadata)
	if err != nil {
		return nil, fmt.Errorf("eventstore: metadata: %w", err)
	}
	return chainHash(prev, e, e.Data, md)
}

// VerifyChain checks the events of one stream, given in version order from
// its first: the version sequence, each prev_hash and each hash, as
// VerifyStream does for a stream of the database. It returns every break
// found (none means the stream is intact).
func VerifyChain(events []Event) []Break {
	var breaks []Break
	chain := chainCheck{expected: 1}
	for _, e := range events {
		md, _ := json.Marshal(e.Metadata) // strings only: it always encodes
		breaks = append(breaks, chain.check(&e, string(e.Data), string(md))...)
	}
	return breaks
}

// CheckAppend returns the error Append gives for an append it refuses
// before looking at the store: ErrNoEvents without events, and an error for
// a stream without id or type, a negative expected version, an event
// without id or type, or data that is not a JSON object.
func CheckAppend(stream Stream, expectedVersion int, events []NewEvent) error {
	if len(events) == 0 {
		return ErrNoEvents
	}
	if stream.ID == "" || stream.Type == "" {
		return errors.New("eventstore: stream id and type are required")
	}
	if expectedVersion < 0 {
		return fmt.Errorf("eventstore: expected version %d < 0", expectedVersion)
	}
	for _, ne := range events {
		if ne.ID == "" || ne.Type == "" {
			return errors.New("eventstore: event id and type are required")
		}
		if !isJSONObject(ne.Data) {
			return fmt.Errorf("eventstore: event %s: data must be a JSON object", ne.Type)
		}
	}
	return nil
}

// Claims returns the unique claims that opts ask an append to make (see
// WithClaims), for stores other than Store.
func Claims(opts ...AppendOption) []Claim { return optionsOf(opts).claims }

// IdempotencyOf returns the idempotency key that opts ask an append to
// record (see WithIdempotency), or nil, for stores other than Store.
func IdempotencyOf(opts ...AppendOption) *Idempotency { return optionsOf(opts).idem }

func optionsOf(opts []AppendOption) appendOptions {
	var o appendOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}
