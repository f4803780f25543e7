package eventstore_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/engramhq/engram/eventstore"
)

// insertWithTxID writes an event as if transaction txID had appended it, so
// that a test can place events on both sides of a power of ten in commit
// order. The ids are far below the cluster's current transaction id, so the
// events are readable at once.
func insertWithTxID(t *testing.T, s *eventstore.Store, txID uint64, streamID string, version int) {
	t.Helper()
	_, err := s.DB().ExecContext(context.Background(), `INSERT INTO events
		(tx_id, event_id, stream_id, stream_type, stream_version, type, data, hash)
		VALUES ($1::text::xid8, $2, $3, 'test', $4, 'test.happened', '{}', '\x00')`,
		strconv.FormatUint(txID, 10), uuid.NewString(), streamID, version)
	if err != nil {
		t.Fatal(err)
	}
}

// Transaction ids are ordered as numbers, not as their decimal text: when
// the ids of a consumer group's backlog cross a power of ten (99 → 100,
// 999 999 → 1 000 000), a batch ordered by the text would take the
// higher ids first, acknowledge past them, and never deliver the lower ones.
func TestConsumerGroupOrdersTransactionIDsAsNumbers(t *testing.T) {
	s := newStore(t)
	txIDs := []uint64{97, 98, 99, 100, 101, 102}
	for i, tx := range txIDs {
		insertWithTxID(t, s, tx, fmt.Sprint("test-order-", i), 1)
	}

	msgs := subscribeGroup(t, s.DB().DB, eventstore.SubscriberConfig{
		ConsumerGroup: "order", PollInterval: 10 * time.Millisecond, BatchSize: 2})
	for i, want := range txIDs {
		e := receive(t, msgs)
		if e.TxID != want {
			t.Fatalf("event %d delivered from transaction %d, want %d (commit order is numeric)", i, e.TxID, want)
		}
	}
	quiet(t, msgs, 100*time.Millisecond)

	// The tailing read used by live streams and rebuilds agrees.
	events, err := s.ReadCommitted(context.Background(), eventstore.Cursor{}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[0].TxID != 97 || events[1].TxID != 98 {
		t.Fatalf("ReadCommitted from the start returned %+v, want transactions 97 and 98", events)
	}
}
