package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/phoneverify/phoneverify"
)

var _ phoneverify.FraudStore = (*Store)(nil)

const (
	fraudSettingsColumns = `service_id, mode, prefix_floor, country_floor, budget_ratio, window_ms, cooldown_ms, ip_countries, updated_at`
	qSelectFraudSettings = `SELECT ` + fraudSettingsColumns + ` FROM service_fraud_settings WHERE service_id = $1`
	qUpsertFraudSettings = `INSERT INTO service_fraud_settings (` + fraudSettingsColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
	ON CONFLICT (service_id) DO UPDATE SET mode = excluded.mode, prefix_floor = excluded.prefix_floor,
	country_floor = excluded.country_floor, budget_ratio = excluded.budget_ratio, window_ms = excluded.window_ms,
	cooldown_ms = excluded.cooldown_ms, ip_countries = excluded.ip_countries, updated_at = excluded.updated_at`

	// qFraudState sums one start's counters in one pass over its rows:
	// $5 starts the window, $6 the history; ipc keys are "ADDR|CC",
	// between $7 and $9, $8 being this start's own.
	qFraudState = `SELECT
	CAST(COALESCE(SUM(CASE WHEN scope = 'prefix' AND hour >= $5 THEN sends ELSE 0 END), 0) AS BIGINT),
	CAST(COALESCE(SUM(CASE WHEN scope = 'prefix' AND hour >= $5 THEN conversions ELSE 0 END), 0) AS BIGINT),
	CAST(COALESCE(SUM(CASE WHEN scope = 'country' AND hour >= $5 THEN sends ELSE 0 END), 0) AS BIGINT),
	CAST(COALESCE(SUM(CASE WHEN scope = 'country' AND hour >= $5 THEN conversions ELSE 0 END), 0) AS BIGINT),
	CAST(COALESCE(SUM(CASE WHEN scope = 'prefix' THEN sends ELSE 0 END), 0) AS BIGINT),
	CAST(COALESCE(SUM(CASE WHEN scope = 'prefix' THEN conversions ELSE 0 END), 0) AS BIGINT),
	CAST(COALESCE(SUM(CASE WHEN scope = 'country' THEN sends ELSE 0 END), 0) AS BIGINT),
	CAST(COALESCE(SUM(CASE WHEN scope = 'country' THEN conversions ELSE 0 END), 0) AS BIGINT),
	CAST(COUNT(DISTINCT CASE WHEN scope = 'ipc' AND hour >= $5 AND key <> $8 THEN key END) AS BIGINT),
	CAST(COALESCE(SUM(CASE WHEN scope = 'ip' AND hour >= $5 THEN conversions ELSE 0 END), 0) AS BIGINT)
	FROM fraud_counts
	WHERE service_id = $1 AND hour >= $6 AND ((scope = 'prefix' AND key = $2) OR (scope = 'country' AND key = $3)
	OR (scope = 'ip' AND key = $4) OR (scope = 'ipc' AND key > $7 AND key < $9))`
	qFraudBlocks = `SELECT scope, until FROM fraud_blocks WHERE service_id = $1 AND until > $2
	AND ((scope = 'prefix' AND key = $3) OR (scope = 'country' AND key = $4) OR (scope = 'ip' AND key = $5))`

	fraudCountsConflict = ` ON CONFLICT (service_id, scope, key, hour) DO UPDATE
	SET sends = fraud_counts.sends + excluded.sends, conversions = fraud_counts.conversions + excluded.conversions`
	qSelectFraudStartIP = `SELECT ip FROM fraud_starts WHERE verification_id = $1 AND ip <> ''`
	qInsertFraudStart   = `INSERT INTO fraud_starts (verification_id, service_id, ip, created_at) VALUES ($1, $2, $3, $4)
	ON CONFLICT (verification_id) DO NOTHING`
	// qCountIPConversion credits a conversion to the address its
	// verification was started from, if one was recorded.
	qCountIPConversion = `INSERT INTO fraud_counts (service_id, scope, key, hour, sends, conversions)
	SELECT service_id, 'ip', ip, CAST($2 AS BIGINT), 0, 1 FROM fraud_starts WHERE verification_id = $1 AND ip <> ''` +
		fraudCountsConflict

	qUpsertFraudBlock = `INSERT INTO fraud_blocks (service_id, scope, key, until) VALUES ($1, $2, $3, $4)
	ON CONFLICT (service_id, scope, key) DO UPDATE
	SET until = CASE WHEN excluded.until > fraud_blocks.until THEN excluded.until ELSE fraud_blocks.until END`
	fraudDecisionColumns = `id, service_id, reason, action, prefix, country, phone, ip, unconverted, budget, until, created_at`
	qInsertFraudDecision = `INSERT INTO fraud_decisions (` + fraudDecisionColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`
	qSelectFraudDecisions = `SELECT ` + fraudDecisionColumns + ` FROM fraud_decisions
	WHERE (CAST($1 AS TEXT) = '' OR service_id = $1)
	AND (CAST($2 AS TEXT) = '' OR reason = $2)
	AND (CAST($3 AS TEXT) = '' OR action = $3)
	AND (CAST($4 AS TEXT) = '' OR country = $4)
	AND (CAST($5 AS TEXT) = '' OR prefix = $5)
	AND (CAST($6 AS BIGINT) = 0 OR created_at > $6)
	AND (CAST($7 AS BIGINT) = 0 OR created_at < $7)
	AND (CAST($8 AS TEXT) = '' OR created_at < (SELECT created_at FROM fraud_decisions WHERE id = $8)
		OR (created_at = (SELECT created_at FROM fraud_decisions WHERE id = $8) AND id < $8))
	ORDER BY created_at DESC, id DESC LIMIT $9`

	// The purge. purgeable selects the verifications past the retention:
	// final (or lapsed) and untouched since the cutoff.
	purgeable           = `SELECT id FROM verifications WHERE updated_at < $1 AND (status <> 'pending' OR expires_at < $1)`
	qPurgeMessages      = `DELETE FROM outbox WHERE verification_id IN (` + purgeable + `)`
	qPurgeAttempts      = `DELETE FROM send_attempts WHERE verification_id IN (` + purgeable + `)`
	qPurgeFraudStarts   = `DELETE FROM fraud_starts WHERE created_at < $1`
	qPurgeNumbers       = `DELETE FROM numbers WHERE latest_id IN (` + purgeable + `)`
	qPurgeVerifications = `DELETE FROM verifications WHERE id IN (` + purgeable + `)`
	qPurgeDecisions     = `DELETE FROM fraud_decisions WHERE created_at < $1`
	// Events go by age, their deliveries first (they reference them),
	// delivered or not: an event carries its verification's data.
	qPurgeEventDeliveries = `DELETE FROM event_deliveries WHERE event_seq IN (SELECT seq FROM events WHERE created_at < $1)`
	qPurgeEvents          = `DELETE FROM events WHERE created_at < $1`
	qPurgeBlocks          = `DELETE FROM fraud_blocks WHERE until < $1`
	qPurgeIPCounts        = `DELETE FROM fraud_counts WHERE scope IN ('ip', 'ipc') AND hour < $1`
	// Hourly prefix and country rows older than $1 fold into the row of
	// their day's midnight (itself an hourly bucket), then go.
	rollupWhere   = ` WHERE scope IN ('prefix', 'country') AND hour < $1 AND hour % 86400000 <> 0`
	qRollupCounts = `INSERT INTO fraud_counts (service_id, scope, key, hour, sends, conversions)
	SELECT service_id, scope, key, hour - hour % 86400000, SUM(sends), SUM(conversions) FROM fraud_counts` + rollupWhere +
		` GROUP BY service_id, scope, key, hour - hour % 86400000` + fraudCountsConflict
	qDeleteRolledUp = `DELETE FROM fraud_counts` + rollupWhere
)

// FraudSettings returns a service's fraud settings. Returns ENotFound if it
// never saved any.
func (s *Store) FraudSettings(ctx context.Context, serviceID string) (*phoneverify.FraudSettings, error) {
	return readOne(s, ctx, "read fraud settings", "fraud settings", scanFraudSettings, qSelectFraudSettings, serviceID)
}

// SaveFraudSettings inserts or replaces a service's fraud settings.
// Returns ENotFound if the service does not exist.
func (s *Store) SaveFraudSettings(ctx context.Context, fs *phoneverify.FraudSettings) error {
	const op = "save fraud settings"
	return s.withTx(ctx, op, func(r runner) error {
		var n int
		if err := r.queryRow(qServiceExists, fs.ServiceID).Scan(&n); err != nil {
			return mapErr(op, err)
		}
		if n == 0 {
			return notFound("service")
		}
		_, err := r.exec(qUpsertFraudSettings, fs.ServiceID, string(fs.Mode), fs.PrefixFloor, fs.CountryFloor,
			fs.BudgetRatio, fs.Window.Milliseconds(), fs.Cooldown.Milliseconds(), fs.IPCountries, unixMilli(fs.UpdatedAt))
		return mapErr(op, err)
	})
}

func scanFraudSettings(sc scanner) (*phoneverify.FraudSettings, error) {
	var (
		fs                            phoneverify.FraudSettings
		mode                          string
		windowMS, cooldownMS, updated int64
	)
	if err := sc.Scan(&fs.ServiceID, &mode, &fs.PrefixFloor, &fs.CountryFloor, &fs.BudgetRatio, &windowMS, &cooldownMS,
		&fs.IPCountries, &updated); err != nil {
		return nil, err
	}
	fs.Mode = phoneverify.FraudMode(mode)
	fs.Window = time.Duration(windowMS) * time.Millisecond
	fs.Cooldown = time.Duration(cooldownMS) * time.Millisecond
	fs.UpdatedAt = fromUnixMilli(updated)
	return &fs, nil
}

// hourOf returns the hourly bucket that holds t.
func hourOf(t time.Time) int64 { return t.UTC().Truncate(time.Hour).UnixMilli() }

// pgCountShards is how many rows each PostgreSQL counter is spread over.
// Every start (and approval) of a service adds to the same few rows — its
// country, its prefix — and an upsert holds its row's lock until commit:
// on one row, concurrent starts queued behind each other's WAL flush (a
// run of approvals spent most of its time waiting on that lock). A writer
// adds to one of the rows at random; readers sum them all.
const pgCountShards = 8

// countHour returns the hour value a counter write uses: the hour, plus,
// on PostgreSQL, a shard number of at most pgCountShards-1 milliseconds.
// Readers select hours by range and the daily roll-up rounds hours down,
// so the shard never shows.
func (s *Store) countHour(t time.Time) int64 {
	h := hourOf(t)
	if s.dialect == DialectPostgres {
		h += mrand.Int64N(pgCountShards)
	}
	return h
}

// FraudState reads the counters and blocks one start is judged on, in two
// reads on the reader pool.
func (s *Store) FraudState(ctx context.Context, q phoneverify.FraudQuery) (*phoneverify.FraudState, error) {
	const op = "read fraud state"
	r, err := s.reader(ctx)
	if err != nil {
		return nil, mapErr(op, err)
	}
	ip, ipLow, ipOwn, ipHigh := q.IP, q.IP+"|", q.IP+"|"+q.Country, q.IP+"}"
	if q.IP == "" { // matches nothing: no counter has an empty or NUL key
		ip, ipLow, ipOwn, ipHigh = "\x01", "\x01", "\x01", "\x01"
	}
	st := &phoneverify.FraudState{Blocks: map[string]time.Time{}}
	var ipCountries int64
	err = r.queryRow(qFraudState, q.ServiceID, q.Prefix, q.Country, ip, hourOf(q.Since), hourOf(q.HistorySince),
		ipLow, ipOwn, ipHigh).Scan(
		&st.Prefix.Sends, &st.Prefix.Conversions, &st.Country.Sends, &st.Country.Conversions,
		&st.PrefixHistory.Sends, &st.PrefixHistory.Conversions, &st.CountryHistory.Sends, &st.CountryHistory.Conversions,
		&ipCountries, &st.IPConversions)
	if err != nil {
		return nil, mapErr(op, err)
	}
	st.IPCountries = int(ipCountries)
	rows, err := r.query(qFraudBlocks, q.ServiceID, unixMilli(q.Now), q.Prefix, q.Country, ip)
	if err != nil {
		return nil, mapErr(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			scope string
			until int64
		)
		if err := rows.Scan(&scope, &until); err != nil {
			return nil, mapErr(op, err)
		}
		st.Blocks[scope] = fromUnixMilli(until)
	}
	return st, mapErr(op, rows.Err())
}

// upsertCounts builds one multi-row upsert that adds delta to each key.
func upsertCounts(serviceID string, keys []phoneverify.FraudKey, delta phoneverify.FraudCounts, hour int64) (string, []any) {
	var b strings.Builder
	b.WriteString(`INSERT INTO fraud_counts (service_id, scope, key, hour, sends, conversions) VALUES `)
	args := []any{serviceID, hour, delta.Sends, delta.Conversions}
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		n := len(args)
		b.WriteString("($1, $" + strconv.Itoa(n+1) + ", $" + strconv.Itoa(n+2) + ", $2, $3, $4)")
		args = append(args, k.Scope, k.Key)
	}
	b.WriteString(fraudCountsConflict)
	return b.String(), args
}

