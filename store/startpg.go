package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/phoneverify/phoneverify"
)

// PostgreSQL's optimistic start: one statement reads everything decide
// needs, decide runs with no lock held and no transaction open, and one
// statement writes the result only if the number's row is still as read.
// Two round trips instead of seven (BEGIN, lock the number, read the latest
// verification, read the registry, write, update the number, COMMIT), and
// the pgBatcher shares both, and the commit, with concurrent callers. Each
// round trip costs both processes system calls and context switches, and
// PostgreSQL a bind-execute: that, not the statements' work, is where a
// start's time went.
//
// The statements use data-modifying CTEs, which SQLite lacks; SQLite keeps
// the transactional path, where round trips cost nothing.

const (
	// qPGStartRead reads the number's row, its latest verification and the
	// registry entries of the subject ($3) and of the phone ($2), as JSON,
	// in one row even when the number has none.
	qPGStartRead = `SELECT n.latest_id, n.sends, v.id, v.service_id, v.phone, v.country, v.channel, v.status,
	v.subject, v.amount, v.payee, v.locale, v.send_count, v.attempts, v.max_attempts, v.code_hash,
	v.expires_at, v.created_at, v.updated_at,
	(SELECT json_agg(json_build_object('s', r.subject, 'p', r.phone, 'v', r.verification_id, 't', r.verified_at)
		ORDER BY r.verified_at, r.subject)::text
	 FROM verified_phones r WHERE r.service_id = $1 AND (r.phone = $2 OR r.subject = $3))
	FROM (SELECT 1) AS one
	LEFT JOIN numbers n ON n.service_id = $1 AND n.phone = $2
	LEFT JOIN verifications v ON v.id = n.latest_id AND v.service_id = $1`

	// pgNewVerification is the SELECT list of an insert of verificationArgs
	// ($1–$17), typed: a bare parameter in a SELECT list would be text.
	pgNewVerification = `SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, $8::text,
	$9::text, $10::text, $11::integer, $12::integer, $13::integer, $14::bytea, $15::bigint, $16::bigint, $17::bigint`

	// pgLockNumberAsRead locks the number's row if it still holds what was
	// read: latest_id $19, sends $20. A row changed meanwhile (and, after
	// the lock wait, re-read) yields nothing.
	pgLockNumberAsRead = `lock AS (SELECT 1 FROM numbers WHERE service_id = $2 AND phone = $3
		AND latest_id IS NOT DISTINCT FROM $19 AND sends = $20 FOR UPDATE)`

	// pgStartFirst inserts the number's row and its first verification
	// ($1–$17, sends $18); a row another node inserted first makes it
	// write nothing. Like the two below, it is the body of a WITH whose
	// last part, w, returns one row if the start was written.
	pgStartFirst = `n AS (INSERT INTO numbers (service_id, phone, latest_id, sends) VALUES ($2, $3, $1, $18)
		ON CONFLICT (service_id, phone) DO NOTHING RETURNING 1),
	w AS (INSERT INTO verifications (` + verificationColumns + `) ` + pgNewVerification + ` WHERE EXISTS (SELECT 1 FROM n)
		RETURNING 1)`

	// pgStartInsert inserts a new verification ($1–$17) and points the
	// number's row at it with sends $18, if the row is as read.
	pgStartInsert = pgLockNumberAsRead + `,
	i AS (INSERT INTO verifications (` + verificationColumns + `) ` + pgNewVerification + `
		WHERE EXISTS (SELECT 1 FROM lock) RETURNING 1),
	w AS (UPDATE numbers SET latest_id = $1, sends = $18 WHERE service_id = $2 AND phone = $3
		AND EXISTS (SELECT 1 FROM i) RETURNING 1)`

	// pgStartResend rewrites the latest verification ($1–$17, as read
	// $21–$34) and the number's sends ($18), if both are as read.
	pgStartResend = pgLockNumberAsRead + `,
	v AS (UPDATE verifications SET country = $4, channel = $5, status = $6, subject = $7, amount = $8,
		payee = $9, locale = $10, send_count = $11, attempts = $12, max_attempts = $13, code_hash = $14,
		expires_at = $15, created_at = $16, updated_at = $17
		WHERE id = $1 AND service_id = $2 AND phone = $3
		AND ` + verificationMutable + ` = ($21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34)
		AND EXISTS (SELECT 1 FROM lock) RETURNING 1),
	w AS (UPDATE numbers SET latest_id = $1, sends = $18 WHERE service_id = $2 AND phone = $3
		AND EXISTS (SELECT 1 FROM v) RETURNING 1)`

	// pgStartMessage and pgStartAttempt add a start's outbox message and
	// send-attempt record in the same statement, only if w wrote the
	// start; %d is the number of the first of their parameters.
	pgStartMessage = `m AS (INSERT INTO outbox (` + messageColumns + `) SELECT $%d::text, $%d::text, $%d::text,
		$%d::text, $%d::text, $%d::text, $%d::integer, $%d::bytea, $%d::text, $%d::text, $%d::text, $%d::text,
		$%d::integer, $%d::bigint, $%d::bigint, $%d::bigint, $%d::bigint WHERE EXISTS (SELECT 1 FROM w))`
	pgStartAttempt = `a AS (INSERT INTO send_attempts (id, verification_id, service_id, channel, phone, country, created_at)
		SELECT $%d::text, $%d::text, $%d::text, $%d::text, $%d::text, $%d::text, $%d::bigint
		WHERE EXISTS (SELECT 1 FROM w))`
)

