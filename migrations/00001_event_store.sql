-- The event store: one append-only table that is the source of truth for
-- everything else, plus the tables written in the same transaction as events
-- (unique claims, idempotency keys) and the consumer-group checkpoints.

-- +goose Up
CREATE TABLE events (
    global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tx_id           xid8        NOT NULL DEFAULT pg_current_xact_id(),
    event_id        uuid        NOT NULL,
    stream_id       text        NOT NULL,
    stream_type     text        NOT NULL,
    stream_version  integer     NOT NULL CHECK (stream_version >= 1),
    type            text        NOT NULL,
    schema_version  integer     NOT NULL DEFAULT 1 CHECK (schema_version >= 1),
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    prev_hash       bytea,
    hash            bytea       NOT NULL,
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
);

-- Gap-safe tailing reads in commit order: (tx_id, global_position) below the
-- snapshot xmin.
CREATE INDEX events_tx_position_idx ON events (tx_id, global_position);

-- +goose StatementBegin
CREATE FUNCTION events_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are immutable: % on events is not allowed', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER events_immutable_rows
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_reject_change();

CREATE TRIGGER events_immutable_table
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_reject_change();

-- Claims on unique values (e.g. an e-mail address), written in the same
-- transaction as the events of the stream that owns them.
CREATE TABLE unique_claims (
    scope      text        NOT NULL,
    value      text        NOT NULL,
    stream_id  text        NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, value)
);

-- Idempotency keys and the first response, written in the append transaction.
CREATE TABLE idempotency_keys (
    scope         text        NOT NULL,
    key           text        NOT NULL,
    request_hash  bytea       NOT NULL,
    status        integer     NOT NULL,
    response      bytea       NOT NULL,
    position      bigint      NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

-- Consumer-group checkpoints, in the layout of watermill-sql's PostgreSQL
-- offsets adapter: the last (transaction id, position) each group acknowledged.
CREATE TABLE consumer_offsets (
    consumer_group                 varchar(255) NOT NULL PRIMARY KEY,
    offset_acked                   bigint,
    last_processed_transaction_id  xid8 NOT NULL
);

-- Events a projector could not apply after its retries: parked, never skipped
-- silently.
CREATE TABLE parked_events (
    consumer_group  text        NOT NULL,
    global_position bigint      NOT NULL,
    event_id        uuid        NOT NULL,
    type            text        NOT NULL,
    error           text        NOT NULL,
    parked_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, global_position)
);

-- +goose Down
DROP TABLE parked_events;
DROP TABLE consumer_offsets;
DROP TABLE idempotency_keys;
DROP TABLE unique_claims;
DROP TABLE events;
DROP FUNCTION events_reject_change();