// fraudCountShapes returns the counter upserts that starts and approvals
// make (one to four keys), to be prepared once: parsing them on every
// start and approval was a tenth of a SQLite node's time.
func fraudCountShapes() []string {
	var out []string
	for n := 1; n <= 4; n++ {
		q, _ := upsertCounts("", make([]phoneverify.FraudKey, n), phoneverify.FraudCounts{}, 0)
		out = append(out, q)
	}
	return out
}

// CountFraud adds delta to the counters of keys, in the hourly bucket of
// at, with one atomic upsert (and remembers the verification's address).
func (s *Store) CountFraud(ctx context.Context, serviceID string, keys []phoneverify.FraudKey, delta phoneverify.FraudCounts, at time.Time, verificationID, ip string) error {
	const op = "count fraud"
	if len(keys) == 0 {
		return nil
	}
	q, args := upsertCounts(serviceID, keys, delta, s.countHour(at))
	if s.dialect == DialectPostgres {
		// One statement, no BEGIN and COMMIT round trips: the counter
		// rows are shared by every start of the service, and an upsert
		// holds its row's lock until its transaction ends.
		if verificationID != "" && ip != "" {
			n := len(args)
			q = fmt.Sprintf("WITH c AS (%s) INSERT INTO fraud_starts (verification_id, service_id, ip, created_at) "+
				"VALUES ($%d, $%d, $%d, $%d) ON CONFLICT (verification_id) DO NOTHING", q, n+1, n+2, n+3, n+4)
			args = append(args, verificationID, serviceID, ip, unixMilli(at))
		}
		return s.single(ctx, op, func(r runner) error {
			_, err := r.exec(q, args...)
			return mapErr(op, err)
		})
	}
	return s.withTx(ctx, op, func(r runner) error {
		if _, err := r.exec(q, args...); err != nil {
			return mapErr(op, err)
		}
		if verificationID != "" && ip != "" {
			if _, err := r.exec(qInsertFraudStart, verificationID, serviceID, ip, unixMilli(at)); err != nil {
				return mapErr(op, err)
			}
		}
		return nil
	})
}

