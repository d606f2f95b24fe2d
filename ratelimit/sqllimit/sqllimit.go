// Package sqllimit is a [phoneverify.Limiter] whose counters live in the
// store's database (the limiter_windows table of store's migrations), so a limit
// holds across every node on that database, SQLite or PostgreSQL, without
// Redis.
//
// Each key is one row holding its sliding log. An event reads the row,
// decides in Go, and writes the new log back only if the row still holds
// what was read (compare-and-swap), retrying otherwise: two statements in
// autocommit per allowed event and one per refusal, no transaction held
// across round trips, and no lost update between nodes.
package sqllimit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/ratelimit/internal/slidinglog"
	"github.com/phoneverify/phoneverify/store"
)

// The SQL, in the subset SQLite and PostgreSQL share.
const (
	qSelect = `SELECT events FROM limiter_windows WHERE limit_key = $1`
	// qInsert loses, without error, to a row another node inserted first.
	qInsert = `INSERT INTO limiter_windows (limit_key, events, expires_at) VALUES ($1, $2, $3)
	ON CONFLICT (limit_key) DO NOTHING`
	// qSwap writes the new log only over the log it was computed from.
	qSwap  = `UPDATE limiter_windows SET events = $2, expires_at = $3 WHERE limit_key = $1 AND events = $4`
	qSweep = `DELETE FROM limiter_windows WHERE expires_at <= $1`
)

// maxTries bounds the compare-and-swap retries of one event. Each retry
// means another event for the key was recorded meanwhile, so the system
// always progresses; the bound only keeps one caller from waiting forever
// under a flood on one key.
const maxTries = 100

// Options configures a [Limiter].
type Options struct {
	// Now is the clock; default time.Now. Nodes sharing a database should
	// keep their clocks in sync (NTP): each stamps events with its own.
	Now func() time.Time
}

// Limiter is a sliding-log limiter on a database. It is safe for concurrent
// use, from any number of processes sharing the database.
type Limiter struct {
	// run runs the statements of one try.
	run func(ctx context.Context, fn func(q store.Querier) error) error
	now func() time.Time
	// st is the store whose database holds the counters, when the
	// limiter was made by NewOnStore: slots can then be taken inside the
	// store's own transactions.
	st *store.Store
}

var _ pv.SlotUpdater = (*Limiter)(nil)

var _ pv.Limiter = (*Limiter)(nil)

// New returns a Limiter on db, a database migrated by [store.Store.Migrate].
// Each statement commits on its own; on SQLite prefer [NewOnStore].
func New(db *sql.DB, opts Options) *Limiter {
	return newLimiter(func(ctx context.Context, fn func(q store.Querier) error) error {
		return fn(ctxQuerier{ctx, db})
	}, opts)
}

// NewOnStore returns a Limiter on st's database that runs its statements
// through [store.Store.Single]: on SQLite inside the single writer's group
// commit, so that a limit adds statements to a shared commit rather than a
// commit of its own (which cost a SQLite node a seventh of its time when
// every check took a slot of the failed-check cap).
func NewOnStore(st *store.Store, opts Options) *Limiter {
	l := newLimiter(func(ctx context.Context, fn func(q store.Querier) error) error {
		return st.Single(ctx, "rate limit", fn)
	}, opts)
	l.st = st
	return l
}

// SlotsInUpdate reports whether [Limiter.UpdateVerificationWithSlot]
// updates st's verifications and takes its slot in the update's own
// transaction at no extra cost: for a limiter made by [NewOnStore] on st,
// a SQLite store, whose every write shares the single writer's
// transactions anyway. On PostgreSQL the update would give up the store's
// shared optimistic batches for a transaction of its own, which costs more
// than the limiter's two statements save.
func (l *Limiter) SlotsInUpdate(st pv.Store) bool {
	return l.st != nil && st == pv.Store(l.st) && l.st.Dialect() == store.DialectSQLite
}

