-- Abuse limits (issue 6). services.limits holds a service's own limits and
-- geo permissions as JSON (phoneverify.ServiceLimits: a limit that is absent
-- follows the server-wide default). api_keys.allowed_ips is a
-- comma-separated list of CIDRs a key is accepted from ('' = anywhere).

-- +goose Up
ALTER TABLE services ADD COLUMN limits TEXT NOT NULL DEFAULT '{}';
ALTER TABLE api_keys ADD COLUMN allowed_ips TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE api_keys DROP COLUMN allowed_ips;
ALTER TABLE services DROP COLUMN limits;
