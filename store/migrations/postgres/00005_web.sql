-- What the web pages add: an index for the admin dashboard's time-window
-- queries, and the demo apps' own accounts (the demo is an app built on the
-- public API; it keeps its users here as any app would in its own database).

-- +goose Up
CREATE INDEX verifications_created ON verifications (created_at);

-- id is the subject the demo's sign-up verified the phone for.
CREATE TABLE demo_accounts (
    id            TEXT   NOT NULL PRIMARY KEY,
    username      TEXT   NOT NULL UNIQUE,
    password_hash BYTEA  NOT NULL,
    phone         TEXT   NOT NULL,
    created_at    BIGINT NOT NULL
);

-- +goose Down
DROP TABLE demo_accounts;
DROP INDEX verifications_created;