var _ phoneverify.ConversionCounter = (*Store)(nil)

// CountsConversions reports that [Store.UpdateVerification] counts an
// approval's conversion ([phoneverify.Update] Conversion) in the same
// transaction as the approval, on both dialects.
func (s *Store) CountsConversions() bool { return true }

// conversionKeys returns the prefix and country counters a conversion adds
// to, in the order every counter write locks them.
func conversionKeys(prefix, country string) []phoneverify.FraudKey {
	var keys []phoneverify.FraudKey
	if prefix != "" {
		keys = append(keys, phoneverify.FraudKey{Scope: phoneverify.FraudScopePrefix, Key: prefix})
	}
	if country != "" {
		keys = append(keys, phoneverify.FraudKey{Scope: phoneverify.FraudScopeCountry, Key: country})
	}
	return keys
}

// countConversionTx adds one conversion inside the transaction r runs in:
// the prefix and country counters first, then the address the
// verification was started from, the order in which CountFraud locks them.
func (s *Store) countConversionTx(r runner, op, serviceID, verificationID string, c *phoneverify.FraudConversion) error {
	hour := s.countHour(c.At)
	if keys := conversionKeys(c.Prefix, c.Country); len(keys) > 0 {
		q, args := upsertCounts(serviceID, keys, phoneverify.FraudCounts{Conversions: 1}, hour)
		if _, err := r.exec(q, args...); err != nil {
			return mapErr(op, err)
		}
	}
	_, err := r.exec(qCountIPConversion, verificationID, hour)
	return mapErr(op, err)
}

