-- Every message moves its conversation's last_activity_at. While that column
-- was indexed, each message was an update PostgreSQL cannot make in place
-- (not HOT): a new row version and a new entry in every index of the table,
-- left for autovacuum. A conversation taking hundreds of messages a second
-- piled up tens of thousands of dead versions and index entries within a
-- minute, and every read and update of it slowed until a vacuum ran.
--
-- Without that index the update touches no indexed column, and with room
-- left on each page (fillfactor) it is made in place, old versions pruned
-- on the page itself. A workspace's conversations are listed by sorting
-- its rows (found by workspace_id) on last_activity_at.

-- +goose Up
DROP INDEX conversations_workspace_activity_idx;
CREATE INDEX conversations_workspace_idx ON conversations (workspace_id);
ALTER TABLE conversations SET (fillfactor = 50);

-- +goose Down
ALTER TABLE conversations RESET (fillfactor);
DROP INDEX conversations_workspace_idx;
CREATE INDEX conversations_workspace_activity_idx ON conversations (workspace_id, last_activity_at DESC, id DESC);
