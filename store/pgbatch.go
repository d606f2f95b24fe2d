package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/phoneverify/phoneverify"
)

// pgBatcher runs the optimistic starts and updates of concurrent callers on
// PostgreSQL in shared round trips: one pipelined batch holds every
// caller's read, the engine's callbacks run, and a second batch holds every
// caller's conditional write, committed together: as one implicit
// transaction, or, when the batch counts approvals' fraud conversions, in
// an explicit BEGIN … COMMIT that holds the conversion upserts too. It is
// the PostgreSQL counterpart of SQLite's group commit.
//
// On this kind of machine a round trip costs far more than the statement it
// carries (two context switches a side, system calls, and a WAL flush per
// commit), so sharing them is what lets throughput grow with concurrency.
// Several workers take batches at once, each as many requests as are
// waiting: with few callers every request runs alone, as fast as before.
type pgBatcher struct {
	db *sql.DB
	// timeout bounds one batch (pgBatchTimeout).
	timeout time.Duration
	reqs    chan *pgReq
	quit    chan struct{}
	done    sync.WaitGroup
}

// pgBatchWorkers is how many batches may be in flight at once. Two, so that
// a batch waiting on a row lock (held by a locking-path transaction) does
// not hold up every caller; more would leave each batch fewer callers to
// share its round trips (measured: with 32 callers in flight, one worker
// gathers 15 per batch, two about 10, four about 6).
const pgBatchWorkers = 2

// pgOp is one caller's optimistic operation.
type pgOp interface {
	// rowKey names the row the operation writes; a batch holds at most
	// one operation per row.
	rowKey() string
	// queueRead adds the operation's one read statement to b.
	queueRead(b *pgx.Batch)
	// scanRead consumes that statement's result.
	scanRead(br pgx.BatchResults) error
	// plan runs the engine's callback on what was read. It returns the
	// write statement, or final if the operation ends without one (its
	// outcome then set).
	plan() (query string, args []any, final bool)
	// wrote records how many rows the write statement changed.
	wrote(n int64)
	// fail ends the operation with err.
	fail(err error)
}

type pgReq struct {
	op     pgOp
	result chan any // nil when done, or a recovered panic
}

// pgBatchTimeout bounds one batch: its two round trips, and any wait for
// row locks that locking-path transactions hold, take milliseconds.
const pgBatchTimeout = 10 * time.Second

func newPGBatcher(db *sql.DB) *pgBatcher {
	b := &pgBatcher{db: db, timeout: pgBatchTimeout, reqs: make(chan *pgReq), quit: make(chan struct{})}
	for range pgBatchWorkers {
		b.done.Add(1)
		go b.loop()
	}
	return b
}

// do runs op in a batch and returns when its outcome is set. Waiting for a
// worker honours ctx; once running, the batch completes under its own
// context, as other callers share it.
func (b *pgBatcher) do(ctx context.Context, op pgOp) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	req := &pgReq{op: op, result: make(chan any, 1)}
	select {
	case b.reqs <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.quit:
		return sql.ErrConnDone
	}
	if p := <-req.result; p != nil {
		panic(p)
	}
	return nil
}

func (b *pgBatcher) close() {
	close(b.quit)
	b.done.Wait()
}

func (b *pgBatcher) loop() {
	defer b.done.Done()
	// carry holds the requests put off to the next batch: a second
	// operation on the same row in one batch would only lose its swap to
	// the first, and retry.
	var carry []*pgReq
	for {
		batch := carry
		carry = nil
		if len(batch) == 0 {
			select {
			case <-b.quit:
				return
			case req := <-b.reqs:
				batch = []*pgReq{req}
			}
		}
	collect:
		for len(batch) < maxGroup {
			select {
			case req := <-b.reqs:
				batch = append(batch, req)
			default:
				break collect
			}
		}
		seen := make(map[string]bool, len(batch))
		run := batch[:0:0]
		for _, req := range batch {
			if k := req.op.rowKey(); seen[k] || len(run) == maxGroup {
				carry = append(carry, req)
			} else {
				seen[k] = true
				run = append(run, req)
			}
		}
		b.run(run)
	}
}

