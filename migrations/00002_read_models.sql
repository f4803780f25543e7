-- SQL read models. Every row is derived from the event log and can be rebuilt
-- from it; `version` is the stream version last applied to the row and guards
-- every update, so a redelivered event changes nothing.

-- +goose Up
CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text        NOT NULL,
    display_name  text        NOT NULL,
    roles         text[]      NOT NULL DEFAULT '{user}',
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    version       integer     NOT NULL
);
CREATE UNIQUE INDEX users_email_idx ON users (email);

CREATE TABLE workspaces (
    id            uuid PRIMARY KEY,
    owner_id      uuid        NOT NULL,
    name          text        NOT NULL,
    description   text        NOT NULL DEFAULT '',
    config        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    archived      boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    version       integer     NOT NULL
);

CREATE TABLE workspace_members (
    workspace_id  uuid        NOT NULL,
    user_id       uuid        NOT NULL,
    role          text        NOT NULL,
    added_at      timestamptz NOT NULL,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX workspace_members_user_idx ON workspace_members (user_id, workspace_id);

CREATE TABLE conversations (
    id               uuid PRIMARY KEY,
    workspace_id     uuid        NOT NULL,
    created_by       uuid        NOT NULL,
    title            text        NOT NULL,
    modality         text        NOT NULL,
    metadata         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    archived         boolean     NOT NULL DEFAULT false,
    message_count    integer     NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    last_activity_at timestamptz NOT NULL,
    version          integer     NOT NULL
);
CREATE INDEX conversations_workspace_activity_idx ON conversations (workspace_id, last_activity_at DESC, id DESC);

CREATE TABLE messages (
    id               uuid PRIMARY KEY,
    conversation_id  uuid        NOT NULL,
    workspace_id     uuid        NOT NULL,
    author_id        text        NOT NULL,
    role             text        NOT NULL,
    content          text        NOT NULL,
    metadata         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at       timestamptz NOT NULL,
    position         bigint      NOT NULL,
    stream_version   integer     NOT NULL
);
CREATE INDEX messages_conversation_position_idx ON messages (conversation_id, position);

CREATE TABLE sessions (
    id                uuid PRIMARY KEY,
    user_id           uuid        NOT NULL,
    user_agent        text        NOT NULL DEFAULT '',
    ip                text        NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL,
    last_refreshed_at timestamptz,
    expires_at        timestamptz NOT NULL,
    revoked_at        timestamptz,
    revoked_reason    text,
    version           integer     NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id, created_at DESC);

CREATE TABLE api_keys (
    id            uuid PRIMARY KEY,
    user_id       uuid        NOT NULL,
    name          text        NOT NULL,
    prefix        text        NOT NULL,
    key_hash      text        NOT NULL,
    scopes        text[]      NOT NULL,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz,
    revoked_at    timestamptz,
    version       integer     NOT NULL
);
CREATE UNIQUE INDEX api_keys_hash_idx ON api_keys (key_hash);
CREATE INDEX api_keys_user_idx ON api_keys (user_id, created_at DESC);

-- +goose Down
DROP TABLE api_keys;
DROP TABLE sessions;
DROP TABLE messages;
DROP TABLE conversations;
DROP TABLE workspace_members;
DROP TABLE workspaces;
DROP TABLE users;
