package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/phoneverify/phoneverify"
)

var _ phoneverify.EventStore = (*Store)(nil)

const (
	qInsertEventSubscription = `INSERT INTO event_subscriptions (id, service_id, url, types, secret_sealed, created_at)
	VALUES ($1, $2, $3, $4, $5, $6)`
	qInsertEventSubscriptionType = `INSERT INTO event_subscription_types (subscription_id, service_id, type)
	VALUES ($1, $2, $3)`
	qSelectEventSubscriptions = `SELECT id, service_id, url, types, secret_sealed, created_at
	FROM event_subscriptions WHERE service_id = $1 ORDER BY created_at, id`
	qSelectEventSubscriptionOf = `SELECT 1 FROM event_subscriptions WHERE id = $1 AND service_id = $2`
	qHasEventSubscriptions     = `SELECT EXISTS (SELECT 1 FROM event_subscriptions WHERE service_id = $1)`
	qDeleteEventDeliveriesOf   = `DELETE FROM event_deliveries WHERE subscription_id = $1 AND status = 'pending'`
	qDeleteEventSubTypes       = `DELETE FROM event_subscription_types WHERE subscription_id = $1`
	qDeleteEventSubscription   = `DELETE FROM event_subscriptions WHERE id = $1 AND service_id = $2`
	qSubscribedServices        = `SELECT DISTINCT service_id FROM event_subscription_types`
	qInsertEvent               = `INSERT INTO events (id, service_id, type, verification_id, payload, created_at)
	VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq`
	// qFanOutEvent queues event $1 for every subscription of service $4 to
	// type $5.
	qFanOutEvent = `INSERT INTO event_deliveries
	(subscription_id, event_seq, verification_id, status, attempts, due_at, created_at, updated_at)
	SELECT subscription_id, CAST($1 AS BIGINT), CAST($2 AS TEXT), 'pending', 0, CAST($3 AS BIGINT),
	CAST($3 AS BIGINT), CAST($3 AS BIGINT)
	FROM event_subscription_types WHERE service_id = $4 AND type = $5`
	eventColumns  = `seq, id, service_id, type, verification_id, payload, created_at`
	qSelectEvents = `SELECT ` + eventColumns + ` FROM events
	WHERE service_id = $1 AND ($2 = '' OR type = $2) AND ($3 = '' OR verification_id = $3)
	AND created_at >= $4 AND ($5 = 0 OR seq < $5)
	ORDER BY seq DESC LIMIT $6`
	// qClaimEventDeliveries leases the oldest due deliveries whose
	// verification has no earlier pending delivery to the same
	// subscription. PostgreSQL adds FOR UPDATE SKIP LOCKED.
	qClaimEventDeliveriesHead = `UPDATE event_deliveries SET attempts = attempts + 1, due_at = $2, updated_at = $1
	WHERE (subscription_id, event_seq) IN (SELECT d.subscription_id, d.event_seq FROM event_deliveries d
	WHERE d.status = 'pending' AND d.due_at <= $1 AND NOT EXISTS (SELECT 1 FROM event_deliveries p
	WHERE p.subscription_id = d.subscription_id AND p.verification_id = d.verification_id
	AND p.status = 'pending' AND p.event_seq < d.event_seq)
	ORDER BY d.due_at, d.event_seq LIMIT $3`
	qClaimEventDeliveriesTail = `) RETURNING subscription_id, event_seq, attempts, created_at`
	qSelectDeliveryParts      = `SELECT s.url, s.secret_sealed, ` + eventColumnsE + `
	FROM events e, event_subscriptions s WHERE e.seq = $1 AND s.id = $2`
	eventColumnsE        = `e.seq, e.id, e.service_id, e.type, e.verification_id, e.payload, e.created_at`
	qFinishEventDelivery = `UPDATE event_deliveries SET status = $4, due_at = $5, error = $6, updated_at = $7
	WHERE subscription_id = $1 AND event_seq = $2 AND attempts = $3 AND status = 'pending'`
	qExpireVerificationsRe = qExpireVerifications + ` RETURNING ` + verificationColumns
)

