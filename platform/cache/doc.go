// Package cache is Engram's key/value cache, shared by read models, the
// token revocation check and login throttling.
//
// Three implementations satisfy Cache: Redis (shared by every instance),
// Memory (one process) and Fallback, which the program uses. Fallback
// prefers Redis and falls back to Memory when Redis is not configured, is
// unreachable at start, or fails at run time, so that a request never fails
// because Redis did. While on Memory it pings Redis every two seconds; when
// Redis answers again it first deletes every key under its prefix (entries
// written before the gap may be stale: this instance missed nothing but
// the others may have changed state meanwhile) and only then switches back.
// Everything cached is derived data, so losing it costs only a refill.
//
// The contract every implementation honours is tested once, by
// cache/cachetest, against each of them.
package cache
