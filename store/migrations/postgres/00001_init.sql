-- The phoneverify schema for PostgreSQL. Times are unix milliseconds (UTC),
-- durations milliseconds, booleans 0/1: the same values as on SQLite, so
-- that one set of SQL serves both.

-- +goose Up
CREATE TABLE services (
    id                      TEXT    NOT NULL PRIMARY KEY,
    name                    TEXT    NOT NULL,
    is_default              INTEGER NOT NULL DEFAULT 0,
    code_length             INTEGER NOT NULL,
    code_ttl_ms             BIGINT  NOT NULL,
    max_sends               INTEGER NOT NULL,
    send_window_ms          BIGINT  NOT NULL,
    max_attempts            INTEGER NOT NULL,
    template                TEXT    NOT NULL DEFAULT '',
    webotp_domain           TEXT    NOT NULL DEFAULT '',
    one_subject_per_phone   INTEGER NOT NULL,
    reject_already_verified INTEGER NOT NULL,
    token_ttl_ms            BIGINT  NOT NULL,
    created_at              BIGINT  NOT NULL,
    updated_at              BIGINT  NOT NULL
);

-- At most one default service.
CREATE UNIQUE INDEX services_one_default ON services (is_default) WHERE is_default = 1;

-- fillfactor leaves room for HOT updates: a check rewrites its row.
CREATE TABLE verifications (
    id           TEXT    NOT NULL PRIMARY KEY,
    service_id   TEXT    NOT NULL REFERENCES services (id),
    phone        TEXT    NOT NULL,
    country      TEXT    NOT NULL DEFAULT '',
    channel      TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    subject      TEXT    NOT NULL DEFAULT '',
    amount       TEXT    NOT NULL DEFAULT '',
    payee        TEXT    NOT NULL DEFAULT '',
    locale       TEXT    NOT NULL DEFAULT '',
    send_count   INTEGER NOT NULL,
    attempts     INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    code_hash    BYTEA   NOT NULL,
    expires_at   BIGINT  NOT NULL,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL
) WITH (fillfactor = 90);

-- At most one pending verification per number: starts are serialised on the
-- numbers row already; this guards against a bug doing otherwise.
CREATE UNIQUE INDEX verifications_one_pending ON verifications (service_id, phone) WHERE status = 'pending';
-- The expiry sweep.
CREATE INDEX verifications_pending_expiry ON verifications (expires_at) WHERE status = 'pending';

-- One row per number that was ever sent a code in a service. Starts for the
-- number lock this row; it points at the newest verification and keeps the
-- send times (space-separated unix milliseconds) for the send limit.
CREATE TABLE numbers (
    service_id TEXT NOT NULL REFERENCES services (id),
    phone      TEXT NOT NULL,
    latest_id  TEXT,
    sends      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (service_id, phone)
) WITH (fillfactor = 80);

-- The registry: the phone each subject has proved it holds.
CREATE TABLE verified_phones (
    service_id      TEXT   NOT NULL REFERENCES services (id),
    subject         TEXT   NOT NULL,
    phone           TEXT   NOT NULL,
    verification_id TEXT   NOT NULL,
    verified_at     BIGINT NOT NULL,
    PRIMARY KEY (service_id, subject)
);

CREATE INDEX verified_phones_phone ON verified_phones (service_id, phone);

CREATE TABLE api_keys (
    id           TEXT   NOT NULL PRIMARY KEY,
    service_id   TEXT   NOT NULL REFERENCES services (id),
    name         TEXT   NOT NULL DEFAULT '',
    prefix       TEXT   NOT NULL DEFAULT '',
    hash         BYTEA  NOT NULL UNIQUE,
    scopes       TEXT   NOT NULL DEFAULT '[]',
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);

CREATE INDEX api_keys_service ON api_keys (service_id);

-- Token signing keys; sealed holds the private key encrypted under the
-- server secret.
CREATE TABLE signing_keys (
    id         TEXT   NOT NULL PRIMARY KEY,
    sealed     BYTEA  NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);

-- +goose Down
DROP TABLE signing_keys;
DROP TABLE api_keys;
DROP TABLE verified_phones;
DROP TABLE numbers;
DROP TABLE verifications;
DROP TABLE services;