// CreateEventSubscription inserts sub and its types. It returns ENotFound
// if the service does not exist.
func (s *Store) CreateEventSubscription(ctx context.Context, sub *phoneverify.EventSubscription) error {
	const op = "create event subscription"
	if sub.ID == "" || len(sub.Types) == 0 || len(sub.SealedSecret) == 0 {
		return mapErr(op, errors.New("a subscription needs an id, types and a secret"))
	}
	types := make([]string, len(sub.Types))
	for i, t := range sub.Types {
		types[i] = string(t)
	}
	return s.withTx(ctx, op, func(r runner) error {
		_, err := r.exec(qInsertEventSubscription, sub.ID, sub.ServiceID, sub.URL, strings.Join(types, " "),
			sub.SealedSecret, unixMilli(sub.CreatedAt))
		if isForeignKeyViolation(err) {
			return notFound("service")
		}
		if err != nil {
			return mapErr(op, err)
		}
		for _, t := range types {
			if _, err := r.exec(qInsertEventSubscriptionType, sub.ID, sub.ServiceID, t); err != nil {
				return mapErr(op, err)
			}
		}
		return nil
	})
}

// EventSubscriptions returns a service's subscriptions, oldest first.
func (s *Store) EventSubscriptions(ctx context.Context, serviceID string) ([]*phoneverify.EventSubscription, error) {
	return readAll(s, ctx, "read event subscriptions", scanEventSubscription, qSelectEventSubscriptions, serviceID)
}

func scanEventSubscription(sc scanner) (*phoneverify.EventSubscription, error) {
	var (
		sub     phoneverify.EventSubscription
		types   string
		created int64
	)
	if err := sc.Scan(&sub.ID, &sub.ServiceID, &sub.URL, &types, &sub.SealedSecret, &created); err != nil {
		return nil, err
	}
	for _, t := range strings.Fields(types) {
		sub.Types = append(sub.Types, phoneverify.EventType(t))
	}
	sub.CreatedAt = fromUnixMilli(created)
	return &sub, nil
}

// DeleteEventSubscription removes a subscription and its pending
// deliveries. It returns ENotFound if there is none.
func (s *Store) DeleteEventSubscription(ctx context.Context, serviceID, id string) error {
	const op = "delete event subscription"
	return s.withTx(ctx, op, func(r runner) error {
		var one int
		err := r.queryRow(qSelectEventSubscriptionOf, id, serviceID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("event subscription")
		}
		if err != nil {
			return mapErr(op, err)
		}
		for _, q := range []string{qDeleteEventDeliveriesOf, qDeleteEventSubTypes} {
			if _, err := r.exec(q, id); err != nil {
				return mapErr(op, err)
			}
		}
		del, err := r.exec(qDeleteEventSubscription, id, serviceID)
		if err != nil {
			return mapErr(op, err)
		}
		return mustAffectOne(op, del, "event subscription")
	})
}

// HasEventSubscriptions reports whether a service has any subscription.
func (s *Store) HasEventSubscriptions(ctx context.Context, serviceID string) (bool, error) {
	const op = "read event subscriptions"
	r, err := s.reader(ctx)
	if err != nil {
		return false, mapErr(op, err)
	}
	var ok bool
	if err := r.queryRow(qHasEventSubscriptions, serviceID).Scan(&ok); err != nil {
		return false, mapErr(op, err)
	}
	return ok, nil
}

// insertEvents records events and queues a delivery for each matching
// subscription, inside the caller's transaction.
func insertEvents(r runner, op string, events []*phoneverify.Event) error {
	for _, e := range events {
		if e.ID == "" || !e.Type.Valid() {
			return mapErr(op, errors.New("an event needs an id and a known type"))
		}
		at := unixMilli(e.CreatedAt)
		if err := r.queryRow(qInsertEvent, e.ID, e.ServiceID, string(e.Type), e.VerificationID, string(e.Payload), at).Scan(&e.Seq); err != nil {
			return mapErr(op, err)
		}
		if _, err := r.exec(qFanOutEvent, e.Seq, e.VerificationID, at, e.ServiceID, string(e.Type)); err != nil {
			return mapErr(op, err)
		}
	}
	return nil
}

// Events lists recorded events, newest first.
func (s *Store) Events(ctx context.Context, f phoneverify.EventFilter) ([]*phoneverify.Event, error) {
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	var since int64
	if !f.Since.IsZero() {
		since = unixMilli(f.Since)
	}
	return readAll(s, ctx, "read events", scanEvent, qSelectEvents, f.ServiceID, string(f.Type), f.VerificationID,
		since, f.Before, limit)
}

func scanEvent(sc scanner) (*phoneverify.Event, error) {
	var (
		e       phoneverify.Event
		typ     string
		payload string
		created int64
	)
	if err := sc.Scan(&e.Seq, &e.ID, &e.ServiceID, &typ, &e.VerificationID, &payload, &created); err != nil {
		return nil, err
	}
	e.Type, e.Payload, e.CreatedAt = phoneverify.EventType(typ), []byte(payload), fromUnixMilli(created)
	return &e, nil
}