// pgStartStatement completes the start body (pgStartFirst, …) whose
// arguments are args: it adds res's message and attempt, conditioned on the
// start being written, and selects w's row, so that the statement reports
// one row exactly when all of it was written. The statements are built per
// shape, of which there are twelve; pgx caches each one's preparation.
func pgStartStatement(body string, args []any, res *phoneverify.StartResult) (string, []any) {
	var b strings.Builder
	b.WriteString("WITH ")
	b.WriteString(body)
	if m := res.Message; m != nil {
		b.WriteString(",\n\t")
		b.WriteString(numbered(pgStartMessage, len(args)+1))
		args = append(args, m.ID, m.VerificationID, m.ServiceID, m.To, m.Country, m.Locale, m.SendCount,
			m.Sealed, string(m.Status), m.Gateway, m.ProviderID, m.Error, m.Attempts, unixMilli(m.DueAt),
			unixMilli(m.ExpiresAt), unixMilli(m.CreatedAt), unixMilli(m.UpdatedAt))
	}
	if a := res.Attempt; a != nil {
		b.WriteString(",\n\t")
		b.WriteString(numbered(pgStartAttempt, len(args)+1))
		args = append(args, a.ID, a.VerificationID, a.ServiceID, string(a.Channel), a.Phone, a.Country, unixMilli(a.CreatedAt))
	}
	b.WriteString("\nSELECT 1 FROM w")
	return b.String(), args
}

// numbered fills the %d placeholders of query with consecutive parameter
// numbers from first.
func numbered(query string, first int) string {
	n := strings.Count(query, "%d")
	nums := make([]any, n)
	for i := range nums {
		nums[i] = first + i
	}
	return fmt.Sprintf(query, nums...)
}

// startOp is one optimistic start, run by the pgBatcher.
type startOp struct {
	optimistic
	key    phoneverify.NumberKey
	decide func(*phoneverify.StartState) (*phoneverify.StartResult, error)
	num    numberRow
	state  *phoneverify.StartState
}

func (o *startOp) rowKey() string { return "n " + o.key.ServiceID + " " + o.key.Phone }

func (o *startOp) queueRead(b *pgx.Batch) {
	b.Queue(qPGStartRead, o.key.ServiceID, o.key.Phone, o.key.Subject)
}

func (o *startOp) scanRead(br pgx.BatchResults) error {
	var err error
	o.num, o.state, err = scanStart(br.QueryRow(), o.key)
	return err
}

func (o *startOp) plan() (string, []any, bool) {
	if o.done {
		return "", nil, true
	}
	var read *phoneverify.Verification
	if o.state.Latest != nil {
		read = normalVerification(o.state.Latest) // decide may change Latest
	}
	res, err := o.decide(o.state)
	if err != nil {
		o.finish(nil, err)
		return "", nil, true
	}
	if err := checkStartResult(o.key, res); err != nil {
		o.finish(nil, mapErr(o.op, err))
		return "", nil, true
	}
	sends := encodeSends(res.Sends)
	args := verificationArgs(res.Save)
	o.out = normalVerification(res.Save)
	switch {
	case len(res.Events) > 0:
		// Events commit with the verification; the locked path writes
		// them in its transaction. Only services with subscriptions
		// record events, so most starts stay on this path.
		o.outcome, o.done = outcomeLocked, true
		return "", nil, true
	case res.Close != nil:
		// Closing one verification and inserting another in one statement
		// would race the unique index on pending verifications: lock.
		o.outcome, o.done = outcomeLocked, true
		return "", nil, true
	case !o.num.exists:
		q, args := pgStartStatement(pgStartFirst, append(args, sends), res)
		return q, args, false
	case read == nil || res.Save.ID != read.ID:
		// Latest, if any, is left as it was: its changes since the read
		// order after this start.
		q, args := pgStartStatement(pgStartInsert, append(args, sends, o.num.latestID, o.num.sends), res)
		return q, args, false
	default:
		args = append(args, sends, o.num.latestID, o.num.sends)
		q, args := pgStartStatement(pgStartResend, append(args, wasArgs(read)...), res)
		return q, args, false
	}
}

