package cache

import (
	"context"
	"log/slog"
	"time"
)

// NewFallbackEvery is NewFallback with a health check every `every`, so
// that tests of recovery do not wait two seconds per step.
func NewFallbackEvery(ctx context.Context, redisURL, prefix string, logger *slog.Logger, every time.Duration) (*Fallback, error) {
	return newFallback(ctx, redisURL, prefix, logger, every)
}
