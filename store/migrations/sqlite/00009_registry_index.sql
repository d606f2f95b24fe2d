-- The start's registry read looks a number up by phone; with an index of
-- (service_id, phone) alone SQLite's planner preferred walking the
-- service's whole registry by primary key, a cost that grew with every
-- approval. A covering index makes the phone lookup an index-only search.

-- +goose Up
DROP INDEX verified_phones_phone;
CREATE INDEX verified_phones_phone ON verified_phones (service_id, phone, verification_id, verified_at);

-- +goose Down
DROP INDEX verified_phones_phone;
CREATE INDEX verified_phones_phone ON verified_phones (service_id, phone);
