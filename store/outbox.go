package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/phoneverify/phoneverify"
)

var _ phoneverify.Outbox = (*Store)(nil)

const (
	messageColumns = `id, verification_id, service_id, phone, country, locale, send_count, sealed, status,
	gateway, provider_id, error, attempts, due_at, expires_at, created_at, updated_at`

	qInsertMessage = `INSERT INTO outbox (` + messageColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`
	// qClaimMessages counts an attempt on the oldest due messages and moves
	// their due time to the end of the lease; $1 now, $2 lease end, $3
	// limit. PostgreSQL appends FOR UPDATE SKIP LOCKED to the inner SELECT
	// (see dialectQueries) so that concurrent claimers pass each other by;
	// on SQLite the single writer serialises claims.
	qClaimMessagesHead = `UPDATE outbox SET attempts = attempts + 1, due_at = $2, updated_at = $1
	WHERE id IN (SELECT id FROM outbox WHERE status = 'queued' AND due_at <= $1 ORDER BY due_at LIMIT $3`
	qClaimMessagesTail = `) RETURNING ` + messageColumns + `,
	(SELECT v.status FROM verifications v WHERE v.id = outbox.verification_id),
	(SELECT v.send_count FROM verifications v WHERE v.id = outbox.verification_id)`
	qClaimMessagesSQLite = qClaimMessagesHead + qClaimMessagesTail
	// qRetryMessage keeps the message queued until $3; qFinishMessage
	// records a final outcome and wipes the sealed text. Both apply only to
	// the claim numbered $2, and only while the message is queued.
	qRetryMessage = `UPDATE outbox SET due_at = $3, gateway = $4, error = $5, updated_at = $6
	WHERE id = $1 AND attempts = $2 AND status = 'queued'`
	qFinishMessage = `UPDATE outbox SET status = $3, sealed = NULL, gateway = $4, provider_id = $5, error = $6,
	due_at = $7, updated_at = $7
	WHERE id = $1 AND attempts = $2 AND status = 'queued'`
	// qReceiptMessage moves a sent message to a final status.
	qReceiptMessage = `UPDATE outbox SET status = $3, error = $4, updated_at = $5
	WHERE gateway = $1 AND provider_id = $2 AND status = 'sent'`
	// qReceiptMessageReturning names the messages a receipt moved, for
	// their events.
	qReceiptMessageReturning = ` RETURNING id, verification_id, service_id, phone, send_count`
	// qSelectMessages reads a verification's history; the sealed text is
	// never read back here.
	qSelectMessages = `SELECT id, verification_id, service_id, phone, country, locale, send_count, NULL, status,
	gateway, provider_id, error, attempts, due_at, expires_at, created_at, updated_at
	FROM outbox WHERE verification_id = $1 AND service_id = $2 ORDER BY created_at, send_count, id`
)

// single runs fn, which makes a single write statement: on SQLite in the
// group committer's shared transactions, on PostgreSQL on its own with no
// BEGIN and COMMIT round trips around it.
func (s *Store) single(ctx context.Context, op string, fn func(r runner) error) error {
	if s.group != nil {
		return s.withTx(ctx, op, fn)
	}
	return fn(runner{ctx: ctx, db: s.db})
}

// insertMessage adds m to the outbox inside a start's transaction.
func insertMessage(r runner, op string, m *phoneverify.OutboxMessage) error {
	_, err := r.exec(qInsertMessage, m.ID, m.VerificationID, m.ServiceID, m.To, m.Country, m.Locale, m.SendCount,
		m.Sealed, string(m.Status), m.Gateway, m.ProviderID, m.Error, m.Attempts, unixMilli(m.DueAt),
		unixMilli(m.ExpiresAt), unixMilli(m.CreatedAt), unixMilli(m.UpdatedAt))
	if isUniqueViolation(err) {
		return conflict(err, "The message conflicts with an existing one (same id).")
	}
	return mapErr(op, err)
}

// checkMessage rejects an outbox message that does not belong to the
// verification a start saves.
func checkMessage(m *phoneverify.OutboxMessage, v *phoneverify.Verification) error {
	switch {
	case m.ID == "":
		return errors.New("the outbox message has no id")
	case m.VerificationID != v.ID || m.ServiceID != v.ServiceID || m.To != v.To:
		return errors.New("the outbox message is for another verification")
	case !m.Status.Valid():
		return errors.New("the outbox message has no valid status")
	}
	return nil
}

// ClaimMessages takes up to limit due messages and leases them until
// now+lease; see [phoneverify.Outbox].
func (s *Store) ClaimMessages(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*phoneverify.OutboxMessage, error) {
	const op = "claim messages"
	if limit <= 0 {
		return nil, nil
	}
	var out []*phoneverify.OutboxMessage
	err := s.single(ctx, op, func(r runner) error {
		out = out[:0]
		rows, err := r.query(s.q.claimMessages, unixMilli(now), unixMilli(now.Add(lease)), limit)
		if err != nil {
			return mapErr(op, err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				status    sql.NullString
				sendCount sql.NullInt64
			)
			m, err := scanMessage(rows, &status, &sendCount)
			if err != nil {
				return mapErr(op, err)
			}
			m.VerificationStatus = phoneverify.Status(status.String)
			m.VerificationSendCount = int(sendCount.Int64)
			out = append(out, m)
		}
		return mapErr(op, rows.Err())
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// FinishMessage records the outcome of the claim m.Attempts; see
// [phoneverify.Outbox]. A sent or failed outcome sets the sealed text to
// NULL.
func (s *Store) FinishMessage(ctx context.Context, m *phoneverify.OutboxMessage, o phoneverify.MessageOutcome) error {
	const op = "finish message"
	var (
		query string
		args  []any
	)
	switch o.Status {
	case phoneverify.MessageQueued:
		query = qRetryMessage
		args = []any{m.ID, m.Attempts, unixMilli(o.RetryAt), o.Gateway, o.Error, unixMilli(o.At)}
	case phoneverify.MessageSent, phoneverify.MessageFailed:
		query = qFinishMessage
		args = []any{m.ID, m.Attempts, string(o.Status), o.Gateway, o.ProviderID, o.Error, unixMilli(o.At)}
	default:
		return mapErr(op, errors.New("a worker records queued, sent or failed"))
	}
	run := s.single
	if len(o.Events) > 0 {
		run = s.withTx // the events commit with the outcome
	}
	return run(ctx, op, func(r runner) error {
		res, err := r.exec(query, args...)
		if err != nil {
			return mapErr(op, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return mapErr(op, err)
		}
		if n == 0 {
			return phoneverify.Errorf(phoneverify.EConflict, "The message was claimed again or is no longer queued.")
		}
		return insertEvents(r, op, o.Events)
	})
}

// UpdateMessageStatus applies a delivery receipt; see [phoneverify.Outbox].
func (s *Store) UpdateMessageStatus(ctx context.Context, gateway, providerID string, status phoneverify.MessageStatus, errText string, at time.Time) (bool, error) {
	const op = "update message status"
	if !status.Final() || gateway == "" || providerID == "" {
		// Only final statuses move a sent message; queued or sent again
		// would move it backwards or nowhere.
		return false, nil
	}
	var changed bool
	err := s.withTx(ctx, op, func(r runner) error {
		changed = false
		rows, err := r.query(qReceiptMessage+qReceiptMessageReturning, gateway, providerID, string(status), errText, unixMilli(at))
		if err != nil {
			return mapErr(op, err)
		}
		var msgs []*phoneverify.OutboxMessage
		for rows.Next() {
			var m phoneverify.OutboxMessage
			if err := rows.Scan(&m.ID, &m.VerificationID, &m.ServiceID, &m.To, &m.SendCount); err != nil {
				rows.Close()
				return mapErr(op, err)
			}
			msgs = append(msgs, &m)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return mapErr(op, err)
		}
		changed = len(msgs) > 0
		// A receipt is the provider's word on delivery: subscribers hear of
		// it as a message event, recorded with the status change.
		for _, m := range msgs {
			var subscribed bool
			if err := r.queryRow(qHasEventSubscriptions, m.ServiceID).Scan(&subscribed); err != nil {
				return mapErr(op, err)
			}
			if subscribed {
				ev := phoneverify.NewMessageEvent(m, status, gateway, errText, at)
				if err := insertEvents(r, op, []*phoneverify.Event{ev}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return changed, err
}

// Messages returns a verification's outbox messages, oldest first, without
// their sealed text.
func (s *Store) Messages(ctx context.Context, serviceID, verificationID string) ([]*phoneverify.OutboxMessage, error) {
	const op = "read messages"
	r, err := s.reader(ctx)
	if err != nil {
		return nil, mapErr(op, err)
	}
	rows, err := r.query(qSelectMessages, verificationID, serviceID)
	if err != nil {
		return nil, mapErr(op, err)
	}
	defer rows.Close()
	var out []*phoneverify.OutboxMessage
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, mapErr(op, err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(op, err)
	}
	return out, nil
}

// scanMessage reads messageColumns, then extra.
func scanMessage(sc scanner, extra ...any) (*phoneverify.OutboxMessage, error) {
	var (
		m                                      phoneverify.OutboxMessage
		status                                 string
		dueAt, expiresAt, createdAt, updatedAt int64
	)
	dest := []any{&m.ID, &m.VerificationID, &m.ServiceID, &m.To, &m.Country, &m.Locale, &m.SendCount, &m.Sealed,
		&status, &m.Gateway, &m.ProviderID, &m.Error, &m.Attempts, &dueAt, &expiresAt, &createdAt, &updatedAt}
	err := sc.Scan(append(dest, extra...)...)
	if err != nil {
		return nil, err
	}
	m.Status = phoneverify.MessageStatus(status)
	m.DueAt = fromUnixMilli(dueAt)
	m.ExpiresAt = fromUnixMilli(expiresAt)
	m.CreatedAt = fromUnixMilli(createdAt)
	m.UpdatedAt = fromUnixMilli(updatedAt)
	return &m, nil
}

// qOutboxBacklog counts the queued messages (waiting, leased or waiting for
// a retry) and finds the oldest one's creation; the partial index outbox_due
// holds exactly these rows.
const qOutboxBacklog = `SELECT COUNT(*), COALESCE(MIN(created_at), 0) FROM outbox WHERE status = 'queued'`

// OutboxBacklog returns how many messages are queued and when the oldest of
// them was created (the zero time when none is), for the metrics an
// operator alerts on: a growing backlog or an old message means delivery
// is stuck.
func (s *Store) OutboxBacklog(ctx context.Context) (queued int, oldest time.Time, err error) {
	const op = "read outbox backlog"
	r, err := s.reader(ctx)
	if err != nil {
		return 0, time.Time{}, mapErr(op, err)
	}
	var ms int64
	if err := r.queryRow(qOutboxBacklog).Scan(&queued, &ms); err != nil {
		return 0, time.Time{}, mapErr(op, err)
	}
	if queued > 0 {
		oldest = fromUnixMilli(ms)
	}
	return queued, oldest, nil
}

// Querier runs the statements of a function given to [Store.Single].
type Querier interface {
	// QueryRow runs a query that returns at most one row.
	QueryRow(query string, args ...any) *sql.Row
	// Exec runs a statement that returns no rows.
	Exec(query string, args ...any) (sql.Result, error)
}

type runnerQuerier struct{ r runner }

func (q runnerQuerier) QueryRow(query string, args ...any) *sql.Row {
	return q.r.queryRow(query, args...)
}
func (q runnerQuerier) Exec(query string, args ...any) (sql.Result, error) {
	return q.r.exec(query, args...)
}

// Single runs fn, a few statements that need no transaction of their own
// (each is atomic, as a compare-and-swap is): on SQLite inside the single
// writer's group commit, where they share a commit — and its WAL writes —
// with every concurrent write; on PostgreSQL each statement on its own.
// The SQL rate limiter runs here so that a limit costs no commit of its own.
// If fn returns an error, on SQLite its statements are rolled back.
func (s *Store) Single(ctx context.Context, op string, fn func(q Querier) error) error {
	return s.single(ctx, op, func(r runner) error { return fn(runnerQuerier{r}) })
}
