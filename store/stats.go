package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/phoneverify/phoneverify"
)

// The read-only queries behind the admin dashboard. Like the rest of the
// store, their SQL is written once for both dialects: times are unix
// milliseconds, so an hour is integer division by 3,600,000 on either.

// Window selects the verifications started in [Since, Until). Until is also
// the moment the counts are taken at: a pending verification whose code
// lapsed before Until counts as expired, as the API would show it, even if
// the expiry sweep has not recorded it yet.
type Window struct {
	Since, Until time.Time
}

// Counts are the verifications of a window by their status.
type Counts struct {
	// Started counts every verification started in the window (a resend
	// does not start a new one).
	Started  int64
	Approved int64
	Pending  int64
	Expired  int64
	// Failed counts verifications whose message could not be delivered.
	Failed      int64
	Canceled    int64
	MaxAttempts int64
}

// Conversion returns the share of started verifications that were approved,
// from 0 to 1 (0 when none started). Verifications still pending count as not
// approved.
func (c Counts) Conversion() float64 {
	if c.Started == 0 {
		return 0
	}
	return float64(c.Approved) / float64(c.Started)
}

// Dimension is what [Store.VerificationCountsBy] groups verifications by.
type Dimension string

// Dimensions the store can group by.
const (
	// ByCountry groups by the ISO region of the number ("" when unknown).
	ByCountry Dimension = "country"
	// ByService groups by service id.
	ByService Dimension = "service"
)

// dimensionSQL returns, for d, the SQL expression that yields the group key
// over the verifications row (alias v) and the joins that expression needs.
// A dimension kept in another table is added here alone, without touching
// the query around it: once delivery records name the gateway that sent each
// message (the outbox), grouping by gateway is
//
//	key:  COALESCE(d.gateway, '')
//	join: LEFT JOIN (SELECT verification_id, MAX(gateway) AS gateway
//	      FROM outbox GROUP BY verification_id) d ON d.verification_id = v.id
func dimensionSQL(d Dimension) (key, join string, ok bool) {
	switch d {
	case ByCountry:
		return "v.country", "", true
	case ByService:
		return "v.service_id", "", true
	}
	return "", "", false
}

// GroupCounts are the counts of one group of a [Dimension].
type GroupCounts struct {
	Key string
	Counts
}

// HourCounts are the counts of the verifications started in one hour.
type HourCounts struct {
	// Hour is the start of the hour, in UTC.
	Hour time.Time
	Counts
}

// countColumns are the aggregates scanned by scanCounts; $2 is the end of
// the window.
const countColumns = `COUNT(*),
	COALESCE(SUM(CASE WHEN v.status = 'approved' THEN 1 ELSE 0 END), 0),
	COALESCE(SUM(CASE WHEN v.status = 'pending' AND v.expires_at > $2 THEN 1 ELSE 0 END), 0),
	COALESCE(SUM(CASE WHEN v.status = 'expired' OR (v.status = 'pending' AND v.expires_at <= $2) THEN 1 ELSE 0 END), 0),
	COALESCE(SUM(CASE WHEN v.status = 'failed' THEN 1 ELSE 0 END), 0),
	COALESCE(SUM(CASE WHEN v.status = 'canceled' THEN 1 ELSE 0 END), 0),
	COALESCE(SUM(CASE WHEN v.status = 'max_attempts_reached' THEN 1 ELSE 0 END), 0)`

const (
	qStatsTotal = `SELECT ` + countColumns + `
	FROM verifications v WHERE v.created_at >= $1 AND v.created_at < $2`
	qStatsHourly = `SELECT v.created_at / 3600000, ` + countColumns + `
	FROM verifications v WHERE v.created_at >= $1 AND v.created_at < $2
	GROUP BY 1 ORDER BY 1`
	// qStatsRecent lists the newest verifications; $2 = '' lists every
	// status.
	qStatsRecent = `SELECT ` + verificationColumns + ` FROM verifications
	WHERE $2 = '' OR status = $2 ORDER BY created_at DESC, id DESC LIMIT $1`
	qStatsVerification = `SELECT ` + verificationColumns + ` FROM verifications WHERE id = $1`
)

// qStatsBy returns the grouped query for a dimension's key and join.
func qStatsBy(key, join string) string {
	return `SELECT ` + key + `, ` + countColumns + `
	FROM verifications v ` + join + `
	WHERE v.created_at >= $1 AND v.created_at < $2
	GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT $3`
}