// CountConversion adds one conversion to the prefix and country counters
// and to the address the verification was started from.
func (s *Store) CountConversion(ctx context.Context, serviceID, verificationID, prefix, country string, at time.Time) error {
	const op = "count conversion"
	keys := conversionKeys(prefix, country)
	hour := s.countHour(at)
	if s.dialect == DialectPostgres {
		// One statement, as in CountFraud: every approval of the service
		// adds to the same country and prefix rows. The address is read
		// first so that the one upsert locks its rows in the order
		// CountFraud's does (prefix, country, address): a data-modifying
		// CTE would leave that order to the planner, and two counters
		// taking shared rows in opposite orders deadlock.
		var ip string
		err := s.db.QueryRowContext(ctx, qSelectFraudStartIP, verificationID).Scan(&ip)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return mapErr(op, err)
		}
		if ip != "" {
			keys = append(keys, phoneverify.FraudKey{Scope: phoneverify.FraudScopeIP, Key: ip})
		}
		if len(keys) == 0 {
			return nil
		}
		q, args := upsertCounts(serviceID, keys, phoneverify.FraudCounts{Conversions: 1}, hour)
		return s.single(ctx, op, func(r runner) error {
			_, err := r.exec(q, args...)
			return mapErr(op, err)
		})
	}
	return s.withTx(ctx, op, func(r runner) error {
		return s.countConversionTx(r, op, serviceID, verificationID,
			&phoneverify.FraudConversion{Prefix: prefix, Country: country, At: at})
	})
}

