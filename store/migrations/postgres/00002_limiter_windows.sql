-- Rate limits kept in the database (ratelimit/sqllimit), shared by every node
-- on it. One row per key: the times (unix milliseconds, space-separated,
-- ascending) of the events allowed in the key's last window. expires_at is
-- when the newest of them leaves the window; past it the row can go. The
-- sweep that deletes such rows scans the table: an index on expires_at
-- would cost every event an index update (and on PostgreSQL its HOT update).

-- +goose Up
-- fillfactor leaves room for HOT updates: every allowed event rewrites its row.
CREATE TABLE limiter_windows (
    limit_key  TEXT   NOT NULL PRIMARY KEY,
    events     TEXT   NOT NULL DEFAULT '',
    expires_at BIGINT NOT NULL DEFAULT 0
) WITH (fillfactor = 70);

-- +goose Down
DROP TABLE limiter_windows;
