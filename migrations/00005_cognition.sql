-- Cognition read models: tasks handed to domain experts, and the workspace
-- memory (the whiteboard). Both are derived from the event log (task-<id> and
-- memory-<workspace id> streams) and can be rebuilt from it; `version` is the
-- stream version last applied to the row and guards every update.

-- +goose Up
CREATE TABLE tasks (
    id               uuid PRIMARY KEY,
    workspace_id     uuid        NOT NULL,
    conversation_id  uuid        NOT NULL,
    message_id       uuid        NOT NULL,
    requested_by     text        NOT NULL,
    expert           text        NOT NULL,
    input            text        NOT NULL,
    priority         integer     NOT NULL,
    status           text        NOT NULL,
    progress         integer     NOT NULL DEFAULT 0,
    note             text        NOT NULL DEFAULT '',
    attempts         integer     NOT NULL DEFAULT 0,
    worker           text,
    deadline         timestamptz,
    output           text,
    reply_message_id uuid,
    reason           text,
    submitted_at     timestamptz NOT NULL,
    started_at       timestamptz,
    finished_at      timestamptz,
    updated_at       timestamptz NOT NULL,
    version          integer     NOT NULL
);
-- Workers look for work that is waiting (or abandoned), most urgent first.
CREATE INDEX tasks_open_idx ON tasks (priority DESC, submitted_at) WHERE status IN ('submitted', 'running');
CREATE INDEX tasks_conversation_idx ON tasks (conversation_id, submitted_at);

CREATE TABLE memory_items (
    id                uuid PRIMARY KEY,
    workspace_id      uuid        NOT NULL,
    type              text        NOT NULL,
    content           text        NOT NULL,
    metadata          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    expires_at        timestamptz,
    source_message_id uuid,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    deleted_at        timestamptz,
    version           integer     NOT NULL,
    -- Words of the content for full-text search. The 'simple' configuration
    -- lower-cases and splits words without stemming or stop words: it works
    -- for every language and finds exactly the words asked for.
    words             tsvector GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, content)) STORED
);
-- Newest first within a workspace: the order of every memory listing.
CREATE INDEX memory_items_recent_idx ON memory_items (workspace_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;
-- Words in the content: a GIN index over the tsvector. (ILIKE '%word%' would
-- need pg_trgm to be indexed and matches inside words.)
CREATE INDEX memory_items_words_idx ON memory_items USING gin (words) WHERE deleted_at IS NULL;

-- +goose Down
DROP TABLE memory_items;
DROP TABLE tasks;
