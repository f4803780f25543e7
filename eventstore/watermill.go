package eventstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/lib/pq"

	"github.com/engramhq/engram/platform/defaults"
)

// Topic is the Watermill topic name under which the events table is consumed.
const Topic = "events"

// ErrPublishNotSupported is returned by SchemaAdapter.InsertQuery: events are
// written only by Store.Append, which keeps the hash chain and versions.
var ErrPublishNotSupported = errors.New("eventstore: publish through Store.Append")

// Watermill message metadata keys carrying the event envelope.
const (
	MetaType          = "type"
	MetaStreamID      = "stream_id"
	MetaStreamType    = "stream_type"
	MetaStreamVersion = "stream_version"
	MetaPosition      = "global_position"
	MetaTxID          = "tx_id"
	MetaSchemaVersion = "schema_version"
	MetaRecordedAt    = "recorded_at"
	MetaCorrelationID = "correlation_id"
	MetaCausationID   = "causation_id"
	MetaActorID       = "actor_id"
	MetaRequestID     = "request_id"
	// MetaMore is set ("1") on an event the Tailer delivers when more
	// events of the same read follow it at once. A live sink may hold the
	// wake-ups of its readers until the last of them, so that a reader
	// gets the read's events in one go. It is a hint: a handler must work
	// the same, one event at a time, when no subscriber sets it.
	MetaMore = "more"
)

// SchemaAdapter makes the events table a Watermill topic for watermill-sql
// subscribers: events are read in (tx_id, global_position) order below the
// snapshot xmin, so an event whose transaction commits late is never skipped.
// There is no separate outbox: each event is written once.
type SchemaAdapter struct {
	// BatchSize is the number of events read per query (default 100).
	BatchSize int
}

var _ wsql.SchemaAdapter = SchemaAdapter{}

// OffsetsAdapter stores consumer-group checkpoints in the consumer_offsets
// table (created by the migrations).
var OffsetsAdapter = wsql.DefaultPostgreSQLOffsetsAdapter{
	GenerateMessagesOffsetsTableName: func(string) string { return "consumer_offsets" },
}

// SchemaInitializingQueries returns nothing: the schema belongs to the migrations.
func (SchemaAdapter) SchemaInitializingQueries(string) []wsql.Query { return nil }

// InsertQuery refuses: publish through Store.Append.
func (SchemaAdapter) InsertQuery(string, message.Messages) (wsql.Query, error) {
	return wsql.Query{}, ErrPublishNotSupported
}

// SubscribeIsolationLevel is repeatable read, as for watermill-sql's own
// PostgreSQL schema.
func (SchemaAdapter) SubscribeIsolationLevel() sql.IsolationLevel { return sql.LevelRepeatableRead }

// SelectQuery returns the next batch of events for a consumer group.
func (a SchemaAdapter) SelectQuery(topic, consumerGroup string, offsets wsql.OffsetsAdapter) wsql.Query {
	next := offsets.NextOffsetQuery(topic, consumerGroup)
	batch := a.BatchSize
	defaults.Positive(&batch, 100)
	// The row comparison with ORDER BY … LIMIT is walked on the
	// (tx_id, global_position) index from the checkpoint and stops after the
	// batch, whatever the group's backlog. (Written as watermill-sql's
	// PostgreSQL schema does, "(tx_id = $x AND position > $y) OR tx_id > $x",
	// it is planned as a bitmap scan that reads and sorts the whole backlog
	// on every poll, so that a group that falls behind falls further behind.)
	// tx_id is also selected raw as tx_order, because eventColumns renders
	// it as text. The ORDER BY names the table's columns: a bare "tx_id"
	// there is the text output column, and ordering transaction ids as text
	// puts 100 before 99, so that a batch whose candidates cross a power of
	// ten took the higher ids, acknowledged past the lower ones and never
	// delivered them.
	q := `WITH last_processed AS (` + next.Query + `)
		SELECT tx_id AS tx_order, ` + eventColumns + ` FROM events
		WHERE (tx_id, global_position) > (
			(SELECT last_processed_transaction_id FROM last_processed), (SELECT offset_acked FROM last_processed))
		AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
		ORDER BY events.tx_id, events.global_position LIMIT ` + strconv.Itoa(batch)
	return wsql.Query{Query: q, Args: next.Args}
}