func (o *startOp) wrote(n int64) {
	if n == 1 {
		o.finish(o.out, nil)
		return
	}
	o.outcome, o.done = outcomeRetry, true
}

// startOptimistic runs one optimistic start on PostgreSQL, in a batch with
// other callers'.
func (s *Store) startOptimistic(ctx context.Context, op string, key phoneverify.NumberKey, decide func(*phoneverify.StartState) (*phoneverify.StartResult, error)) (*phoneverify.Verification, outcome, error) {
	o := &startOp{optimistic: optimistic{op: op}, key: key, decide: decide}
	if err := s.batch.do(ctx, o); err != nil {
		return nil, outcomeDone, mapErr(op, err)
	}
	return o.out, o.outcome, o.err
}

// numberRow is a number's row as read.
type numberRow struct {
	exists   bool
	latestID sql.NullString
	sends    string
}

// scanStart scans the row of qPGStartRead: the number's row and the
// StartState.
func scanStart(row scanner, key phoneverify.NumberKey) (numberRow, *phoneverify.StartState, error) {
	var (
		num      numberRow
		sends    sql.NullString
		v        nullVerification
		registry sql.NullString
	)
	dest := append([]any{&num.latestID, &sends}, v.dest()...)
	dest = append(dest, &registry)
	if err := row.Scan(dest...); err != nil {
		return num, nil, err
	}
	num.exists, num.sends = sends.Valid, sends.String
	state := &phoneverify.StartState{}
	var err error
	if state.Sends, err = decodeSends(num.sends); err != nil {
		return num, nil, err
	}
	state.Latest = v.verification()
	if registry.Valid {
		var entries []struct {
			Subject        string `json:"s"`
			Phone          string `json:"p"`
			VerificationID string `json:"v"`
			VerifiedAt     int64  `json:"t"`
		}
		if err := json.Unmarshal([]byte(registry.String), &entries); err != nil {
			return num, nil, fmt.Errorf("read registry: %w", err)
		}
		for _, e := range entries {
			vp := phoneverify.VerifiedPhone{ServiceID: key.ServiceID, Subject: e.Subject, Phone: e.Phone,
				VerificationID: e.VerificationID, VerifiedAt: fromUnixMilli(e.VerifiedAt)}
			addRegistryEntry(key, state, &vp)
		}
	}
	return num, state, nil
}

// nullVerification scans a verification that an outer join may leave NULL.
type nullVerification struct {
	id, serviceID, phone, country, channel, status, subject, amount, payee, locale sql.NullString
	sendCount, attempts, maxAttempts                                               sql.NullInt64
	codeHash                                                                       []byte
	expiresAt, createdAt, updatedAt                                                sql.NullInt64
}

func (n *nullVerification) dest() []any {
	return []any{&n.id, &n.serviceID, &n.phone, &n.country, &n.channel, &n.status, &n.subject, &n.amount,
		&n.payee, &n.locale, &n.sendCount, &n.attempts, &n.maxAttempts, &n.codeHash, &n.expiresAt,
		&n.createdAt, &n.updatedAt}
}

// verification returns the scanned verification, or nil if it was NULL.
func (n *nullVerification) verification() *phoneverify.Verification {
	if !n.id.Valid {
		return nil
	}
	return &phoneverify.Verification{
		ID: n.id.String, ServiceID: n.serviceID.String, To: n.phone.String, Country: n.country.String,
		Channel: phoneverify.Channel(n.channel.String), Status: phoneverify.Status(n.status.String),
		Subject: n.subject.String, Amount: n.amount.String, Payee: n.payee.String, Locale: n.locale.String,
		SendCount: int(n.sendCount.Int64), Attempts: int(n.attempts.Int64), MaxAttempts: int(n.maxAttempts.Int64),
		CodeHash: n.codeHash, ExpiresAt: fromUnixMilli(n.expiresAt.Int64),
		CreatedAt: fromUnixMilli(n.createdAt.Int64), UpdatedAt: fromUnixMilli(n.updatedAt.Int64),
	}
}
