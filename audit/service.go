package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/engramhq/engram/domain/auditlog"
	"github.com/engramhq/engram/eventstore"
)

// Store is what the audit needs from the event store: appending the records
// of reads, verifying hash chains and walking the log for checkpoints.
type Store interface {
	eventstore.Appender
	VerifyLog(ctx context.Context, streamID string, onBreak func(eventstore.Break) error) (eventstore.VerifyReport, error)
	LogHorizon(ctx context.Context) (uint64, error)
	WalkLog(ctx context.Context, horizon uint64, fn func(eventstore.LogEntry) error) error
}

// Service reads, folds and verifies the event log for auditors, and records
// every read it serves. It is safe for concurrent use.
type Service struct {
	db    *sqlx.DB
	store Store
}

// New returns a Service reading the log in db and recording reads in store.
func New(db *sqlx.DB, store Store) (*Service, error) {
	if db == nil || store == nil {
		return nil, errors.New("audit: db and store are required")
	}
	return &Service{db: db, store: store}, nil
}

// Reader is who reads the log; it is recorded with every read.
type Reader struct {
	// ActorID is the user (API) or operator (CLI) reading.
	ActorID string
	// Via is auditlog.ViaAPI or auditlog.ViaCLI.
	Via string
	// SessionID or KeyID names the credential of an API reader.
	SessionID string
	KeyID     string
	// RequestID and CorrelationID become the metadata of the record.
	RequestID     string
	CorrelationID string
}

// recordAttempts bounds the retries of a record that raced with another
// read of the same actor.
const recordAttempts = 8

// recordTimeout bounds the recording of a read, which goes on even when the
// reader has gone.
const recordTimeout = 10 * time.Second

// record appends an audit.log_read event for a read to the reader's audit
// stream.
func (s *Service) record(ctx context.Context, r Reader, operation, format string, filter any, count int64, complete bool) error {
	raw, err := json.Marshal(filter)
	if err != nil {
		return fmt.Errorf("audit: record %s: %w", operation, err)
	}
	ev, err := auditlog.Record(auditlog.Read{
		ActorID: r.ActorID, Via: r.Via, Operation: operation, Format: format, Filter: raw,
		ResultCount: count, Complete: complete, SessionID: r.SessionID, KeyID: r.KeyID,
	})
	if err != nil {
		return fmt.Errorf("audit: record %s: %w", operation, err)
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("audit: record %s: %w", operation, err)
	}
	correlation := r.CorrelationID
	if correlation == "" {
		correlation = r.RequestID
	}
	md := eventstore.Metadata{ActorID: r.ActorID, RequestID: r.RequestID, CorrelationID: correlation, CausationID: r.RequestID}
	stream := eventstore.Stream{ID: auditlog.StreamID(r.ActorID), Type: auditlog.StreamType}

	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	for range recordAttempts {
		var version int
		if err := s.db.GetContext(ctx, &version, `SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = $1`, stream.ID); err != nil {
			return fmt.Errorf("audit: record %s: %w", operation, err)
		}
		_, err := s.store.Append(ctx, stream, version, []eventstore.NewEvent{{
			ID: uuid.Must(uuid.NewV7()).String(), Type: ev.EventType(), Data: data,
		}}, md)
		if errors.Is(err, eventstore.ErrConcurrency) {
			continue
		}
		if err != nil {
			return fmt.Errorf("audit: record %s: %w", operation, err)
		}
		return nil
	}
	return fmt.Errorf("audit: record %s: %w", operation, eventstore.ErrConcurrency)
}
