package livebus

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Channel is the Redis pub/sub channel of signals, after the key prefix.
const Channel = "signals"

// Redis is a Bus over Redis pub/sub: a signal published by any instance
// reaches the subscribers of every instance (including the publisher's).
// The subscription reconnects by itself after a Redis outage; signals
// published meanwhile are lost, as ephemeral signals may be.
type Redis struct {
	client  *redis.Client
	channel string
	logger  *slog.Logger
	pubsub  *redis.PubSub

	out fanout

	done      chan struct{}
	closeOnce sync.Once
}

var _ Bus = (*Redis)(nil)

// NewRedis subscribes to prefix+Channel through client and returns the Bus.
// It fails when Redis does not confirm the subscription before ctx ends.
// The caller owns client; Close ends the subscription.
func NewRedis(ctx context.Context, client *redis.Client, prefix string, logger *slog.Logger) (*Redis, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Redis{client: client, channel: prefix + Channel, logger: logger, done: make(chan struct{})}
	r.pubsub = client.Subscribe(ctx, r.channel)
	// Wait for the confirmation, so that nothing published after NewRedis
	// returns is missed.
	if _, err := r.pubsub.Receive(ctx); err != nil {
		_ = r.pubsub.Close()
		return nil, fmt.Errorf("livebus: subscribe to %s: %w", r.channel, err)
	}
	go r.receive()
	return r, nil
}

// Publish implements Bus.
func (r *Redis) Publish(ctx context.Context, s Signal) error {
	if err := s.Validate(); err != nil {
		return err
	}
	payload, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("livebus: encode: %w", err)
	}
	if err := r.client.Publish(ctx, r.channel, payload).Err(); err != nil {
		return fmt.Errorf("livebus: publish: %w", err)
	}
	return nil
}

// Subscribe implements Bus.
func (r *Redis) Subscribe() (<-chan Signal, func()) { return r.out.subscribe() }

// Close ends the Redis subscription. Subscribers receive nothing more.
func (r *Redis) Close() error {
	var err error
	r.closeOnce.Do(func() {
		err = r.pubsub.Close()
		<-r.done
	})
	return err
}

func (r *Redis) receive() {
	defer close(r.done)
	for msg := range r.pubsub.Channel() {
		var s Signal
		if err := json.Unmarshal([]byte(msg.Payload), &s); err != nil {
			r.logger.Warn("signal dropped: not a signal", "channel", r.channel, "err", err)
			continue
		}
		if err := s.Validate(); err != nil {
			r.logger.Warn("signal dropped", "channel", r.channel, "err", err)
			continue
		}
		r.out.send(s)
	}
}
