package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/phoneverify/phoneverify"
)

// Verification returns the verification with the given id in the given
// service. It returns ENotFound if there is none.
func (s *Store) Verification(ctx context.Context, serviceID, id string) (*phoneverify.Verification, error) {
	const op = "read verification"
	r, err := s.reader(ctx)
	if err != nil {
		return nil, mapErr(op, err)
	}
	v, err := scanVerification(r.queryRow(qSelectVerification, id, serviceID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("verification")
	}
	if err != nil {
		return nil, mapErr(op, err)
	}
	return v, nil
}

// StartVerification serialises every start for (key.ServiceID, key.Phone).
// On PostgreSQL it first tries without locks (see startOptimistic): it
// reads, calls decide, and writes only if the number's row is unchanged,
// calling decide again on a fresh read otherwise. Then, or on SQLite,
// in one write transaction it locks the number's row, reads its
// [phoneverify.StartState], calls decide, and writes the
// [phoneverify.StartResult]: result.Close is updated, result.Save inserted
// (a new id) or updated (Latest's id), the number's row set to point at it
// with result.Sends, and result.Message, if any, added to the outbox. If decide returns an error nothing is written and
// that error is returned unchanged. It returns result.Save as saved.
//
// It returns ENotFound if the service does not exist, and EConflict if
// result.Save would make a second pending verification for the number.
func (s *Store) StartVerification(ctx context.Context, key phoneverify.NumberKey, decide func(*phoneverify.StartState) (*phoneverify.StartResult, error)) (*phoneverify.Verification, error) {
	const op = "start verification"
	if s.dialect == DialectPostgres {
	optimistic:
		for range optimisticTries {
			v, outcome, err := s.startOptimistic(ctx, op, key, decide)
			switch outcome {
			case outcomeDone:
				return v, err
			case outcomeLocked:
				break optimistic
			}
		}
		// Contended, or a result the optimistic path cannot write: lock.
	}
	var saved *phoneverify.Verification
	lockedStart := func(r runner) error {
		var (
			latestID sql.NullString
			sends    string
		)
		if err := r.queryRow(qLockNumber, key.ServiceID, key.Phone).Scan(&latestID, &sends); err != nil {
			if isForeignKeyViolation(err) {
				return notFound("service")
			}
			return mapErr(op, err)
		}
		var (
			state phoneverify.StartState
			err   error
		)
		if state.Sends, err = decodeSends(sends); err != nil {
			return mapErr(op, err)
		}
		if latestID.Valid {
			// Locked too on PostgreSQL: a concurrent check must not
			// approve what this start is about to resend or close.
			state.Latest, err = scanVerification(r.queryRow(s.q.lockVerification, latestID.String, key.ServiceID))
			if errors.Is(err, sql.ErrNoRows) {
				// Deleted since: the number has no latest verification.
				state.Latest, err = nil, nil
			}
			if err != nil {
				return mapErr(op, err)
			}
		}
		if err := readStartRegistry(r, key, &state); err != nil {
			return mapErr(op, err)
		}
		// decide may change Latest in place.
		var latest indexedFields
		if state.Latest != nil {
			latest = indexedFieldsOf(state.Latest)
		}

		res, err := decide(&state)
		if err != nil {
			return err
		}
		if err := checkStartResult(key, res); err != nil {
			return mapErr(op, err)
		}
		if res.Close != nil {
			known := state.Latest != nil && res.Close.ID == state.Latest.ID
			if err := updateVerification(r, op, res.Close, latest, known); err != nil {
				return err
			}
		}
		if state.Latest != nil && res.Save.ID == state.Latest.ID {
			if err := updateVerification(r, op, res.Save, latest, res.Close == nil); err != nil {
				return err
			}
		} else if _, err := r.exec(qInsertVerification, verificationArgs(res.Save)...); err != nil {
			if isUniqueViolation(err) {
				return conflict(err, "The verification conflicts with an existing one (same id, or a second pending verification for the number).")
			}
			return mapErr(op, err)
		}
		if _, err := r.exec(qUpdateNumber, key.ServiceID, key.Phone, res.Save.ID, encodeSends(res.Sends)); err != nil {
			return mapErr(op, err)
		}
		if res.Message != nil {
			if err := insertMessage(r, op, res.Message); err != nil {
				return err
			}
		}
		if a := res.Attempt; a != nil {
			if _, err := r.exec(qInsertAttempt, a.ID, a.VerificationID, a.ServiceID, string(a.Channel), a.Phone, a.Country, unixMilli(a.CreatedAt)); err != nil {
				return mapErr(op, err)
			}
		}
		if err := insertEvents(r, op, res.Events); err != nil {
			return err
		}
		saved = normalVerification(res.Save)
		return nil
	}
	err := s.withTx(ctx, op, lockedStart)
	// Rows are locked in one order (the number's, then its latest
	// verification) everywhere; should PostgreSQL still pick this start to
	// break a deadlock, nothing was written and it runs again.
	for try := 0; try < 3 && isDeadlock(err); try++ {
		err = s.withTx(ctx, op, lockedStart)
	}
	if err != nil {
		return nil, err
	}
	return saved, nil
}

// checkStartResult rejects a result that would corrupt the number's row.
// The messages name no phone number.
func checkStartResult(key phoneverify.NumberKey, res *phoneverify.StartResult) error {
	switch {
	case res == nil || res.Save == nil:
		return errors.New("decide returned no verification to save")
	case res.Save.ID == "":
		return errors.New("the verification to save has no id")
	case res.Save.ServiceID != key.ServiceID || res.Save.To != key.Phone:
		return errors.New("the verification to save is for another number")
	case res.Close != nil && (res.Close.ServiceID != key.ServiceID || res.Close.To != key.Phone):
		return errors.New("the verification to close is for another number")
	case res.Message != nil:
		return checkMessage(res.Message, res.Save)
	}
	return nil
}

// readStartRegistry fills state.SubjectPhone and state.PhoneSubjects with one
// query.
func readStartRegistry(r runner, key phoneverify.NumberKey, state *phoneverify.StartState) error {
	rows, err := r.query(qSelectStartRegistry, key.ServiceID, key.Phone, key.Subject)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		vp := phoneverify.VerifiedPhone{ServiceID: key.ServiceID}
		var verifiedAt int64
		if err := rows.Scan(&vp.Subject, &vp.Phone, &vp.VerificationID, &verifiedAt); err != nil {
			return err
		}
		vp.VerifiedAt = fromUnixMilli(verifiedAt)
		addRegistryEntry(key, state, &vp)
	}
	return rows.Err()
}

