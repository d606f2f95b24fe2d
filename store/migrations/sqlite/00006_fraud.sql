-- Fraud protection (SMS pumping): per-service settings, hourly counters of
-- sends and conversions per number prefix, country and client address,
-- blocks in force, and the record of every refusal.

-- +goose Up
-- A zero setting means the default (see fraud.Resolve); mode '' inherits.
CREATE TABLE service_fraud_settings (
    service_id    TEXT    NOT NULL PRIMARY KEY REFERENCES services (id),
    mode          TEXT    NOT NULL DEFAULT '',
    prefix_floor  INTEGER NOT NULL DEFAULT 0,
    country_floor INTEGER NOT NULL DEFAULT 0,
    budget_ratio  REAL    NOT NULL DEFAULT 0,
    window_ms     INTEGER NOT NULL DEFAULT 0,
    cooldown_ms   INTEGER NOT NULL DEFAULT 0,
    ip_countries  INTEGER NOT NULL DEFAULT 0,
    updated_at    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- hour is the start of the bucket (unix ms); the purge folds old hourly
-- prefix and country rows into the bucket at midnight, and deletes old
-- address rows.
CREATE TABLE fraud_counts (
    service_id  TEXT    NOT NULL,
    scope       TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    hour        INTEGER NOT NULL,
    sends       INTEGER NOT NULL DEFAULT 0,
    conversions INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (service_id, scope, key, hour)
) STRICT, WITHOUT ROWID;

CREATE INDEX fraud_counts_hour ON fraud_counts (hour);

-- The address a verification was started from, so that its conversion is
-- credited to that address.
CREATE TABLE fraud_starts (
    verification_id TEXT    NOT NULL PRIMARY KEY,
    service_id      TEXT    NOT NULL,
    ip              TEXT    NOT NULL,
    created_at      INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX fraud_starts_created ON fraud_starts (created_at);

CREATE TABLE fraud_blocks (
    service_id TEXT    NOT NULL,
    scope      TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    until      INTEGER NOT NULL,
    PRIMARY KEY (service_id, scope, key)
) STRICT, WITHOUT ROWID;

-- phone is masked; no full number is ever stored here.
CREATE TABLE fraud_decisions (
    id          TEXT    NOT NULL PRIMARY KEY,
    service_id  TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    prefix      TEXT    NOT NULL DEFAULT '',
    country     TEXT    NOT NULL DEFAULT '',
    phone       TEXT    NOT NULL DEFAULT '',
    ip          TEXT    NOT NULL DEFAULT '',
    unconverted INTEGER NOT NULL DEFAULT 0,
    budget      INTEGER NOT NULL DEFAULT 0,
    until       INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE INDEX fraud_decisions_service ON fraud_decisions (service_id, created_at);
CREATE INDEX fraud_decisions_created ON fraud_decisions (created_at);

-- +goose Down
DROP TABLE fraud_decisions;
DROP TABLE fraud_blocks;
DROP TABLE fraud_starts;
DROP TABLE fraud_counts;
DROP TABLE service_fraud_settings;
