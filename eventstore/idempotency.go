package eventstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// Idempotency asks an append to record an idempotency key and the response
// to the request in the same transaction as the events, so that a retry of
// the request can be answered with the first response and append nothing.
// Pass it with WithIdempotency.
type Idempotency struct {
	// Scope separates keys of different callers (e.g. the actor id).
	Scope string
	// Key is the client's Idempotency-Key.
	Key string
	// RequestHash identifies the request body; the same key with another body
	// is a client error.
	RequestHash []byte
	// Render builds the response from what the append wrote. It runs inside
	// the append transaction and must not do I/O.
	Render func(AppendResult) (status int, body []byte, err error)
}

// WithIdempotency makes the append record idem's key and the response it
// renders in the append's transaction. Such an append answers one request
// and is written on its own, never merged with another command's events;
// it fails with ErrIdempotencyKeyUsed when the key was stored first by
// another request. An Idempotency without a key or a renderer is ignored.
func WithIdempotency(idem Idempotency) AppendOption {
	return func(o *appendOptions) {
		if idem.Key != "" && idem.Render != nil {
			o.idem = &idem
		}
	}
}

// StoredResponse is the first response given to an idempotent request.
type StoredResponse struct {
	Status      int
	Body        []byte
	RequestHash []byte
	Position    int64
}

// SameRequest reports whether hash identifies the same request body as the
// one stored.
func (r StoredResponse) SameRequest(hash []byte) bool { return bytes.Equal(r.RequestHash, hash) }

// IdempotentResponse returns the response stored for (scope, key), if any.
func (s *Store) IdempotentResponse(ctx context.Context, scope, key string) (StoredResponse, bool, error) {
	var r StoredResponse
	err := s.db.QueryRowContext(ctx, `SELECT status, response, request_hash, position
		FROM idempotency_keys WHERE scope = $1 AND key = $2`, scope, key).
		Scan(&r.Status, &r.Body, &r.RequestHash, &r.Position)
	if errors.Is(err, sql.ErrNoRows) {
		return StoredResponse{}, false, nil
	}
	if err != nil {
		return StoredResponse{}, false, fmt.Errorf("eventstore: idempotency key: %w", err)
	}
	return r, true, nil
}

// reserveIdempotencyKey inserts the key first, so that a concurrent request
// with the same key waits on it and then fails with ErrIdempotencyKeyUsed
// instead of racing on the stream.
func reserveIdempotencyKey(ctx context.Context, tx *sqlx.Tx, idem *Idempotency) error {
	res, err := tx.ExecContext(ctx, `INSERT INTO idempotency_keys (scope, key, request_hash, status, response, position)
		VALUES ($1, $2, $3, 0, ''::bytea, 0) ON CONFLICT (scope, key) DO NOTHING`,
		idem.Scope, idem.Key, idem.RequestHash)
	if err != nil {
		return fmt.Errorf("eventstore: reserve idempotency key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrIdempotencyKeyUsed
	}
	return nil
}

func storeIdempotentResponse(ctx context.Context, tx *sqlx.Tx, idem *Idempotency, result AppendResult) error {
	status, body, err := idem.Render(result)
	if err != nil {
		return fmt.Errorf("eventstore: render idempotent response: %w", err)
	}
	_, err = tx.ExecContext(ctx, `UPDATE idempotency_keys SET status = $3, response = $4, position = $5
		WHERE scope = $1 AND key = $2`, idem.Scope, idem.Key, status, body, result.LastPosition())
	if err != nil {
		return fmt.Errorf("eventstore: store idempotent response: %w", err)
	}
	return nil
}
