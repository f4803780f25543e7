-- Indexes of the audit API, which reads the event log by position under
-- filters: by stream type, by event type, by actor and by time. Built
-- concurrently so that a deployment migrating a large log keeps appending.
-- Audit reads are themselves events (audit.log_read in "audit-<actor>"
-- streams): they need no table of their own.

-- +goose NO TRANSACTION
-- +goose Up
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_stream_type_position_idx ON events (stream_type, global_position);
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_type_position_idx ON events (type, global_position);
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_actor_position_idx ON events ((metadata->>'actor_id'), global_position);
-- recorded_at grows with the position: a BRIN index finds a time range for
-- almost nothing on the append path.
CREATE INDEX CONCURRENTLY IF NOT EXISTS events_recorded_at_idx ON events USING brin (recorded_at);

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS events_recorded_at_idx;
DROP INDEX CONCURRENTLY IF EXISTS events_actor_position_idx;
DROP INDEX CONCURRENTLY IF EXISTS events_type_position_idx;
DROP INDEX CONCURRENTLY IF EXISTS events_stream_type_position_idx;
