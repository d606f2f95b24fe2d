-- Event webhooks: subscriptions of URLs to event types, the events that
-- state changes record in their own transaction, and one delivery row per
-- event and matching subscription, which workers claim with a lease.

-- +goose Up
CREATE TABLE event_subscriptions (
    id            TEXT    NOT NULL PRIMARY KEY,
    service_id    TEXT    NOT NULL REFERENCES services (id),
    url           TEXT    NOT NULL,
    -- Space-separated event types, for listing.
    types         TEXT    NOT NULL,
    -- The whsec_ secret, AES-GCM sealed under the server secret.
    secret_sealed BYTEA   NOT NULL,
    created_at    BIGINT  NOT NULL
);
CREATE INDEX event_subscriptions_service ON event_subscriptions (service_id);

-- The fan-out from an event to its subscriptions.
CREATE TABLE event_subscription_types (
    subscription_id TEXT NOT NULL REFERENCES event_subscriptions (id) ON DELETE CASCADE,
    service_id      TEXT NOT NULL,
    type            TEXT NOT NULL,
    PRIMARY KEY (service_id, type, subscription_id)
);

CREATE TABLE events (
    seq             BIGSERIAL NOT NULL PRIMARY KEY,
    id              TEXT    NOT NULL UNIQUE,
    service_id      TEXT    NOT NULL,
    type            TEXT    NOT NULL,
    verification_id TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL
);
CREATE INDEX events_service ON events (service_id, seq);
CREATE INDEX events_verification ON events (verification_id, seq);

CREATE TABLE event_deliveries (
    subscription_id TEXT    NOT NULL,
    event_seq       BIGINT  NOT NULL REFERENCES events (seq),
    verification_id TEXT    NOT NULL,
    -- pending, delivered or failed (given up).
    status          TEXT    NOT NULL DEFAULT 'pending',
    -- Claims so far; a claim's number fences its outcome.
    attempts        INTEGER NOT NULL DEFAULT 0,
    due_at          BIGINT  NOT NULL,
    error           TEXT    NOT NULL DEFAULT '',
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    PRIMARY KEY (subscription_id, event_seq)
);
CREATE INDEX event_deliveries_due ON event_deliveries (due_at) WHERE status = 'pending';
-- Ordering: a delivery waits for the earlier pending ones of its
-- verification to the same subscription.
CREATE INDEX event_deliveries_order ON event_deliveries (subscription_id, verification_id, event_seq)
    WHERE status = 'pending';

-- +goose Down
DROP TABLE event_deliveries;
DROP TABLE events;
DROP TABLE event_subscription_types;
DROP TABLE event_subscriptions;