// ClaimEventDeliveries leases due deliveries; see [phoneverify.EventStore].
func (s *Store) ClaimEventDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*phoneverify.EventDelivery, error) {
	const op = "claim event deliveries"
	if limit <= 0 {
		return nil, nil
	}
	query := qClaimEventDeliveriesHead + qClaimEventDeliveriesTail
	if s.dialect == DialectPostgres {
		query = qClaimEventDeliveriesHead + ` FOR UPDATE OF d SKIP LOCKED` + qClaimEventDeliveriesTail
	}
	type claimed struct {
		sub      string
		seq      int64
		attempts int
		created  int64
	}
	var got []claimed
	err := s.single(ctx, op, func(r runner) error {
		got = got[:0]
		rows, err := r.query(query, unixMilli(now), unixMilli(now.Add(lease)), limit)
		if err != nil {
			return mapErr(op, err)
		}
		defer rows.Close()
		for rows.Next() {
			var c claimed
			if err := rows.Scan(&c.sub, &c.seq, &c.attempts, &c.created); err != nil {
				return mapErr(op, err)
			}
			got = append(got, c)
		}
		return mapErr(op, rows.Err())
	})
	if err != nil || len(got) == 0 {
		return nil, err
	}
	r, err := s.reader(ctx)
	if err != nil {
		return nil, mapErr(op, err)
	}
	out := make([]*phoneverify.EventDelivery, 0, len(got))
	for _, c := range got {
		d := &phoneverify.EventDelivery{SubscriptionID: c.sub, Attempts: c.attempts, CreatedAt: fromUnixMilli(c.created)}
		var (
			e       phoneverify.Event
			typ     string
			payload string
			created int64
		)
		err := r.queryRow(qSelectDeliveryParts, c.seq, c.sub).Scan(&d.URL, &d.SealedSecret,
			&e.Seq, &e.ID, &e.ServiceID, &typ, &e.VerificationID, &payload, &created)
		if errors.Is(err, sql.ErrNoRows) {
			continue // the subscription was deleted meanwhile
		}
		if err != nil {
			return nil, mapErr(op, err)
		}
		e.Type, e.Payload, e.CreatedAt = phoneverify.EventType(typ), []byte(payload), fromUnixMilli(created)
		d.Event = &e
		out = append(out, d)
	}
	return out, nil
}

// FinishEventDelivery records the outcome of claim d.Attempts; see
// [phoneverify.EventStore].
func (s *Store) FinishEventDelivery(ctx context.Context, d *phoneverify.EventDelivery, o phoneverify.DeliveryOutcome) error {
	const op = "finish event delivery"
	status, due := "pending", o.RetryAt
	switch {
	case o.Delivered:
		status, due = "delivered", o.At
	case o.GiveUp:
		status, due = "failed", o.At
	}
	return s.single(ctx, op, func(r runner) error {
		res, err := r.exec(qFinishEventDelivery, d.SubscriptionID, d.Event.Seq, d.Attempts, status, unixMilli(due),
			o.Error, unixMilli(o.At))
		if err != nil {
			return mapErr(op, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return mapErr(op, err)
		}
		if n == 0 {
			return phoneverify.Errorf(phoneverify.EConflict, "The delivery was claimed again or is no longer pending.")
		}
		return nil
	})
}

// expireWithEvents is ExpireVerifications inside a transaction: it marks the
// lapsed verifications and records verification.expired for those whose
// service has a subscription.
func expireWithEvents(r runner, op string, now time.Time) (int, error) {
	rows, err := r.query(qExpireVerificationsRe, unixMilli(now))
	if err != nil {
		return 0, mapErr(op, err)
	}
	var expired []*phoneverify.Verification
	for rows.Next() {
		v, err := scanVerification(rows)
		if err != nil {
			rows.Close()
			return 0, mapErr(op, err)
		}
		expired = append(expired, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, mapErr(op, err)
	}
	if len(expired) == 0 {
		return 0, nil
	}
	subscribed := map[string]bool{}
	srows, err := r.query(qSubscribedServices)
	if err != nil {
		return 0, mapErr(op, err)
	}
	for srows.Next() {
		var id string
		if err := srows.Scan(&id); err != nil {
			srows.Close()
			return 0, mapErr(op, err)
		}
		subscribed[id] = true
	}
	srows.Close()
	if err := srows.Err(); err != nil {
		return 0, mapErr(op, err)
	}
	var events []*phoneverify.Event
	for _, v := range expired {
		if subscribed[v.ServiceID] {
			events = append(events, phoneverify.NewVerificationEvent(v, now))
		}
	}
	return len(expired), insertEvents(r, op, events)
}
