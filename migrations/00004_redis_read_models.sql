-- The Redis read models' consumer groups remember here the cursor of the last
-- event each of them sent to Redis (events that change nothing in a model are
-- not sent). The Redis scripts compare it with the model's own checkpoint: a
-- model behind it missed an event (Redis unreachable, or emptied) and is not
-- read until it is rebuilt.

-- +goose Up
CREATE TABLE redis_read_model_cursors (
    consumer_group  text   NOT NULL PRIMARY KEY,
    tx_id           xid8   NOT NULL,
    global_position bigint NOT NULL
);

-- +goose Down
DROP TABLE redis_read_model_cursors;
