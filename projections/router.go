package projections

import (
	"database/sql"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/engramhq/engram/eventstore"
)

// BatchSize is the number of events a projector applies per transaction.
//
// A consumer group's transaction holds a transaction id while it applies its
// batch, and every gap-safe reader (the other groups, live streams) waits
// below the oldest running transaction: a long batch delays them all. Each
// event is applied in a savepoint, and PostgreSQL keeps at most 64
// subtransactions per backend in shared memory before every snapshot in the
// cluster gets slower ("suboverflow"). Eight events keep a batch to a few
// milliseconds; measured at 200 appends a second with 200 live streams,
// going from 32 to 8 halved the POST→SSE delivery time.
const BatchSize = 8

// LockFree is implemented by consumers that write nothing through the
// consumer group's transaction and whose effects are idempotent (the
// cognition reactor): their group does not lock its checkpoint row for the
// batch, so its transaction holds no id until it acknowledges
// (eventstore.SubscriberConfig.LockFree).
type LockFree interface {
	LockFree() bool
}

// RouterConfig says how projectors subscribe to the log.
type RouterConfig struct {
	DB           *sql.DB
	Logger       *slog.Logger
	PollInterval time.Duration
	// Wake, when set, returns the channel on which a consumer group is told
	// that it has events to read, and a function that releases it
	// (eventstore.Dispatcher.Subscribe). Without it, groups poll every
	// PollInterval.
	Wake func(consumerGroup string) (<-chan struct{}, func())
}

// AddToRouter registers each projector as a consumer group handler of router.
// It returns functions to call when the router has stopped.
func AddToRouter(router *message.Router, cfg RouterConfig, projectors ...Projector) ([]func(), error) {
	var cleanups []func()
	wlog := watermill.NewSlogLoggerWithLevelMapping(cfg.Logger, map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	for _, p := range projectors {
		sc := eventstore.SubscriberConfig{ConsumerGroup: p.Name(), PollInterval: cfg.PollInterval, BatchSize: BatchSize}
		if l, ok := p.(LockFree); ok {
			sc.LockFree = l.LockFree()
		}
		if cfg.Wake != nil {
			ch, stop := cfg.Wake(p.Name())
			sc.Wake = ch
			cleanups = append(cleanups, stop)
		}
		sub, err := eventstore.NewSubscriber(cfg.DB, sc, wlog)
		if err != nil {
			return cleanups, err
		}
		router.AddConsumerHandler(p.Name(), eventstore.Topic, sub, Handler(p, cfg.DB, cfg.Logger, HandlerOptions{}))
	}
	return cleanups, nil
}

// Names returns the names of projectors.
func Names(ps []Projector) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name()
	}
	return out
}