// addRegistryEntry files one registry entry read for a start.
func addRegistryEntry(key phoneverify.NumberKey, state *phoneverify.StartState, vp *phoneverify.VerifiedPhone) {
	if vp.Phone == key.Phone {
		state.PhoneSubjects = append(state.PhoneSubjects, vp.Subject)
	}
	if key.Subject != "" && vp.Subject == key.Subject {
		state.SubjectPhone = vp
	}
}

// UpdateVerification locks one verification, calls apply with it, and saves
// what apply asks for, in one write transaction. ref names the verification
// by ID (if ref.Phone is set too, the verification must be for that number)
// or, without ID, as the newest verification for ref.Phone; either way in
// ref.ServiceID. If apply returns an error nothing is written and that error
// is returned unchanged. If the [phoneverify.Update] has Save set, every
// mutable field of the verification is written; if it has Register set, the
// subject's registry entry is created or replaced; if it has Conversion
// set (with Save or Register), the conversion is counted, in the same
// transaction, so only the run of apply that is saved counts. It returns
// the verification as apply left it.
//
// It returns ENotFound, without calling apply, if ref matches no
// verification.
func (s *Store) UpdateVerification(ctx context.Context, ref phoneverify.VerificationRef, apply func(*phoneverify.Verification) (*phoneverify.Update, error)) (*phoneverify.Verification, error) {
	const op = "update verification"
	if ref.ID == "" && ref.Phone == "" {
		return nil, notFound("verification")
	}
	if s.dialect == DialectPostgres {
	optimistic:
		for range optimisticTries {
			v, outcome, err := s.updateOptimistic(ctx, op, ref, apply)
			switch outcome {
			case outcomeDone:
				return v, err
			case outcomeLocked:
				break optimistic
			}
		}
		// Contended, or events to record: take the row lock and wait in line.
	}
	return s.updateLocked(ctx, op, ref, nil, apply)
}

// UpdateVerificationGuarded is [Store.UpdateVerification] that, in the same
// transaction, calls guard with the verification as read before apply
// sees it: a rate limiter that keeps its counters in this database (see
// package sqllimit) takes an event there, so that a check costs one
// transaction rather than two. If guard returns an error nothing is
// written, apply is not called, and that error is returned. It always
// takes the locking path (on PostgreSQL a row lock and a transaction of its
// own, not the shared optimistic batches), so it pays only on SQLite.
func (s *Store) UpdateVerificationGuarded(ctx context.Context, ref phoneverify.VerificationRef, guard func(q Querier, v *phoneverify.Verification) error, apply func(*phoneverify.Verification) (*phoneverify.Update, error)) (*phoneverify.Verification, error) {
	const op = "update verification"
	if ref.ID == "" && ref.Phone == "" {
		return nil, notFound("verification")
	}
	return s.updateLocked(ctx, op, ref, guard, apply)
}

