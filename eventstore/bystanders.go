package eventstore

import (
	"strconv"
	"sync"
)

// bystanders are the transactions of this process that are in flight and
// write no events (a projectors' batch): readers of the log need not wait
// for them.
//
// A tailing reader stops below the oldest transaction in flight, because
// any of them may still insert events with an older transaction id. A
// transaction known to insert none cannot: the reader's horizon is then the
// oldest transaction in flight that is not a bystander (or, with none, the
// first transaction id not yet assigned). The events below it are exactly
// those of transactions that had ended when the reader's snapshot was
// taken, as before. An id is only ever added while its transaction runs, and
// ids are never reused, so an id left in the set after its transaction ends
// changes nothing: it is simply no longer in flight.
type bystanders struct {
	mu  sync.Mutex
	ids map[uint64]int
}

// Bystander records that the transaction with id txID writes no events,
// until release is called. The caller answers for it: an event written by a
// bystander could be skipped by every reader of the log.
func (s *Store) Bystander(txID uint64) (release func()) {
	b := &s.bystanders
	b.mu.Lock()
	if b.ids == nil {
		b.ids = map[uint64]int{}
	}
	b.ids[txID]++
	b.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			if b.ids[txID]--; b.ids[txID] <= 0 {
				delete(b.ids, txID)
			}
			b.mu.Unlock()
		})
	}
}

// list returns the ids as a PostgreSQL array literal of xid8.
func (b *bystanders) list() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]byte, 0, 2+len(b.ids)*12)
	out = append(out, '{')
	for id := range b.ids {
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = strconv.AppendUint(out, id, 10)
	}
	return string(append(out, '}'))
}