// UpdateVerificationWithSlot implements [phoneverify.SlotUpdater] with
// [store.Store.UpdateVerificationGuarded]: the event is recorded (or
// refused) with the same compare-and-swap as [Limiter.Allow], in the
// update's transaction, so it commits, or not, with what apply saves. It
// returns an error if the limiter was not made by [NewOnStore].
func (l *Limiter) UpdateVerificationWithSlot(ctx context.Context, ref pv.VerificationRef, slot func(*pv.Verification) (string, pv.Limit, bool), apply func(*pv.Verification, *pv.Decision) (*pv.Update, error)) (*pv.Verification, error) {
	if l.st == nil {
		return nil, errors.New("sql limiter: slots in updates need a limiter made by NewOnStore")
	}
	var d *pv.Decision
	guard := func(q store.Querier, v *pv.Verification) error {
		d = nil // the store may run the guard again
		key, limit, ok := slot(v)
		if !ok {
			return nil
		}
		if err := pv.CheckLimit(limit); err != nil {
			return fmt.Errorf("sql limiter: %w", err)
		}
		// In the transaction a lost swap means another transaction wrote
		// the key since the read (PostgreSQL; never on SQLite, whose
		// write transactions are exclusive): read again.
		for range maxTries {
			dec, done, err := l.tryIn(q, key, limit)
			if err != nil {
				return err
			}
			if done {
				d = &dec
				return nil
			}
		}
		return fmt.Errorf("sql limiter: key still contended after %d tries", maxTries)
	}
	return l.st.UpdateVerificationGuarded(ctx, ref, guard, func(v *pv.Verification) (*pv.Update, error) {
		return apply(v, d)
	})
}

func newLimiter(run func(ctx context.Context, fn func(q store.Querier) error) error, opts Options) *Limiter {
	l := &Limiter{run: run, now: opts.Now}
	if l.now == nil {
		l.now = time.Now
	}
	return l
}

// ctxQuerier runs statements on a *sql.DB under a context.
type ctxQuerier struct {
	ctx context.Context
	db  *sql.DB
}

func (q ctxQuerier) QueryRow(query string, args ...any) *sql.Row {
	return q.db.QueryRowContext(q.ctx, query, args...)
}

func (q ctxQuerier) Exec(query string, args ...any) (sql.Result, error) {
	return q.db.ExecContext(q.ctx, query, args...)
}

// Allow implements [phoneverify.Limiter]. It returns EUnavailable when the
// database cannot be reached.
func (l *Limiter) Allow(ctx context.Context, key string, limit pv.Limit) (pv.Decision, error) {
	if err := pv.CheckLimit(limit); err != nil {
		return pv.Decision{}, fmt.Errorf("sql limiter: %w", err)
	}
	for range maxTries {
		if err := ctx.Err(); err != nil {
			return pv.Decision{}, fmt.Errorf("sql limiter: %w", err)
		}
		d, done, err := l.try(ctx, key, limit)
		if err != nil || done {
			return d, err
		}
	}
	return pv.Decision{}, fmt.Errorf("sql limiter: key still contended after %d tries", maxTries)
}

// try runs one read-decide-swap round. done is false if another event for
// the key was recorded between the read and the swap.
func (l *Limiter) try(ctx context.Context, key string, limit pv.Limit) (d pv.Decision, done bool, err error) {
	err = l.run(ctx, func(q store.Querier) error {
		d, done, err = l.tryIn(q, key, limit)
		return err
	})
	if err != nil {
		return pv.Decision{}, false, err
	}
	return d, done, nil
}

// tryIn is one read-decide-swap round on q.
func (l *Limiter) tryIn(q store.Querier, key string, limit pv.Limit) (d pv.Decision, done bool, err error) {
	err = func() error {
		var old string
		found := true
		switch err := q.QueryRow(qSelect, key).Scan(&old); {
		case errors.Is(err, sql.ErrNoRows):
			found = false
		case err != nil:
			return mapErr(err)
		}
		events, err := slidinglog.Decode(old)
		if err != nil {
			return fmt.Errorf("sql limiter: key %q: %w", key, err)
		}
		events, d = slidinglog.Decide(events, slidinglog.Millis(l.now()), limit)
		if !d.Allowed {
			done = true
			return nil
		}
		enc, expires := slidinglog.Encode(events), events[len(events)-1]+limit.Window.Milliseconds()
		var res sql.Result
		if found {
			res, err = q.Exec(qSwap, key, enc, expires, old)
		} else {
			res, err = q.Exec(qInsert, key, enc, expires)
		}
		if err != nil {
			return mapErr(err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return mapErr(err)
		}
		done = n == 1
		return nil
	}()
	if err != nil {
		return pv.Decision{}, false, err
	}
	return d, done, nil
}

// Sweep deletes the rows whose every event has left its window and returns
// how many it deleted. Run it now and then (the binary does, with the
// expiry sweep); a row left behind costs space, never correctness.
func (l *Limiter) Sweep(ctx context.Context) (int, error) {
	var n int64
	err := l.run(ctx, func(q store.Querier) error {
		res, err := q.Exec(qSweep, slidinglog.Millis(l.now()))
		if err != nil {
			return mapErr(err)
		}
		n, err = res.RowsAffected()
		return mapErr(err)
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if store.IsUnavailable(err) {
		return &pv.Error{Code: pv.EUnavailable, Message: "The database is unavailable.", Err: fmt.Errorf("sql limiter: %w", err)}
	}
	return fmt.Errorf("sql limiter: %w", err)
}