// updateLocked is UpdateVerification's locking path, with guard (if not
// nil) called before apply.
func (s *Store) updateLocked(ctx context.Context, op string, ref phoneverify.VerificationRef, guard func(q Querier, v *phoneverify.Verification) error, apply func(*phoneverify.Verification) (*phoneverify.Update, error)) (*phoneverify.Verification, error) {
	var out *phoneverify.Verification
	err := s.withTx(ctx, op, func(r runner) error {
		var row *sql.Row
		if ref.ID != "" {
			row = r.queryRow(s.q.lockVerification, ref.ID, ref.ServiceID)
		} else {
			row = r.queryRow(s.q.lockLatestByPhone, ref.ServiceID, ref.Phone)
		}
		v, err := scanVerification(row)
		if errors.Is(err, sql.ErrNoRows) || err == nil && ref.Phone != "" && v.To != ref.Phone {
			return notFound("verification")
		}
		if err != nil {
			return mapErr(op, err)
		}

		prev := indexedFieldsOf(v)
		if guard != nil {
			if err := guard(runnerQuerier{r}, v); err != nil {
				return err
			}
		}
		u, err := apply(v)
		if err != nil {
			return err
		}
		if u != nil && u.Save {
			if err := updateVerification(r, op, v, prev, true); err != nil {
				return err
			}
		}
		if u != nil && u.Register != nil {
			if err := registerPhone(r, op, u.Register); err != nil {
				return err
			}
		}
		if u != nil && (u.Save || u.Register != nil) {
			if err := insertEvents(r, op, u.Events); err != nil {
				return err
			}
			if u.Conversion != nil {
				if err := s.countConversionTx(r, op, v.ServiceID, v.ID, u.Conversion); err != nil {
					return err
				}
			}
		}
		out = normalVerification(v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// optimisticTries is how many times UpdateVerification on PostgreSQL reads,
// applies and swaps before it falls back to locking the row. A lost swap
// means another writer saved the verification meanwhile: rare except when
// many checks hit one verification at once, where the lock queues them
// instead of letting them retry in a crowd.
const optimisticTries = 2

// updateOptimistic is UpdateVerification without a lock and without a
// transaction of its own: the pgBatcher reads the verification, calls
// apply, and saves with qSwapVerification only if the verification is still
// as read (a registry entry in the same statement), sharing both round
// trips and the commit with concurrent callers. The outcome is
// outcomeRetry if the swap lost to another writer, or outcomeLocked if the
// update carries events, which the locked path records; nothing was
// written then.
func (s *Store) updateOptimistic(ctx context.Context, op string, ref phoneverify.VerificationRef, apply func(*phoneverify.Verification) (*phoneverify.Update, error)) (out *phoneverify.Verification, o outcome, err error) {
	u := &updateOp{optimistic: optimistic{op: op}, ref: ref, apply: apply}
	if err := s.batch.do(ctx, u); err != nil {
		return nil, outcomeDone, mapErr(op, err)
	}
	if u.outcome != outcomeDone {
		return nil, u.outcome, nil
	}
	return u.out, outcomeDone, u.err
}

// wasArgs returns the arguments that name v as read in qSwapVerification
// ($18–$31).
func wasArgs(v *phoneverify.Verification) []any { return verificationArgs(v)[3:] }

func registerPhone(r runner, op string, vp *phoneverify.VerifiedPhone) error {
	if vp.Subject == "" {
		return mapErr(op, errors.New("the registry entry has no subject"))
	}
	_, err := r.exec(qUpsertVerifiedPhone, vp.ServiceID, vp.Subject, vp.Phone, vp.VerificationID, unixMilli(vp.VerifiedAt))
	if isForeignKeyViolation(err) {
		return notFound("service")
	}
	return mapErr(op, err)
}

// indexedFields are the fields of a stored verification that its indexes
// depend on, besides its id and number.
type indexedFields struct {
	status    phoneverify.Status
	expiresAt int64
}

func indexedFieldsOf(v *phoneverify.Verification) indexedFields {
	return indexedFields{status: v.Status, expiresAt: unixMilli(v.ExpiresAt)}
}

// updateVerification writes every mutable field of v, stored with the
// indexed fields prev if known is set. It returns ENotFound if v is not
// stored.
func updateVerification(r runner, op string, v *phoneverify.Verification, prev indexedFields, known bool) error {
	query := qUpdateVerification
	if known && indexedFieldsOf(v) == prev {
		query = qUpdateVerificationCounters
	}
	res, err := r.exec(query, verificationArgs(v)...)
	if err != nil {
		if isUniqueViolation(err) {
			return conflict(err, "The verification conflicts with an existing one (a second pending verification for the number).")
		}
		return mapErr(op, err)
	}
	return mustAffectOne(op, res, "verification")
}

// ExpireVerifications marks every pending verification whose code expired
// at or before now as expired, with updated_at now, and returns how many it
// marked. For those whose service has an event subscription it records
// verification.expired in the same transaction.
func (s *Store) ExpireVerifications(ctx context.Context, now time.Time) (int, error) {
	const op = "expire verifications"
	var n int
	err := s.withTx(ctx, op, func(r runner) error {
		var err error
		n, err = expireWithEvents(r, op, now)
		return err
	})
	return n, err
}

// VerifiedPhone returns the registry entry of a subject. It returns
// ENotFound if the subject has no verified phone.
func (s *Store) VerifiedPhone(ctx context.Context, serviceID, subject string) (*phoneverify.VerifiedPhone, error) {
	const op = "read verified phone"
	r, err := s.reader(ctx)
	if err != nil {
		return nil, mapErr(op, err)
	}
	vp := phoneverify.VerifiedPhone{ServiceID: serviceID}
	var verifiedAt int64
	err = r.queryRow(qSelectVerifiedPhone, serviceID, subject).Scan(&vp.Subject, &vp.Phone, &vp.VerificationID, &verifiedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("verified phone")
	}
	if err != nil {
		return nil, mapErr(op, err)
	}
	vp.VerifiedAt = fromUnixMilli(verifiedAt)
	return &vp, nil
}

// verificationArgs returns the arguments of qInsertVerification and
// qUpdateVerification.
func verificationArgs(v *phoneverify.Verification) []any {
	hash := v.CodeHash
	if hash == nil {
		hash = []byte{} // the column is NOT NULL
	}
	return []any{
		v.ID, v.ServiceID, v.To, v.Country, string(v.Channel), string(v.Status), v.Subject, v.Amount, v.Payee,
		v.Locale, v.SendCount, v.Attempts, v.MaxAttempts, hash, unixMilli(v.ExpiresAt), unixMilli(v.CreatedAt),
		unixMilli(v.UpdatedAt),
	}
}

func scanVerification(sc scanner) (*phoneverify.Verification, error) {
	var (
		v                               phoneverify.Verification
		channel, status                 string
		expiresAt, createdAt, updatedAt int64
	)
	err := sc.Scan(&v.ID, &v.ServiceID, &v.To, &v.Country, &channel, &status, &v.Subject, &v.Amount, &v.Payee,
		&v.Locale, &v.SendCount, &v.Attempts, &v.MaxAttempts, &v.CodeHash, &expiresAt, &createdAt, &updatedAt)
	if err != nil {
		return nil, err
	}
	v.Channel = phoneverify.Channel(channel)
	v.Status = phoneverify.Status(status)
	v.ExpiresAt = fromUnixMilli(expiresAt)
	v.CreatedAt = fromUnixMilli(createdAt)
	v.UpdatedAt = fromUnixMilli(updatedAt)
	return &v, nil
}

// normalVerification returns a copy of v as it reads back from the store:
// times in UTC to the millisecond, and its own copy of the code hash.
func normalVerification(v *phoneverify.Verification) *phoneverify.Verification {
	c := *v
	c.CodeHash = bytes.Clone(v.CodeHash)
	c.ExpiresAt = normalTime(v.ExpiresAt)
	c.CreatedAt = normalTime(v.CreatedAt)
	c.UpdatedAt = normalTime(v.UpdatedAt)
	return &c
}

// writer returns a runner for single statements on the writer pool, outside
// a transaction.
func (s *Store) writer(ctx context.Context) (runner, error) {
	r := runner{ctx: ctx, db: s.db}
	if s.wstmts != nil {
		var err error
		if r.stmts, err = s.wstmts.get(ctx); err != nil {
			return r, fmt.Errorf("writer: %w", err)
		}
	}
	return r, nil
}