// UnmarshalMessage turns a selected row into a Watermill message.
func (SchemaAdapter) UnmarshalMessage(row wsql.Scanner) (wsql.Row, error) {
	var txOrder any
	e, err := scanEvent(prefixScanner{row: row, prefix: []any{&txOrder}})
	if err != nil {
		return wsql.Row{}, err
	}
	msg := ToMessage(e)
	return wsql.Row{
		Offset:    e.GlobalPosition,
		UUID:      []byte(e.EventID),
		Payload:   e.Data,
		Msg:       msg,
		ExtraData: map[string]any{"transaction_id": strconv.FormatUint(e.TxID, 10)},
	}, nil
}

type prefixScanner struct {
	row    wsql.Scanner
	prefix []any
}

func (p prefixScanner) Scan(dest ...any) error {
	return p.row.Scan(append(p.prefix, dest...)...)
}

// ToMessage converts a stored event into a Watermill message: the payload is
// the event data and the envelope travels in the metadata. Handlers turn it
// back with FromMessage, whatever subscriber delivered it.
func ToMessage(e Event) *message.Message {
	msg := message.NewMessage(e.EventID, message.Payload(e.Data))
	m := msg.Metadata
	m.Set(MetaType, e.Type)
	m.Set(MetaStreamID, e.StreamID)
	m.Set(MetaStreamType, e.StreamType)
	m.Set(MetaStreamVersion, strconv.Itoa(e.StreamVersion))
	m.Set(MetaPosition, strconv.FormatInt(e.GlobalPosition, 10))
	m.Set(MetaTxID, strconv.FormatUint(e.TxID, 10))
	m.Set(MetaSchemaVersion, strconv.Itoa(e.SchemaVersion))
	m.Set(MetaRecordedAt, e.RecordedAt.UTC().Format(time.RFC3339Nano))
	setIf(m, MetaCorrelationID, e.Metadata.CorrelationID)
	setIf(m, MetaCausationID, e.Metadata.CausationID)
	setIf(m, MetaActorID, e.Metadata.ActorID)
	setIf(m, MetaRequestID, e.Metadata.RequestID)
	return msg
}

func setIf(m message.Metadata, k, v string) {
	if v != "" {
		m.Set(k, v)
	}
}

// EventOf rebuilds the event a message carries (FromMessage) for a handler
// over the log's messages. A message that is not an event is logged as a
// warning of what, the handler's name, and ok is false: the handler skips
// it.
func EventOf(msg *message.Message, logger *slog.Logger, what string) (e Event, ok bool) {
	e, err := FromMessage(msg)
	if err != nil {
		logger.Warn(what+": message is not an event; skipped", "message_id", msg.UUID, "err", err)
		return Event{}, false
	}
	return e, true
}

// FromMessage rebuilds the event envelope carried by a message made with
// ToMessage. Hashes are not carried.
func FromMessage(msg *message.Message) (Event, error) {
	m := msg.Metadata
	e := Event{
		EventID:    msg.UUID,
		StreamID:   m.Get(MetaStreamID),
		StreamType: m.Get(MetaStreamType),
		Type:       m.Get(MetaType),
		Data:       json.RawMessage(msg.Payload),
		Metadata: Metadata{
			CorrelationID: m.Get(MetaCorrelationID),
			CausationID:   m.Get(MetaCausationID),
			ActorID:       m.Get(MetaActorID),
			RequestID:     m.Get(MetaRequestID),
		},
	}
	var err error
	if e.StreamVersion, err = strconv.Atoi(m.Get(MetaStreamVersion)); err != nil {
		return Event{}, fmt.Errorf("eventstore: message %s: stream version: %w", msg.UUID, err)
	}
	if e.GlobalPosition, err = strconv.ParseInt(m.Get(MetaPosition), 10, 64); err != nil {
		return Event{}, fmt.Errorf("eventstore: message %s: position: %w", msg.UUID, err)
	}
	if tx := m.Get(MetaTxID); tx != "" {
		if e.TxID, err = strconv.ParseUint(tx, 10, 64); err != nil {
			return Event{}, fmt.Errorf("eventstore: message %s: tx id: %w", msg.UUID, err)
		}
	}
	if e.SchemaVersion, err = strconv.Atoi(m.Get(MetaSchemaVersion)); err != nil {
		return Event{}, fmt.Errorf("eventstore: message %s: schema version: %w", msg.UUID, err)
	}
	if e.RecordedAt, err = time.Parse(time.RFC3339Nano, m.Get(MetaRecordedAt)); err != nil {
		return Event{}, fmt.Errorf("eventstore: message %s: recorded at: %w", msg.UUID, err)
	}
	if e.StreamID == "" || e.Type == "" {
		return Event{}, fmt.Errorf("eventstore: message %s carries no event envelope", msg.UUID)
	}
	return e, nil
}

