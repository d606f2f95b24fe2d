package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/phoneverify/phoneverify"
)

var _ phoneverify.ExtrasStore = (*Store)(nil)

const (
	qSelectFeatures = `SELECT settings, deleted_at FROM service_features WHERE service_id = $1`
	qUpsertFeatures = `INSERT INTO service_features (service_id, settings, deleted_at) VALUES ($1, $2, $3)
	ON CONFLICT (service_id) DO UPDATE SET settings = excluded.settings,
	deleted_at = COALESCE(service_features.deleted_at, excluded.deleted_at)`
	qDeleteService = `INSERT INTO service_features (service_id, settings, deleted_at) VALUES ($1, '{}', $2)
	ON CONFLICT (service_id) DO UPDATE SET deleted_at = excluded.deleted_at`
	// qTouchService moves a service's updated_at on, as every change of
	// it does (see qUpdateService).
	qTouchService      = `UPDATE services SET updated_at = CASE WHEN $2 > updated_at THEN $2 ELSE updated_at + 1 END WHERE id = $1`
	qRevokeServiceKeys = `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE service_id = $1`
	qServiceExists     = `SELECT COUNT(*) FROM services WHERE id = $1`

	rateLimitColumns  = `id, service_id, unique_name, description, created_at, updated_at`
	qSelectRateLimits = `SELECT ` + rateLimitColumns + ` FROM rate_limits WHERE service_id = $1 ORDER BY created_at, id`
	qSelectRateLimit  = `SELECT ` + rateLimitColumns + ` FROM rate_limits WHERE service_id = $1 AND id = $2`
	qInsertRateLimit  = `INSERT INTO rate_limits (` + rateLimitColumns + `) VALUES ($1, $2, $3, $4, $5, $6)`
	qUpdateRateLimit  = `UPDATE rate_limits SET description = $3, updated_at = $4 WHERE service_id = $1 AND id = $2`
	qDeleteRateLimit  = `DELETE FROM rate_limits WHERE service_id = $1 AND id = $2`

	bucketColumns  = `id, rate_limit_id, service_id, max, interval_ms, created_at, updated_at`
	qSelectBuckets = `SELECT ` + bucketColumns + ` FROM rate_limit_buckets WHERE service_id = $1 AND rate_limit_id = $2
	ORDER BY created_at, id`
	qSelectBucket = `SELECT ` + bucketColumns + ` FROM rate_limit_buckets
	WHERE service_id = $1 AND rate_limit_id = $2 AND id = $3`
	qInsertBucket = `INSERT INTO rate_limit_buckets (` + bucketColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7)`
	qUpdateBucket = `UPDATE rate_limit_buckets SET max = $4, interval_ms = $5, updated_at = $6
	WHERE service_id = $1 AND rate_limit_id = $2 AND id = $3`
	qDeleteBucket = `DELETE FROM rate_limit_buckets WHERE service_id = $1 AND rate_limit_id = $2 AND id = $3`

	qPruneHits  = `DELETE FROM rate_limit_hits WHERE bucket_id = $1 AND key_hash = $2 AND at <= $3`
	qCountHits  = `SELECT COUNT(*), COALESCE(MIN(at), 0) FROM rate_limit_hits WHERE bucket_id = $1 AND key_hash = $2`
	qInsertHit  = `INSERT INTO rate_limit_hits (bucket_id, key_hash, at) VALUES ($1, $2, $3)`
	qOldestHits = `SELECT at FROM rate_limit_hits WHERE bucket_id = $1 AND key_hash = $2 ORDER BY at DESC`

	attemptColumns = `a.id, a.verification_id, a.service_id, a.channel, a.phone, a.country, a.created_at,
	CASE WHEN v.status = 'approved' THEN 1 ELSE 0 END`
	qInsertAttempt = `INSERT INTO send_attempts (id, verification_id, service_id, channel, phone, country, created_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7)`
	qSelectAttempt = `SELECT ` + attemptColumns + ` FROM send_attempts a LEFT JOIN verifications v ON v.id = a.verification_id
	WHERE a.id = $1`
	// attemptWhere applies an AttemptFilter; an empty or zero argument
	// selects everything.
	attemptWhere = ` FROM send_attempts a LEFT JOIN verifications v ON v.id = a.verification_id
	WHERE (CAST($1 AS TEXT) = '' OR a.service_id = $1)
	AND (CAST($2 AS TEXT) = '' OR a.verification_id = $2)
	AND (CAST($3 AS TEXT) = '' OR a.phone = $3)
	AND (CAST($4 AS TEXT) = '' OR substr(a.phone, 1, length($4)) = $4)
	AND (CAST($5 AS TEXT) = '' OR a.country = $5)
	AND (CAST($6 AS TEXT) = '' OR a.channel = $6)
	AND (CAST($7 AS INTEGER) = 0 OR (CAST($7 AS INTEGER) = 1) = (COALESCE(v.status, '') = 'approved'))
	AND (CAST($8 AS BIGINT) = 0 OR a.created_at > $8)
	AND (CAST($9 AS BIGINT) = 0 OR a.created_at < $9)`
	qSelectAttempts = `SELECT ` + attemptColumns + attemptWhere + ` ORDER BY a.created_at, a.id LIMIT $10 OFFSET $11`
	qCountAttempts  = `SELECT COUNT(*), COALESCE(SUM(CASE WHEN v.status = 'approved' THEN 1 ELSE 0 END), 0)` + attemptWhere

	qInsertSafeList = `INSERT INTO safe_list_numbers (phone, id, created_at) VALUES ($1, $2, $3)
	ON CONFLICT (phone) DO NOTHING`
	qSelectSafeList = `SELECT phone, id, created_at FROM safe_list_numbers WHERE phone = $1`
	qDeleteSafeList = `DELETE FROM safe_list_numbers WHERE phone = $1`
)

// features is the stored form of a service's features.
type features struct {
	LookupEnabled      bool              `json:"lookup_enabled,omitempty"`
	SkipSMSToLandlines bool              `json:"skip_sms_to_landlines,omitempty"`
	DoNotShareWarning  bool              `json:"do_not_share_warning,omitempty"`
	CustomCodeEnabled  bool              `json:"custom_code_enabled,omitempty"`
	PSD2Enabled        bool              `json:"psd2_enabled,omitempty"`
	Echo               map[string]string `json:"echo,omitempty"`
}

// ServiceFeatures returns the features of a service: the zero value if none
// were saved. It returns ENotFound if the service does not exist.
func (s *Store) ServiceFeatures(ctx context.Context, serviceID string) (*phoneverify.ServiceFeatures, error) {
	const op = "read service features"
	r, err := s.reader(ctx)
	if err != nil {
		return nil, mapErr(op, err)
	}
	var (
		settings string
		deleted  sql.NullInt64
	)
	err = r.queryRow(qSelectFeatures, serviceID).Scan(&settings, &deleted)
	if errors.Is(err, sql.ErrNoRows) {
		var n int
		if err := r.queryRow(qServiceExists, serviceID).Scan(&n); err != nil {
			return nil, mapErr(op, err)
		}
		if n == 0 {
			return nil, notFound("service")
		}
		return &phoneverify.ServiceFeatures{ServiceID: serviceID}, nil
	}
	if err != nil {
		return nil, mapErr(op, err)
	}
	var f features
	if err := json.Unmarshal([]byte(settings), &f); err != nil {
		return nil, mapErr(op, err)
	}
	return &phoneverify.ServiceFeatures{
		ServiceID: serviceID, LookupEnabled: f.LookupEnabled, SkipSMSToLandlines: f.SkipSMSToLandlines,
		DoNotShareWarning: f.DoNotShareWarning, CustomCodeEnabled: f.CustomCodeEnabled, PSD2Enabled: f.PSD2Enabled,
		Echo: f.Echo, DeletedAt: fromNullUnixMilli(deleted),
	}, nil
}

// SaveServiceFeatures creates or replaces the features of f.ServiceID. It
// returns ENotFound if the service does not exist.
func (s *Store) SaveServiceFeatures(ctx context.Context, f *phoneverify.ServiceFeatures) error {
	const op = "save service features"
	return s.withTx(ctx, op, func(r runner) error { return saveFeatures(r, op, f) })
}

// saveFeatures upserts f in r's transaction; a set deleted_at is kept.
func saveFeatures(r runner, op string, f *phoneverify.ServiceFeatures) error {
	b, err := json.Marshal(features{
		LookupEnabled: f.LookupEnabled, SkipSMSToLandlines: f.SkipSMSToLandlines, DoNotShareWarning: f.DoNotShareWarning,
		CustomCodeEnabled: f.CustomCodeEnabled, PSD2Enabled: f.PSD2Enabled, Echo: f.Echo,
	})
	if err != nil {
		return mapErr(op, err)
	}
	_, err = r.exec(qUpsertFeatures, f.ServiceID, string(b), nullUnixMilli(f.DeletedAt))
	if isForeignKeyViolation(err) {
		return notFound("service")
	}
	return mapErr(op, err)
}

// DeleteService marks a service deleted at the given time and revokes its
// API keys, in one transaction. Its verifications stay, for the records. It
// returns ENotFound if the service does not exist.
func (s *Store) DeleteService(ctx context.Context, serviceID string, at time.Time) error {
	const op = "delete service"
	return s.withTx(ctx, op, func(r runner) error {
		if _, err := r.exec(qDeleteService, serviceID, unixMilli(at)); err != nil {
			if isForeignKeyViolation(err) {
				return notFound("service")
			}
			return mapErr(op, err)
		}
		if _, err := r.exec(qTouchService, serviceID, unixMilli(at)); err != nil {
			return mapErr(op, err)
		}
		_, err := r.exec(qRevokeServiceKeys, serviceID, unixMilli(at))
		return mapErr(op, err)
	})
}

// RateLimits returns a service's rate limits, oldest first.
func (s *Store) RateLimits(ctx context.Context, serviceID string) ([]*phoneverify.RateLimit, error) {
	return readAll(s, ctx, "list rate limits", scanRateLimit, qSelectRateLimits, serviceID)
}

// RateLimit returns one rate limit. It returns ENotFound if none.
func (s *Store) RateLimit(ctx context.Context, serviceID, id string) (*phoneverify.RateLimit, error) {
	return readOne(s, ctx, "read rate limit", "rate limit", scanRateLimit, qSelectRateLimit, serviceID, id)
}

// CreateRateLimit inserts rl. It returns EConflict if its unique name is
// taken in the service and ENotFound if the service does not exist.
func (s *Store) CreateRateLimit(ctx context.Context, rl *phoneverify.RateLimit) error {
	const op = "create rate limit"
	return s.withTx(ctx, op, func(r runner) error {
		_, err := r.exec(qInsertRateLimit, rl.ID, rl.ServiceID, rl.UniqueName, rl.Description, unixMilli(rl.CreatedAt), unixMilli(rl.UpdatedAt))
		switch {
		case isForeignKeyViolation(err):
			return notFound("service")
		case isUniqueViolation(err):
			return &phoneverify.Error{Code: phoneverify.EConflict, Param: "unique_name", Err: err,
				Message: fmt.Sprintf("A rate limit named %q exists already in this service.", rl.UniqueName)}
		}
		return mapErr(op, err)
	})
}

// UpdateRateLimit saves rl's description. It returns ENotFound if none.
func (s *Store) UpdateRateLimit(ctx context.Context, rl *phoneverify.RateLimit) error {
	const op = "update rate limit"
	return s.withTx(ctx, op, func(r runner) error {
		res, err := r.exec(qUpdateRateLimit, rl.ServiceID, rl.ID, rl.Description, unixMilli(rl.UpdatedAt))
		if err != nil {
			return mapErr(op, err)
		}
		return mustAffectOne(op, res, "rate limit")
	})
}

// DeleteRateLimit deletes a rate limit, its buckets and their counts. It
// returns ENotFound if none.
func (s *Store) DeleteRateLimit(ctx context.Context, serviceID, id string) error {
	return s.deleteOne(ctx, "delete rate limit", "rate limit", qDeleteRateLimit, serviceID, id)
}

// Buckets returns a rate limit's buckets, oldest first.
func (s *Store) Buckets(ctx context.Context, serviceID, rateLimitID string) ([]*phoneverify.Bucket, error) {
	return readAll(s, ctx, "list buckets", scanBucket, qSelectBuckets, serviceID, rateLimitID)
}

// Bucket returns one bucket. It returns ENotFound if none.
func (s *Store) Bucket(ctx context.Context, serviceID, rateLimitID, id string) (*phoneverify.Bucket, error) {
	return readOne(s, ctx, "read bucket", "bucket", scanBucket, qSelectBucket, serviceID, rateLimitID, id)
}

// CreateBucket inserts b. It returns ENotFound if its rate limit does not
// exist in its service.
func (s *Store) CreateBucket(ctx context.Context, b *phoneverify.Bucket) error {
	const op = "create bucket"
	return s.withTx(ctx, op, func(r runner) error {
		if _, err := scanRateLimit(r.queryRow(qSelectRateLimit, b.ServiceID, b.RateLimitID)); errors.Is(err, sql.ErrNoRows) {
			return notFound("rate limit")
		} else if err != nil {
			return mapErr(op, err)
		}
		_, err := r.exec(qInsertBucket, b.ID, b.RateLimitID, b.ServiceID, b.Max, b.Interval.Milliseconds(),
			unixMilli(b.CreatedAt), unixMilli(b.UpdatedAt))
		if isUniqueViolation(err) {
			return conflict(err, "The bucket conflicts with an existing one.")
		}
		return mapErr(op, err)
	})
}

// UpdateBucket saves b's max and interval. It returns ENotFound if none.
func (s *Store) UpdateBucket(ctx context.Context, b *phoneverify.Bucket) error {
	const op = "update bucket"
	return s.withTx(ctx, op, func(r runner) error {
		res, err := r.exec(qUpdateBucket, b.ServiceID, b.RateLimitID, b.ID, b.Max, b.Interval.Milliseconds(), unixMilli(b.UpdatedAt))
		if err != nil {
			return mapErr(op, err)
		}
		return mustAffectOne(op, res, "bucket")
	})
}

// DeleteBucket deletes a bucket and its counts. It returns ENotFound if
// none.
func (s *Store) DeleteBucket(ctx context.Context, serviceID, rateLimitID, id string) error {
	return s.deleteOne(ctx, "delete bucket", "bucket", qDeleteBucket, serviceID, rateLimitID, id)
}

// HitBuckets counts one start against each hit's bucket in one transaction,
// unless a bucket already holds Max starts for the key within its interval:
// then nothing is recorded, and it returns that bucket and the time until
// its oldest counted start leaves the interval. On PostgreSQL each (bucket,
// key) is serialised by a transaction-scoped advisory lock.
func (s *Store) HitBuckets(ctx context.Context, hits []phoneverify.BucketHit, now time.Time) (*phoneverify.Bucket, time.Duration, error) {
	const op = "hit rate limit buckets"
	if len(hits) == 0 {
		return nil, 0, nil
	}
	var (
		full *phoneverify.Bucket
		wait time.Duration
	)
	err := s.withTx(ctx, op, func(r runner) error {
		full, wait = nil, 0
		for _, h := range hits {
			if s.q.xactLock != "" {
				if _, err := r.exec(s.q.xactLock, hitLockID(h)); err != nil {
					return mapErr(op, err)
				}
			}
			cutoff := now.Add(-h.Bucket.Interval)
			if _, err := r.exec(qPruneHits, h.Bucket.ID, h.Key, unixMilli(cutoff)); err != nil {
				return mapErr(op, err)
			}
			var n int
			var oldest int64
			if err := r.queryRow(qCountHits, h.Bucket.ID, h.Key).Scan(&n, &oldest); err != nil {
				return mapErr(op, err)
			}
			if n >= h.Bucket.Max {
				// Room comes back when the Max-th newest hit leaves.
				rows, err := r.query(qOldestHits, h.Bucket.ID, h.Key)
				if err != nil {
					return mapErr(op, err)
				}
				at := oldest
				for i := 0; rows.Next(); i++ {
					var t int64
					if err := rows.Scan(&t); err != nil {
						rows.Close()
						return mapErr(op, err)
					}
					if i == h.Bucket.Max-1 {
						at = t
						break
					}
				}
				rows.Close()
				full = h.Bucket
				wait = fromUnixMilli(at).Add(h.Bucket.Interval).Sub(now)
				return nil
			}
		}
		for _, h := range hits {
			if _, err := r.exec(qInsertHit, h.Bucket.ID, h.Key, unixMilli(now)); err != nil {
				if isForeignKeyViolation(err) {
					return notFound("bucket")
				}
				return mapErr(op, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return full, wait, nil
}

// hitLockID names the advisory lock of one (bucket, key).
func hitLockID(h phoneverify.BucketHit) int64 {
	f := fnv.New64a()
	f.Write([]byte(h.Bucket.ID))
	f.Write([]byte{0})
	f.Write([]byte(h.Key))
	return int64(f.Sum64())
}

// RecordSendAttempt inserts a.
func (s *Store) RecordSendAttempt(ctx context.Context, a *phoneverify.SendAttempt) error {
	const op = "record send attempt"
	return s.withTx(ctx, op, func(r runner) error {
		_, err := r.exec(qInsertAttempt, a.ID, a.VerificationID, a.ServiceID, string(a.Channel), a.Phone, a.Country, unixMilli(a.CreatedAt))
		return mapErr(op, err)
	})
}

// SendAttempts returns the attempts f selects, oldest first.
func (s *Store) SendAttempts(ctx context.Context, f phoneverify.AttemptFilter) ([]*phoneverify.SendAttempt, error) {
	limit := int64(f.Limit)
	if limit <= 0 {
		limit = 1 << 62
	}
	args := append(attemptArgs(f), limit, int64(f.Offset))
	return readAll(s, ctx, "list send attempts", scanAttempt, qSelectAttempts, args...)
}

// SendAttempt returns one attempt. It returns ENotFound if none.
func (s *Store) SendAttempt(ctx context.Context, id string) (*phoneverify.SendAttempt, error) {
	return readOne(s, ctx, "read send attempt", "attempt", scanAttempt, qSelectAttempt, id)
}

// CountSendAttempts returns how many attempts f selects, ignoring its Limit
// and Offset, and how many of them converted.
func (s *Store) CountSendAttempts(ctx context.Context, f phoneverify.AttemptFilter) (total, converted int, err error) {
	const op = "count send attempts"
	r, err := s.reader(ctx)
	if err != nil {
		return 0, 0, mapErr(op, err)
	}
	if err := r.queryRow(qCountAttempts, attemptArgs(f)...).Scan(&total, &converted); err != nil {
		return 0, 0, mapErr(op, err)
	}
	return total, converted, nil
}

func attemptArgs(f phoneverify.AttemptFilter) []any {
	conv := 0
	if f.Converted != nil {
		conv = 2
		if *f.Converted {
			conv = 1
		}
	}
	var after, before int64
	if !f.After.IsZero() {
		after = unixMilli(f.After)
	}
	if !f.Before.IsZero() {
		before = unixMilli(f.Before)
	}
	return []any{f.ServiceID, f.VerificationID, f.Phone, f.PhonePrefix, strings.ToUpper(f.Country), string(f.Channel), conv, after, before}
}

// AddSafeListNumber inserts n, or returns the entry already held for
// n.Phone.
func (s *Store) AddSafeListNumber(ctx context.Context, n *phoneverify.SafeListNumber) (*phoneverify.SafeListNumber, error) {
	const op = "add safe list number"
	var out *phoneverify.SafeListNumber
	err := s.withTx(ctx, op, func(r runner) error {
		if _, err := r.exec(qInsertSafeList, n.Phone, n.ID, unixMilli(n.CreatedAt)); err != nil {
			return mapErr(op, err)
		}
		var err error
		out, err = scanSafeList(r.queryRow(qSelectSafeList, n.Phone))
		return mapErr(op, err)
	})
	return out, err
}

// SafeListNumber returns the entry of a phone. It returns ENotFound if none.
func (s *Store) SafeListNumber(ctx context.Context, phone string) (*phoneverify.SafeListNumber, error) {
	return readOne(s, ctx, "read safe list number", "safe list number", scanSafeList, qSelectSafeList, phone)
}

// RemoveSafeListNumber deletes the entry of a phone. It returns ENotFound if
// none.
func (s *Store) RemoveSafeListNumber(ctx context.Context, phone string) error {
	return s.deleteOne(ctx, "remove safe list number", "safe list number", qDeleteSafeList, phone)
}

// deleteOne runs a DELETE that must remove exactly one row.
func (s *Store) deleteOne(ctx context.Context, op, what, query string, args ...any) error {
	return s.withTx(ctx, op, func(r runner) error {
		res, err := r.exec(query, args...)
		if err != nil {
			return mapErr(op, err)
		}
		return mustAffectOne(op, res, what)
	})
}

// readOne reads one record on the reader pool.
func readOne[T any](s *Store, ctx context.Context, op, what string, scan func(scanner) (*T, error), query string, args ...any) (*T, error) {
	r, err := s.reader(ctx)
	if err != nil {
		return nil, mapErr(op, err)
	}
	v, err := scan(r.queryRow(query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(what)
	}
	if err != nil {
		return nil, mapErr(op, err)
	}
	return v, nil
}

// readAll reads every record a query returns on the reader pool.
func readAll[T any](s *Store, ctx context.Context, op string, scan func(scanner) (*T, error), query string, args ...any) ([]*T, error) {
	r, err := s.reader(ctx)
	if err != nil {
		return nil, mapErr(op, err)
	}
	rows, err := r.query(query, args...)
	if err != nil {
		return nil, mapErr(op, err)
	}
	defer rows.Close()
	var out []*T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, mapErr(op, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(op, err)
	}
	return out, nil
}

func scanRateLimit(sc scanner) (*phoneverify.RateLimit, error) {
	var (
		rl                   phoneverify.RateLimit
		createdAt, updatedAt int64
	)
	if err := sc.Scan(&rl.ID, &rl.ServiceID, &rl.UniqueName, &rl.Description, &createdAt, &updatedAt); err != nil {
		return nil, err
	}
	rl.CreatedAt, rl.UpdatedAt = fromUnixMilli(createdAt), fromUnixMilli(updatedAt)
	return &rl, nil
}

func scanBucket(sc scanner) (*phoneverify.Bucket, error) {
	var (
		b                              phoneverify.Bucket
		interval, createdAt, updatedAt int64
	)
	if err := sc.Scan(&b.ID, &b.RateLimitID, &b.ServiceID, &b.Max, &interval, &createdAt, &updatedAt); err != nil {
		return nil, err
	}
	b.Interval = time.Duration(interval) * time.Millisecond
	b.CreatedAt, b.UpdatedAt = fromUnixMilli(createdAt), fromUnixMilli(updatedAt)
	return &b, nil
}

func scanAttempt(sc scanner) (*phoneverify.SendAttempt, error) {
	var (
		a                  phoneverify.SendAttempt
		channel            string
		createdAt, convert int64
	)
	if err := sc.Scan(&a.ID, &a.VerificationID, &a.ServiceID, &channel, &a.Phone, &a.Country, &createdAt, &convert); err != nil {
		return nil, err
	}
	a.Channel = phoneverify.Channel(channel)
	a.CreatedAt = fromUnixMilli(createdAt)
	a.Converted = convert != 0
	return &a, nil
}

func scanSafeList(sc scanner) (*phoneverify.SafeListNumber, error) {
	var (
		n         phoneverify.SafeListNumber
		createdAt int64
	)
	if err := sc.Scan(&n.Phone, &n.ID, &createdAt); err != nil {
		return nil, err
	}
	n.CreatedAt = fromUnixMilli(createdAt)
	return &n, nil
}