func scanCounts(sc scanner, lead ...any) (Counts, error) {
	var c Counts
	dest := append(lead, &c.Started, &c.Approved, &c.Pending, &c.Expired, &c.Failed, &c.Canceled, &c.MaxAttempts)
	err := sc.Scan(dest...)
	return c, err
}

// VerificationCounts counts the verifications started in w by status.
func (s *Store) VerificationCounts(ctx context.Context, w Window) (Counts, error) {
	const op = "count verifications"
	r, err := s.reader(ctx)
	if err != nil {
		return Counts{}, mapErr(op, err)
	}
	c, err := scanCounts(r.queryRow(qStatsTotal, unixMilli(w.Since), unixMilli(w.Until)))
	if err != nil {
		return Counts{}, mapErr(op, err)
	}
	return c, nil
}

// VerificationCountsBy counts the verifications started in w by status for
// each group of d, the largest groups first, at most limit of them. It
// returns an error for a dimension it does not know.
func (s *Store) VerificationCountsBy(ctx context.Context, d Dimension, w Window, limit int) ([]GroupCounts, error) {
	op := "count verifications by " + string(d)
	key, join, ok := dimensionSQL(d)
	if !ok {
		return nil, fmt.Errorf("store: %s: unknown dimension", op)
	}
	r, err := s.reader(ctx)
	if err != nil {
		return nil, mapErr(op, err)
	}
	rows, err := r.query(qStatsBy(key, join), unixMilli(w.Since), unixMilli(w.Until), limit)
	if err != nil {
		return nil, mapErr(op, err)
	}
	defer rows.Close()
	var out []GroupCounts
	for rows.Next() {
		var g GroupCounts
		if g.Counts, err = scanCounts(rows, &g.Key); err != nil {
			return nil, mapErr(op, err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(op, err)
	}
	return out, nil
}

// HourlyVerificationCounts counts the verifications started in w by status
// for each hour (UTC) the window touches, oldest first; hours without
// verifications are there with zero counts.
func (s *Store) HourlyVerificationCounts(ctx context.Context, w Window) ([]HourCounts, error) {
	const op = "count verifications per hour"
	r, err := s.reader(ctx)
	if err != nil {
		return nil, mapErr(op, err)
	}
	rows, err := r.query(qStatsHourly, unixMilli(w.Since), unixMilli(w.Until))
	if err != nil {
		return nil, mapErr(op, err)
	}
	defer rows.Close()
	byHour := map[int64]Counts{}
	for rows.Next() {
		var hour int64
		c, err := scanCounts(rows, &hour)
		if err != nil {
			return nil, mapErr(op, err)
		}
		byHour[hour] = c
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(op, err)
	}
	var out []HourCounts
	for h := w.Since.UTC().Truncate(time.Hour); h.Before(w.Until); h = h.Add(time.Hour) {
		out = append(out, HourCounts{Hour: h, Counts: byHour[h.UnixMilli()/int64(time.Hour/time.Millisecond)]})
	}
	return out, nil
}

// RecentVerifications returns the newest verifications of every service,
// newest first, at most limit of them; a non-empty status keeps only those
// recorded with that status.
func (s *Store) RecentVerifications(ctx context.Context, status phoneverify.Status, limit int) ([]*phoneverify.Verification, error) {
	const op = "list recent verifications"
	r, err := s.reader(ctx)
	if err != nil {
		return nil, mapErr(op, err)
	}
	rows, err := r.query(qStatsRecent, limit, string(status))
	if err != nil {
		return nil, mapErr(op, err)
	}
	defer rows.Close()
	var out []*phoneverify.Verification
	for rows.Next() {
		v, err := scanVerification(rows)
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

// VerificationByID returns the verification with the given id, whatever its
// service. It returns ENotFound if there is none.
func (s *Store) VerificationByID(ctx context.Context, id string) (*phoneverify.Verification, error) {
	const op = "read verification by id"
	r, err := s.reader(ctx)
	if err != nil {
		return nil, mapErr(op, err)
	}
	v, err := scanVerification(r.queryRow(qStatsVerification, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("verification")
	}
	if err != nil {
		return nil, mapErr(op, err)
	}
	return v, nil
}