// SubscriberConfig configures NewSubscriber.
type SubscriberConfig struct {
	// ConsumerGroup is the stable name of the consumer (a projector's name).
	ConsumerGroup string
	// PollInterval bounds how long an idle consumer waits before looking again
	// when no wake-up arrives.
	PollInterval time.Duration
	// BatchSize is the number of events read per query.
	BatchSize int
	// AckDeadline is how long a handler may take with one event.
	AckDeadline time.Duration
	// Wake, when set, tells the group that it has events to read (e.g.
	// Notifier.Subscribe); the group then polls only when told, or after
	// idlePolls poll intervals without a word.
	Wake <-chan struct{}
}

// NewSubscriber returns a watermill-sql subscriber that reads the events
// table as a consumer group. A handler may write its read model through the
// subscriber's transaction (wsql.TxFromContext(msg.Context())): those writes
// commit together with the group's checkpoint.
func NewSubscriber(db *sql.DB, cfg SubscriberConfig, logger watermill.LoggerAdapter) (*wsql.Subscriber, error) {
	if cfg.ConsumerGroup == "" {
		return nil, errors.New("eventstore: consumer group is required")
	}
	defaults.Positive(&cfg.PollInterval, 100*time.Millisecond)
	deadline := cfg.AckDeadline
	defaults.Positive(&deadline, 30*time.Second)
	return wsql.NewSubscriber(db, wsql.SubscriberConfig{
		ConsumerGroup:  cfg.ConsumerGroup,
		AckDeadline:    &deadline,
		PollInterval:   cfg.PollInterval,
		ResendInterval: 10 * time.Millisecond,
		RetryInterval:  time.Second,
		BackoffManager: &wakeBackoff{poll: cfg.PollInterval, retry: time.Second, wake: cfg.Wake},
		SchemaAdapter:  SchemaAdapter{BatchSize: cfg.BatchSize},
		OffsetsAdapter: OffsetsAdapter,
	}, logger)
}

// wakeBackoff is a watermill-sql BackoffManager. After a poll that found
// events the group polls again at once; after an empty one it waits to be
// told that there is something to read, polling anyway
// after idlePolls poll intervals in case a word was lost. Without a wake
// channel it polls every poll interval.
type wakeBackoff struct {
	poll, retry time.Duration
	wake        <-chan struct{}
}

const (
	// idlePolls is how many poll intervals a told group waits at most.
	idlePolls = 5
	// hotInterval is how soon a group looks again after another instance
	// took its batch.
	hotInterval = 5 * time.Millisecond
)

func (b *wakeBackoff) HandleError(logger watermill.LoggerAdapter, noMsg bool, err error) time.Duration {
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return 0
		}
		if isSerializationConflict(err) {
			// Another instance consumed this group's batch first: its
			// checkpoint row was locked and has moved. Look again at once.
			logger.Debug("consumer group taken by another instance; retrying", watermill.LogFields{"err": err.Error()})
			return hotInterval
		}
		logger.Error("event subscriber query failed; retrying", err, watermill.LogFields{"retry_in": b.retry.String()})
		return b.retry
	}
	if !noMsg {
		return 0
	}
	if b.wake == nil {
		return b.poll
	}
	// The subscriber notices that it is closing only between polls: it is
	// closed while no more than idlePolls intervals go by.
	t := time.NewTimer(idlePolls * b.poll)
	defer t.Stop()
	select {
	case <-b.wake:
	case <-t.C:
	}
	return 0
}

// isSerializationConflict reports whether err is PostgreSQL refusing a
// repeatable-read transaction because a concurrent one changed the same row
// (SQLSTATE 40001) or a deadlock (40P01).
func isSerializationConflict(err error) bool {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		return pqErr.Code == "40001" || pqErr.Code == "40P01"
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "could not serialize access") || strings.Contains(msg, "deadlock")
}