// run executes one batch and answers every caller.
func (b *pgBatcher) run(batch []*pgReq) {
	panics := make([]any, len(batch))
	defer func() {
		for i, req := range batch {
			req.result <- panics[i]
		}
	}()
	// Not the callers' contexts: they share the batch. A deadline instead,
	// so that a server that stops answering (a network partition leaves
	// no reset to notice) fails the batch rather than holding its worker.
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	failAll := func(err error) {
		for _, req := range batch {
			req.op.fail(err)
		}
	}
	conn, err := b.db.Conn(ctx)
	if err != nil {
		failAll(err)
		return
	}
	defer conn.Close()
	ran := false
	err = conn.Raw(func(dc any) error {
		ran = true
		pc := dc.(*stdlib.Conn).Conn()
		reads := &pgx.Batch{}
		for _, req := range batch {
			req.op.queueRead(reads)
		}
		br := pc.SendBatch(ctx, reads)
		for _, req := range batch {
			if err := req.op.scanRead(br); err != nil {
				req.op.fail(err)
			}
		}
		if err := br.Close(); err != nil {
			failAll(err)
			return badConn(pc)
		}

		type write struct {
			req   *pgReq
			query string
			args  []any
		}
		var writes []write
		for i, req := range batch {
			query, args, final, p := plan(req.op)
			switch {
			case p != nil:
				panics[i] = p
			case !final:
				writes = append(writes, write{req, query, args})
			}
		}
		if len(writes) == 0 {
			return nil
		}
		// One order for every batch, so that two batches touching the
		// same rows (on two nodes) rarely deadlock: by number, and for one
		// number its start before any update of its verifications — a
		// start locks the number's row and then its latest verification,
		// as the locking path does, and a batch that updated the
		// verification first would take the two the other way round.
		sort.SliceStable(writes, func(i, j int) bool {
			ni, nj := numberOf(writes[i].args), numberOf(writes[j].args)
			if ni != nj {
				return ni < nj
			}
			_, si := writes[i].req.op.(*startOp)
			_, sj := writes[j].req.op.(*startOp)
			return si && !sj
		})
		// Approvals that count a conversion need an explicit transaction:
		// their counters are added after the swaps, by the swaps that
		// won, and commit with them.
		var converts bool
		for _, w := range writes {
			if u, ok := w.req.op.(*updateOp); ok && u.conv != nil {
				converts = true
			}
		}
		wb := &pgx.Batch{}
		if converts {
			wb.Queue("BEGIN")
		}
		for _, w := range writes {
			wb.Queue(w.query, w.args...)
		}
		br = pc.SendBatch(ctx, wb)
		var werr error
		if converts {
			if _, err := br.Exec(); err != nil {
				werr = err
			}
		}
		tags := make([]int64, len(writes))
		for i := range writes {
			tag, err := br.Exec()
			if err != nil && werr == nil {
				werr = err
			}
			tags[i] = tag.RowsAffected()
		}
		if err := br.Close(); err != nil && werr == nil {
			werr = err
		}
		if werr == nil && converts {
			var convs []*updateOp
			for i, w := range writes {
				if u, ok := w.req.op.(*updateOp); ok && u.conv != nil && tags[i] == 1 {
					convs = append(convs, u)
				}
			}
			werr = commitConversions(ctx, pc, convs)
		}
		if werr != nil {
			// The transaction rolled back: nothing of this batch was
			// written.
			if converts {
				rollback(ctx, pc)
			}
			for _, w := range writes {
				w.req.op.fail(errBatchAborted{werr})
			}
			return badConn(pc)
		}
		for i, w := range writes {
			w.req.op.wrote(tags[i])
		}
		return nil
	})
	if !ran {
		failAll(err)
	}
}

// The statements that count a batch's conversions: every approval's
// prefix and country counter, summed per row, then those of the addresses
// the verifications were started from. Both lock their rows in one order
// (service, scope, key, hour; addresses after the prefix and country rows
// of every service), which CountFraud's single-statement upserts follow too
// (prefix, country, address), so that concurrent batches and starts never
// wait on each other in a cycle.
const (
	qPGBatchConversions = `INSERT INTO fraud_counts (service_id, scope, key, hour, sends, conversions)
	SELECT s, sc, k, h, 0, n FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[])
	WITH ORDINALITY AS c(s, sc, k, h, n, o) ORDER BY o` + fraudCountsConflict
	qPGBatchIPConversions = `INSERT INTO fraud_counts (service_id, scope, key, hour, sends, conversions)
	SELECT f.service_id, 'ip', f.ip, c.h, 0, COUNT(*) FROM unnest($1::text[], $2::bigint[]) AS c(id, h)
	JOIN fraud_starts f ON f.verification_id = c.id WHERE f.ip <> ''
	GROUP BY f.service_id, f.ip, c.h ORDER BY f.service_id, f.ip, c.h` + fraudCountsConflict
)

