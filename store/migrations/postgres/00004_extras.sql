-- What the Twilio-compatible API adds (PostgreSQL): service features,
-- programmable rate limits and their buckets, send attempts and the safe
-- list.

-- +goose Up
-- settings is a JSON object (see store/extras.go).
CREATE TABLE service_features (
    service_id TEXT    NOT NULL PRIMARY KEY REFERENCES services (id),
    settings   TEXT    NOT NULL DEFAULT '{}',
    deleted_at BIGINT
);

CREATE TABLE rate_limits (
    id          TEXT    NOT NULL PRIMARY KEY,
    service_id  TEXT    NOT NULL REFERENCES services (id),
    unique_name TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    UNIQUE (service_id, unique_name)
);

CREATE TABLE rate_limit_buckets (
    id            TEXT    NOT NULL PRIMARY KEY,
    rate_limit_id TEXT    NOT NULL REFERENCES rate_limits (id) ON DELETE CASCADE,
    service_id    TEXT    NOT NULL,
    max           INTEGER NOT NULL,
    interval_ms   BIGINT  NOT NULL,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);

CREATE INDEX rate_limit_buckets_rate_limit ON rate_limit_buckets (rate_limit_id);

-- One row per start a bucket counted; key_hash hashes the metered value.
CREATE TABLE rate_limit_hits (
    bucket_id TEXT    NOT NULL REFERENCES rate_limit_buckets (id) ON DELETE CASCADE,
    key_hash  TEXT    NOT NULL,
    at        BIGINT  NOT NULL
);

CREATE INDEX rate_limit_hits_key ON rate_limit_hits (bucket_id, key_hash, at);

CREATE TABLE send_attempts (
    id              TEXT    NOT NULL PRIMARY KEY,
    verification_id TEXT    NOT NULL,
    service_id      TEXT    NOT NULL,
    channel         TEXT    NOT NULL,
    phone           TEXT    NOT NULL,
    country         TEXT    NOT NULL DEFAULT '',
    created_at      BIGINT  NOT NULL
);

CREATE INDEX send_attempts_verification ON send_attempts (verification_id, created_at);
CREATE INDEX send_attempts_created ON send_attempts (created_at);

CREATE TABLE safe_list_numbers (
    phone      TEXT    NOT NULL PRIMARY KEY,
    id         TEXT    NOT NULL UNIQUE,
    created_at BIGINT  NOT NULL
);

-- +goose Down
DROP TABLE safe_list_numbers;
DROP TABLE send_attempts;
DROP TABLE rate_limit_hits;
DROP TABLE rate_limit_buckets;
DROP TABLE rate_limits;
DROP TABLE service_features;
