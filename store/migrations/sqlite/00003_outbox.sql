-- The durable outbox: each start commits its message here in the same
-- transaction as its verification; workers claim, send and record.

-- +goose Up
CREATE TABLE outbox (
    id              TEXT    NOT NULL PRIMARY KEY,
    verification_id TEXT    NOT NULL REFERENCES verifications (id),
    service_id      TEXT    NOT NULL,
    phone           TEXT    NOT NULL,
    country         TEXT    NOT NULL DEFAULT '',
    locale          TEXT    NOT NULL DEFAULT '',
    send_count      INTEGER NOT NULL,
    -- AES-GCM of the body and the code; NULL once sent or given up.
    sealed          BLOB,
    status          TEXT    NOT NULL,
    gateway         TEXT    NOT NULL DEFAULT '',
    provider_id     TEXT    NOT NULL DEFAULT '',
    error           TEXT    NOT NULL DEFAULT '',
    -- Claims so far; a claim's number fences its outcome.
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- When the message may next be claimed: its creation, the end of a
    -- claim's lease, or the time of a retry.
    due_at          INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;

-- Claims: the queued messages by due time.
CREATE INDEX outbox_due ON outbox (due_at) WHERE status = 'queued';
-- A verification's message history.
CREATE INDEX outbox_verification ON outbox (verification_id);
-- Delivery receipts find their message by the gateway's id.
CREATE INDEX outbox_provider ON outbox (gateway, provider_id) WHERE provider_id <> '';

-- +goose Down
DROP TABLE outbox;
