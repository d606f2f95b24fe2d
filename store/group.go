package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// groupCommitter runs the SQLite writes of concurrent callers in shared
// transactions: each caller's work runs in its own SAVEPOINT (so a refusal
// rolls back only that work), and every caller is answered only after the
// one COMMIT that made its work durable. SQLite has one writer at a time and
// spends much of a small transaction committing (writing WAL frames), so
// sharing the commit is what lets throughput grow with concurrency.
type groupCommitter struct {
	db    *sql.DB
	stmts *stmtCache
	reqs  chan *writeReq
	quit  chan struct{}
	done  sync.WaitGroup
}

// maxGroup bounds how many callers share one transaction, so one commit
// never holds up a caller for long.
const maxGroup = 64

type writeReq struct {
	ctx    context.Context
	op     string
	fn     func(r runner) error
	result chan writeResult
}

type writeResult struct {
	err   error
	panic any
}

func newGroupCommitter(db *sql.DB, stmts *stmtCache) *groupCommitter {
	g := &groupCommitter{db: db, stmts: stmts, reqs: make(chan *writeReq), quit: make(chan struct{})}
	g.done.Add(1)
	go g.loop()
	return g
}

// do runs fn in a shared write transaction and returns once it is committed
// (or refused). Waiting for the writer honours ctx; once fn is running it
// completes, as its statements take microseconds.
func (g *groupCommitter) do(ctx context.Context, op string, fn func(r runner) error) error {
	if err := ctx.Err(); err != nil {
		return mapErr(op, err)
	}
	req := &writeReq{ctx: context.WithoutCancel(ctx), op: op, fn: fn, result: make(chan writeResult, 1)}
	select {
	case g.reqs <- req:
	case <-ctx.Done():
		return mapErr(op, ctx.Err())
	case <-g.quit:
		return mapErr(op, sql.ErrConnDone)
	}
	res := <-req.result
	if res.panic != nil {
		panic(res.panic)
	}
	return res.err
}

// close stops the loop after the batch in progress.
func (g *groupCommitter) close() {
	close(g.quit)
	g.done.Wait()
}

func (g *groupCommitter) loop() {
	defer g.done.Done()
	batch := make([]*writeReq, 0, maxGroup)
	for {
		select {
		case <-g.quit:
			return
		case req := <-g.reqs:
			batch = append(batch[:0], req)
		}
	collect:
		for len(batch) < maxGroup {
			select {
			case req := <-g.reqs:
				batch = append(batch, req)
			default:
				break collect
			}
		}
		g.run(batch)
	}
}

// run executes one batch in one transaction and answers every caller.
func (g *groupCommitter) run(batch []*writeReq) {
	results := make([]writeResult, len(batch))
	fail := func(err error) {
		for i, req := range batch {
			results[i] = writeResult{err: mapErr(req.op, err)}
		}
	}
	defer func() {
		for i, req := range batch {
			req.result <- results[i]
		}
	}()
	ctx := context.Background()
	stmts, err := g.stmts.get(ctx)
	if err != nil {
		fail(err)
		return
	}
	tx, err := g.db.BeginTx(ctx, nil)
	if err != nil {
		fail(err)
		return
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	alone := len(batch) == 1
	committed := 0
	for i, req := range batch {
		if !alone {
			if _, err := tx.ExecContext(ctx, "SAVEPOINT pv_op"); err != nil {
				fail(fmt.Errorf("savepoint: %w", err))
				return
			}
		}
		res := call(req, runner{ctx: req.ctx, tx: tx, stmts: stmts})
		results[i] = res
		switch {
		case res.err == nil && res.panic == nil:
			committed++
			if !alone {
				if _, err := tx.ExecContext(ctx, "RELEASE pv_op"); err != nil {
					fail(fmt.Errorf("release savepoint: %w", err))
					return
				}
			}
		case alone:
			return // the deferred Rollback undoes it
		default:
			if _, err := tx.ExecContext(ctx, "ROLLBACK TO pv_op"); err != nil {
				fail(fmt.Errorf("rollback to savepoint: %w", err))
				return
			}
			if _, err := tx.ExecContext(ctx, "RELEASE pv_op"); err != nil {
				fail(fmt.Errorf("release savepoint: %w", err))
				return
			}
		}
	}
	if committed == 0 {
		return
	}
	if err := tx.Commit(); err != nil {
		// Nothing of this batch was written: every caller whose work
		// succeeded learns that it did not stick.
		for i, req := range batch {
			if results[i].err == nil && results[i].panic == nil {
				results[i] = writeResult{err: mapErr(req.op, err)}
			}
		}
	}
}

// call runs one caller's work, catching a panic so it is re-raised in the
// caller's goroutine instead of killing the writer.
func call(req *writeReq, r runner) (res writeResult) {
	defer func() {
		if p := recover(); p != nil {
			res = writeResult{panic: p}
		}
	}()
	return writeResult{err: req.fn(r)}
}
