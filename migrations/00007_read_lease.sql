-- The read lease: while one instance alone runs against the database, it may
-- answer reads from memory without asking PostgreSQL, before each read,
-- whether another writer committed an event it has not applied yet.
--
-- Each instance that serves reads from memory keeps a row here, renewed
-- every half second: seen_until says it is running. An instance that sees
-- no other running instance holds the lease (holds_until). While the lease
-- is held, every insert into events from another session is refused
-- (SQLSTATE EL001, with the lease's end in DETAIL); the refused writer
-- registers (seen_until), so the holder stops renewing, and writes again
-- once the lease has lapsed. The holder stops trusting the lease before it
-- lapses, by its own clock, so every event committed while it trusts the
-- lease is one of its own.
--
-- A session belongs to an instance through its application_name, which the
-- event store sets to a name of its own for every process. The advisory
-- lock orders the writers' checks against the taking of a lease: a writer
-- holds it (shared) until its transaction ends, and taking the lease
-- (exclusive) waits for every writer that checked before it.

-- +goose Up
CREATE TABLE read_leases (
    instance    text        PRIMARY KEY,
    seen_until  timestamptz NOT NULL,
    holds_until timestamptz
);

-- +goose StatementBegin
CREATE FUNCTION events_check_read_lease() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    holder text;
    lapses timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(7308057466244753778);
    SELECT instance, holds_until INTO holder, lapses FROM read_leases
     WHERE holds_until > clock_timestamp() AND instance <> current_setting('application_name')
     ORDER BY holds_until DESC LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'events are leased to instance % until %', holder, lapses
            USING ERRCODE = 'EL001', DETAIL = extract(epoch FROM lapses - clock_timestamp())::text;
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER events_read_lease
    BEFORE INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_check_read_lease();

-- +goose Down
DROP TRIGGER events_read_lease ON events;
DROP FUNCTION events_check_read_lease();
DROP TABLE read_leases;