// BlockFraud records a block and the decision that made it.
func (s *Store) BlockFraud(ctx context.Context, d *phoneverify.FraudDecision, scope, key string) error {
	const op = "block fraud"
	return s.withTx(ctx, op, func(r runner) error {
		if _, err := r.exec(qUpsertFraudBlock, d.ServiceID, scope, key, unixMilli(d.Until)); err != nil {
			return mapErr(op, err)
		}
		return insertFraudDecision(r, op, d)
	})
}

// RecordFraudDecision records a decision alone.
func (s *Store) RecordFraudDecision(ctx context.Context, d *phoneverify.FraudDecision) error {
	const op = "record fraud decision"
	return s.withTx(ctx, op, func(r runner) error { return insertFraudDecision(r, op, d) })
}

func insertFraudDecision(r runner, op string, d *phoneverify.FraudDecision) error {
	_, err := r.exec(qInsertFraudDecision, d.ID, d.ServiceID, d.Reason, d.Action, d.Prefix, d.Country, d.Phone, d.IP,
		d.Unconverted, d.Budget, unixMilli(d.Until), unixMilli(d.CreatedAt))
	return mapErr(op, err)
}

// FraudDecisions returns the decisions f selects, newest first.
func (s *Store) FraudDecisions(ctx context.Context, f phoneverify.FraudDecisionFilter) ([]*phoneverify.FraudDecision, error) {
	var after, before int64
	if !f.After.IsZero() {
		after = unixMilli(f.After)
	}
	if !f.Before.IsZero() {
		before = unixMilli(f.Before)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	return readAll(s, ctx, "read fraud decisions", scanFraudDecision, qSelectFraudDecisions,
		f.ServiceID, f.Reason, f.Action, strings.ToUpper(f.Country), f.Prefix, after, before, f.BeforeID, limit)
}

func scanFraudDecision(sc scanner) (*phoneverify.FraudDecision, error) {
	var (
		d                phoneverify.FraudDecision
		until, createdAt int64
	)
	if err := sc.Scan(&d.ID, &d.ServiceID, &d.Reason, &d.Action, &d.Prefix, &d.Country, &d.Phone, &d.IP,
		&d.Unconverted, &d.Budget, &until, &createdAt); err != nil {
		return nil, err
	}
	d.Until, d.CreatedAt = fromUnixMilli(until), fromUnixMilli(createdAt)
	return &d, nil
}

// Purge deletes what is past the retention and rolls up old counters, in
// one transaction: either all of it happens or none.
func (s *Store) Purge(ctx context.Context, cutoff, rollupBefore time.Time) (*phoneverify.PurgeResult, error) {
	const op = "purge"
	var res phoneverify.PurgeResult
	c, rb := unixMilli(cutoff), hourOf(rollupBefore)
	err := s.withTx(ctx, op, func(r runner) error {
		res = phoneverify.PurgeResult{}
		steps := []struct {
			query string
			arg   int64
			n     *int64
		}{
			{qPurgeMessages, c, &res.Messages},
			{qPurgeAttempts, c, &res.Attempts},
			{qPurgeFraudStarts, rb, nil},
			{qPurgeNumbers, c, nil},
			{qPurgeVerifications, c, &res.Verifications},
			{qPurgeDecisions, c, &res.Decisions},
			{qPurgeEventDeliveries, c, nil},
			{qPurgeEvents, c, &res.Events},
			{qPurgeBlocks, c, nil},
			{qPurgeIPCounts, rb, &res.IPCounters},
			{qRollupCounts, rb, nil},
			{qDeleteRolledUp, rb, &res.CountersRolledUp},
		}
		for _, st := range steps {
			out, err := r.exec(st.query, st.arg)
			if err != nil {
				return mapErr(op, err)
			}
			if st.n != nil {
				if *st.n, err = out.RowsAffected(); err != nil {
					return mapErr(op, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &res, nil
}