// commitConversions counts the conversions of the approvals whose swaps
// won, in the batch's open transaction, and commits it: one round trip.
// The counter rows, which every approval of a service shares, are locked
// only from here to the commit, and once per batch rather than once per
// approval. A batch uses one of the pgCountShards rows of each counter.
func commitConversions(ctx context.Context, pc *pgx.Conn, convs []*updateOp) error {
	b := &pgx.Batch{}
	if len(convs) > 0 {
		type row struct {
			svc   string
			scope int // 0 prefix, 1 country: the order counters are locked in
			key   string
			hour  int64
		}
		shard := mrand.Int64N(pgCountShards)
		counts := map[row]int64{}
		ids, hours := make([]string, 0, len(convs)), make([]int64, 0, len(convs))
		for _, u := range convs {
			hour := hourOf(u.conv.At) + shard
			for _, k := range conversionKeys(u.conv.Prefix, u.conv.Country) {
				r := row{svc: u.convService, key: k.Key, hour: hour}
				if k.Scope == phoneverify.FraudScopeCountry {
					r.scope = 1
				}
				counts[r]++
			}
			ids, hours = append(ids, u.convID), append(hours, hour)
		}
		rows := make([]row, 0, len(counts))
		for r := range counts {
			rows = append(rows, r)
		}
		sort.Slice(rows, func(i, j int) bool {
			a, b := rows[i], rows[j]
			if a.svc != b.svc {
				return a.svc < b.svc
			}
			if a.scope != b.scope {
				return a.scope < b.scope
			}
			if a.key != b.key {
				return a.key < b.key
			}
			return a.hour < b.hour
		})
		var svcs, scopes, keys []string
		var hs, ns []int64
		for _, r := range rows {
			scope := phoneverify.FraudScopePrefix
			if r.scope == 1 {
				scope = phoneverify.FraudScopeCountry
			}
			svcs, scopes, keys = append(svcs, r.svc), append(scopes, scope), append(keys, r.key)
			hs, ns = append(hs, r.hour), append(ns, counts[r])
		}
		if len(rows) > 0 {
			b.Queue(qPGBatchConversions, svcs, scopes, keys, hs, ns)
		}
		b.Queue(qPGBatchIPConversions, ids, hours)
	}
	b.Queue("COMMIT")
	return pc.SendBatch(ctx, b).Close()
}

// rollback ends the batch's failed transaction, so that the connection
// goes back to the pool outside one; if it cannot, badConn discards it.
func rollback(ctx context.Context, pc *pgx.Conn) {
	if _, err := pc.Exec(ctx, "ROLLBACK"); err != nil {
		pc.Close(ctx) //nolint:errcheck // discarded either way
	}
}

// plan calls op.plan, catching a panic of the engine's callback so that it
// is re-raised in the caller's goroutine instead of killing the worker.
func plan(op pgOp) (query string, args []any, final bool, p any) {
	defer func() {
		if r := recover(); r != nil {
			p = r
		}
	}()
	query, args, final = op.plan()
	return query, args, final, nil
}

// badConn tells database/sql to discard the connection when a failed batch
// left it closed.
func badConn(pc *pgx.Conn) error {
	if pc.IsClosed() {
		return driver.ErrBadConn
	}
	return nil
}

// numberOf returns the number (service and phone) that a write's arguments
// (verificationArgs first) name.
func numberOf(args []any) string {
	svc, _ := args[1].(string)
	phone, _ := args[2].(string)
	return svc + " " + phone
}

// errBatchAborted is a write batch that failed as a whole: the operation
// itself may have been fine, and is retried on its own. Err is the
// statement error that aborted the batch.
type errBatchAborted struct{ err error }

func (e errBatchAborted) Error() string { return "store: write batch aborted: " + e.err.Error() }
func (e errBatchAborted) Unwrap() error { return e.err }

// outcome is how an optimistic operation ended.
type outcome int

const (
	outcomeDone   outcome = iota // saved, refused by the callback, or failed
	outcomeRetry                 // another writer got there first: read again
	outcomeLocked                // the result needs the locking path
)

