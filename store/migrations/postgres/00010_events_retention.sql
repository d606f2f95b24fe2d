-- The retention purge deletes events by age and their deliveries by event:
-- without these indexes each hourly purge would read both tables whole.

-- +goose Up
CREATE INDEX events_created ON events (created_at);
CREATE INDEX event_deliveries_event ON event_deliveries (event_seq);

-- +goose Down
DROP INDEX event_deliveries_event;
DROP INDEX events_created;