// optimistic is the state every operation shares.
type optimistic struct {
	op      string
	outcome outcome
	out     *phoneverify.Verification
	err     error
	done    bool
}

func (o *optimistic) finish(v *phoneverify.Verification, err error) {
	o.out, o.err, o.outcome, o.done = v, err, outcomeDone, true
}

func (o *optimistic) fail(err error) {
	if o.done {
		return
	}
	if errors.Is(err, context.DeadlineExceeded) {
		// The batch's own deadline: the database did not answer in time.
		o.finish(nil, &phoneverify.Error{Code: phoneverify.EUnavailable, Message: unavailableMessage,
			Err: fmt.Errorf("store: %s: no answer within %s: %w", o.op, pgBatchTimeout, err)})
		return
	}
	var aborted errBatchAborted
	if errors.As(err, &aborted) && !unavailable(err) {
		// Perhaps another operation's fault: try again alone.
		o.outcome, o.done = outcomeRetry, true
		return
	}
	o.finish(nil, mapErr(o.op, err))
}

// updateOp is one UpdateVerification.
type updateOp struct {
	optimistic
	ref   phoneverify.VerificationRef
	apply func(*phoneverify.Verification) (*phoneverify.Update, error)
	v     *phoneverify.Verification
	// conv is the conversion the planned write counts if its swap wins,
	// for the verification convID of service convService.
	conv                *phoneverify.FraudConversion
	convService, convID string
}

func (u *updateOp) rowKey() string {
	if u.ref.ID != "" {
		return "v " + u.ref.ServiceID + " " + u.ref.ID
	}
	return "p " + u.ref.ServiceID + " " + u.ref.Phone
}

func (u *updateOp) queueRead(b *pgx.Batch) {
	if u.ref.ID != "" {
		b.Queue(qSelectVerification, u.ref.ID, u.ref.ServiceID)
	} else {
		b.Queue(qSelectLatestByPhone, u.ref.ServiceID, u.ref.Phone)
	}
}

func (u *updateOp) scanRead(br pgx.BatchResults) error {
	v, err := scanVerification(br.QueryRow())
	switch {
	case errors.Is(err, sql.ErrNoRows), err == nil && u.ref.Phone != "" && v.To != u.ref.Phone:
		u.finish(nil, notFound("verification"))
		return nil
	case err != nil:
		return err
	}
	u.v = v
	return nil
}

func (u *updateOp) plan() (string, []any, bool) {
	if u.done {
		return "", nil, true
	}
	v := u.v
	read := normalVerification(v)
	u.conv = nil
	up, err := u.apply(v)
	if err != nil {
		u.finish(nil, err)
		return "", nil, true
	}
	if up == nil || !up.Save && up.Register == nil {
		u.finish(normalVerification(v), nil)
		return "", nil, true
	}
	if len(up.Events) > 0 {
		// Events commit with the change; the locked path writes both.
		u.outcome, u.done = outcomeLocked, true
		return "", nil, true
	}
	// Without Save the swap rewrites the verification as read: it only
	// proves it unchanged for the registry entry.
	save := read
	if up.Save {
		save = v
	}
	u.out = normalVerification(save)
	u.conv, u.convService, u.convID = up.Conversion, read.ServiceID, read.ID
	args := append(verificationArgs(save), wasArgs(read)...)
	if up.Register == nil {
		return qSwapVerification, args, false
	}
	if up.Register.Subject == "" {
		u.finish(nil, mapErr(u.op, errors.New("the registry entry has no subject")))
		return "", nil, true
	}
	r := up.Register
	return qPGSwapAndRegister, append(args, r.ServiceID, r.Subject, r.Phone, r.VerificationID, unixMilli(r.VerifiedAt)), false
}

func (u *updateOp) wrote(n int64) {
	if n == 1 {
		u.finish(u.out, nil)
		return
	}
	u.outcome, u.done = outcomeRetry, true
}

// qPGSwapAndRegister is qSwapVerification and, if it wrote, the upsert of
// the registry entry $32–$36, in one statement.
const qPGSwapAndRegister = `WITH u AS (` + qSwapVerification + ` RETURNING 1)
	INSERT INTO verified_phones (service_id, subject, phone, verification_id, verified_at)
	SELECT $32::text, $33::text, $34::text, $35::text, $36::bigint FROM u
	ON CONFLICT (service_id, subject) DO UPDATE SET phone = excluded.phone,
	verification_id = excluded.verification_id, verified_at = excluded.verified_at`
