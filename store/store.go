// Package store implements [phoneverify.Store], [phoneverify.Outbox] and
// [phoneverify.EventStore] on SQLite and on PostgreSQL over database/sql.
//
// Open a store with a URL ("sqlite:verify.db", "postgres://…"), call
// [Store.Migrate] once, and hand it to the engine (verify.New) or to
// server.New when embedding phoneverify:
//
//	st, err := store.Open(ctx, "sqlite:verify.db", store.Options{})
//	if err != nil { … }
//	defer st.Close()
//	if err := st.Migrate(ctx); err != nil { … }
//
// Every state change and the events it fires ([phoneverify.StartResult]
// Events, [phoneverify.Update] Events) commit in one transaction.
//
// The SQL is written once, in the subset both databases share: $N
// parameters, INSERT … ON CONFLICT … DO UPDATE … RETURNING, times as BIGINT
// unix milliseconds (UTC), durations as BIGINT milliseconds and booleans as
// INTEGER 0/1. Only the schema (store/migrations/<dialect>) and the
// " FOR UPDATE" suffix of locking reads differ: PostgreSQL needs row locks,
// while on SQLite every write transaction is BEGIN IMMEDIATE and so already
// serialised.
//
// On SQLite the store keeps two pools: a writer with a single connection, so
// that writers queue in Go rather than in SQLite's busy handler, and a
// read-only pool for plain reads. The hot statements are prepared once on
// each pool. On PostgreSQL one pool serves both, and pgx caches prepared
// statements per connection by itself.
//
// On PostgreSQL, starts and updates are optimistic first: one statement
// reads what the engine's callback needs, the callback decides, and one
// statement writes the decision only if what was read is unchanged (else
// the callback runs again on a fresh read; after two lost races the store
// falls back to row locks in a transaction). The reads and writes of
// concurrent callers travel in shared pipelined batches, each batch's writes
// committed together (pgBatcher): two round trips and a share of one commit
// per operation, where the locking path takes four to seven and a commit.
//
// The decide and apply callbacks of [Store.StartVerification] and
// [Store.UpdateVerification] run inside the write transaction or batch,
// holding the SQLite writer connection, PostgreSQL row locks or a batch
// that other callers share: they must not call the store, and should not
// wait on anything slow. They may run more than once.
//
// [Open] never changes the schema: call [Store.Migrate] for that.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/phoneverify/phoneverify"
)

// Dialect names, as returned by [Store.Dialect].
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// Defaults used where [Options] leaves a field zero.
const (
	// DefaultPostgresMaxOpenConns is the default size of the PostgreSQL pool.
	DefaultPostgresMaxOpenConns = 20
	// DefaultConnMaxLifetime is the default lifetime of a PostgreSQL
	// connection, so that connections move to a restarted or failed-over
	// server in time.
	DefaultConnMaxLifetime = 30 * time.Minute
	// DefaultConnectTimeout bounds a PostgreSQL connection attempt when the
	// URL sets no connect_timeout, so an unreachable server fails fast
	// instead of hanging a request.
	DefaultConnectTimeout = 5 * time.Second
)

// sqliteBusyTimeout is how long a SQLite connection waits for a lock held by
// another process (another Store on the same file, a backup).
const sqliteBusyTimeout = 5 * time.Second

// Options tunes the connection pools. A zero field selects its default.
type Options struct {
	// MaxOpenConns caps the open connections of the PostgreSQL pool (default
	// 20) or of the SQLite reader pool (default GOMAXPROCS, at least 4). The
	// SQLite writer pool always has exactly one connection.
	MaxOpenConns int
	// MaxIdleConns caps the idle connections kept open (default
	// MaxOpenConns).
	MaxIdleConns int
	// ConnMaxLifetime is how long a connection may be reused: default 30
	// minutes on PostgreSQL and unlimited for the SQLite reader pool. The
	// SQLite writer connection is never recycled, so that its prepared
	// statements stay valid.
	ConnMaxLifetime time.Duration
	// CheckpointInterval is how often a SQLite store copies its WAL into
	// the database file in the background (default
	// [DefaultCheckpointInterval]; negative: never, leaving it to the
	// writer past 16,384 pages). PostgreSQL ignores it.
	CheckpointInterval time.Duration
}

// Store is a [phoneverify.Store] on SQLite or PostgreSQL. It is safe for
// concurrent use. Create one with [Open] and release it with [Store.Close].
type Store struct {
	dialect string
	// db is the writer pool, and the only pool on PostgreSQL.
	db *sql.DB
	// rdb serves plain reads: a read-only pool on SQLite, db on PostgreSQL.
	rdb *sql.DB
	// wstmts and rstmts hold the statements prepared once on db and rdb;
	// both are nil on PostgreSQL.
	wstmts, rstmts *stmtCache
	// group shares commits among concurrent writers on SQLite; nil on
	// PostgreSQL, whose writers run in parallel.
	group *groupCommitter
	// ckpt checkpoints the SQLite WAL in the background; nil on
	// PostgreSQL.
	ckpt *walCheckpointer
	// batch shares the round trips and commits of optimistic starts and
	// updates on PostgreSQL; nil on SQLite.
	batch *pgBatcher
	// q holds the query texts that differ per dialect.
	q dialectQueries

	closeOnce sync.Once
	closeErr  error
}

var _ phoneverify.Store = (*Store)(nil)

// Open opens the database named by url without touching its schema; call
// [Store.Migrate] before first use. It accepts:
//
//   - postgres://… or postgresql://… for PostgreSQL (any URL pgx accepts);
//   - sqlite:///abs/path.db, sqlite://rel/path.db, sqlite:rel.db or a bare
//     file path such as phoneverify.db for SQLite.
//
// A SQLite file that does not exist yet is created with mode 0600 (SQLite
// gives its -wal and -shm files the same mode). Open checks that a SQLite
// file can be opened; it does not connect to PostgreSQL, so a server that is
// down shows as EUnavailable from [Store.Ping] and later calls.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	dialect, target, err := parseURL(url)
	if err != nil {
		return nil, err
	}
	if dialect == DialectPostgres {
		return openPostgres(target, opts)
	}
	return openSQLite(ctx, target, opts)
}

// CheckURL reports whether Open would accept url's form (sqlite:PATH,
// sqlite:///ABS/PATH, postgres://…), without connecting: for validating a
// configuration.
func CheckURL(url string) error {
	_, _, err := parseURL(url)
	return err
}

// parseURL returns the dialect named by url and what to open: the URL itself
// for PostgreSQL, the file path for SQLite.
func parseURL(url string) (dialect, target string, err error) {
	lower := strings.ToLower(url)
	var path string
	switch {
	case url == "":
		return "", "", errors.New("store: empty database URL")
	case strings.HasPrefix(lower, "postgres://"), strings.HasPrefix(lower, "postgresql://"):
		return DialectPostgres, url, nil
	case strings.HasPrefix(lower, "sqlite://"):
		path = url[len("sqlite://"):]
	case strings.HasPrefix(lower, "sqlite:"):
		path = url[len("sqlite:"):]
	case strings.Contains(url, "://"):
		scheme, _, _ := strings.Cut(url, "://")
		return "", "", fmt.Errorf("store: unsupported database URL scheme %q (want postgres://, postgresql:// or sqlite:)", scheme)
	default:
		path = url
	}
	switch {
	case path == "":
		return "", "", errors.New("store: the SQLite URL names no file")
	case path == ":memory:" || strings.HasPrefix(path, "file:") || strings.ContainsAny(path, "?#"):
		// Two pools on one in-memory database would see two databases, and
		// the driver would read a query string as its own parameters.
		return "", "", errors.New("store: the SQLite URL must name a plain file path (no :memory:, file: URI or query string)")
	}
	return DialectSQLite, path, nil
}

func openSQLite(ctx context.Context, path string, opts Options) (*Store, error) {
	if err := createPrivateFile(path); err != nil {
		return nil, err
	}
	busy := fmt.Sprintf("_pragma=busy_timeout(%d)", sqliteBusyTimeout.Milliseconds())
	// WAL lets readers run beside the writer; synchronous=NORMAL is durable
	// in WAL mode except for the last commits on power loss. _txlock makes
	// every transaction BEGIN IMMEDIATE: it takes the write lock up front,
	// so a transaction that reads then writes never fails to upgrade.
	// temp_store=MEMORY keeps the statement journal, which every group
	// commit's savepoints fill, out of a temporary file: it was a tenth of
	// a start's time in write system calls. The WAL is checkpointed by a
	// connection of its own (see walCheckpointer), so the writer's
	// threshold is raised from SQLite's 1,000 pages.
	wdsn := path + "?" + busy + "&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=temp_store(MEMORY)&_pragma=foreign_keys(1)" +
		fmt.Sprintf("&_pragma=wal_autocheckpoint(%d)", writerAutoCheckpoint) + "&_txlock=immediate"
	rdsn := path + "?" + busy + "&_pragma=foreign_keys(1)&_pragma=query_only(1)"

	w, err := sql.Open("sqlite", wdsn)
	if err != nil {
		return nil, fmt.Errorf("store: open SQLite writer: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	// The writer connection switches the file to WAL before any reader opens.
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, mapErr("open SQLite database", err)
	}

	r, err := sql.Open("sqlite", rdsn)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open SQLite reader: %w", err)
	}
	maxOpen := opts.MaxOpenConns
	if maxOpen <= 0 {
		maxOpen = max(4, runtime.GOMAXPROCS(0))
	}
	r.SetMaxOpenConns(maxOpen)
	r.SetMaxIdleConns(cmpOr(opts.MaxIdleConns, maxOpen))
	r.SetConnMaxLifetime(opts.ConnMaxLifetime)

	interval := opts.CheckpointInterval
	if interval == 0 {
		interval = DefaultCheckpointInterval
	}
	ckpt, err := startCheckpointer(ctx, path+"?"+busy+"&_pragma=synchronous(NORMAL)", interval)
	if err != nil {
		r.Close()
		w.Close()
		return nil, err
	}

	wstmts := newStmtCache(w, writeQueries())
	return &Store{
		dialect: DialectSQLite,
		db:      w,
		rdb:     r,
		ckpt:    ckpt,
		wstmts:  wstmts,
		rstmts:  newStmtCache(r, readQueries()),
		group:   newGroupCommitter(w, wstmts),
		q:       newDialectQueries(DialectSQLite),
	}, nil
}

// createPrivateFile creates the database file with mode 0600 if it does not
// exist, so that SQLite (which would use 0644) never creates it.
func createPrivateFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: create database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("store: create database file: %w", err)
	}
	return nil
}

func openPostgres(url string, opts Options) (*Store, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		// The URL may hold a password that pgx could not redact: keep only
		// the reason.
		var pce *pgconn.ParseConfigError
		if errors.As(err, &pce) && pce.Unwrap() != nil {
			return nil, fmt.Errorf("store: invalid PostgreSQL URL: %w", pce.Unwrap())
		}
		return nil, errors.New("store: invalid PostgreSQL URL")
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	db := stdlib.OpenDB(*cfg)
	maxOpen := cmpOr(opts.MaxOpenConns, DefaultPostgresMaxOpenConns)
	db.SetMaxOpenConns(maxOpen)
	db.SetMaxIdleConns(cmpOr(opts.MaxIdleConns, maxOpen))
	db.SetConnMaxLifetime(cmpOr(opts.ConnMaxLifetime, DefaultConnMaxLifetime))
	return &Store{
		dialect: DialectPostgres,
		db:      db,
		rdb:     db,
		batch:   newPGBatcher(db),
		q:       newDialectQueries(DialectPostgres),
	}, nil
}

// cmpOr returns v if it is positive, else def.
func cmpOr[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// Dialect returns [DialectSQLite] or [DialectPostgres].
func (s *Store) Dialect() string { return s.dialect }

// DB returns the writer pool, for adapters that keep their own tables in the
// same database (rate limiter, outbox). On SQLite it has a single
// connection: a caller must not hold it (in a transaction or a *sql.Conn)
// while calling a method of s, or both wait for each other.
func (s *Store) DB() *sql.DB { return s.db }

// ReadDB returns the pool plain reads go to: on SQLite a pool of read-only
// connections beside the single writer, on PostgreSQL the same pool as
// [Store.DB]. Metrics report its statistics.
func (s *Store) ReadDB() *sql.DB { return s.rdb }

// Ping reports whether the database answers. It returns EUnavailable if not.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return mapErr("ping", err)
	}
	if s.rdb != s.db {
		if err := s.rdb.PingContext(ctx); err != nil {
			return mapErr("ping", err)
		}
	}
	return nil
}

// Close releases the store's connections. Calling it again does nothing.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.group != nil {
			s.group.close()
		}
		if s.batch != nil {
			s.batch.close()
		}
		var errs []error
		if s.ckpt != nil {
			errs = append(errs, s.ckpt.close())
		}
		if s.wstmts != nil {
			errs = append(errs, s.wstmts.close(), s.rstmts.close())
		}
		if s.rdb != s.db {
			errs = append(errs, s.rdb.Close())
		}
		errs = append(errs, s.db.Close())
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("store: close: %w", err)
		}
	})
	return s.closeErr
}

// withTx runs fn in a write transaction and commits if fn returns nil. fn
// returns database errors already mapped, and the errors of the engine's
// callbacks unchanged; withTx returns them as they are.
func (s *Store) withTx(ctx context.Context, op string, fn func(r runner) error) error {
	if s.group != nil {
		return s.group.do(ctx, op, fn)
	}
	if s.wstmts == nil {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return mapErr(op, err)
		}
		return runTx(ctx, op, tx, nil, fn)
	}

	// Prepared before taking the connection: the single writer connection
	// is busy inside the transaction.
	stmts, err := s.wstmts.get(ctx)
	if err != nil {
		return mapErr(op, err)
	}
	// Waiting for the writer honours ctx. The transaction itself runs under
	// a context that is never canceled: its statements take microseconds,
	// and a cancelable one costs a goroutine per statement in the driver
	// (and per transaction in database/sql), a good part of a transaction's
	// time.
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return mapErr(op, err)
	}
	defer conn.Close()
	ctx = context.WithoutCancel(ctx)
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return mapErr(op, err)
	}
	return runTx(ctx, op, tx, stmts, fn)
}

// runTx runs fn in tx and commits if fn returns nil.
func runTx(ctx context.Context, op string, tx *sql.Tx, stmts map[string]*sql.Stmt, fn func(r runner) error) error {
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := fn(runner{ctx: ctx, tx: tx, stmts: stmts}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return mapErr(op, err)
	}
	return nil
}

// reader returns a runner for plain reads outside a transaction.
func (s *Store) reader(ctx context.Context) (runner, error) {
	r := runner{ctx: ctx, db: s.rdb}
	if s.rstmts != nil {
		var err error
		if r.stmts, err = s.rstmts.get(ctx); err != nil {
			return r, err
		}
	}
	return r, nil
}

// runner runs the statements of one method: in a transaction (tx) or on a
// pool (db), through statements prepared once where there are any.
type runner struct {
	ctx   context.Context
	tx    *sql.Tx
	db    *sql.DB
	stmts map[string]*sql.Stmt
}

func (r runner) stmt(query string) *sql.Stmt {
	st := r.stmts[query]
	if st != nil && r.tx != nil {
		st = r.tx.StmtContext(r.ctx, st)
	}
	return st
}

func (r runner) exec(query string, args ...any) (sql.Result, error) {
	if st := r.stmt(query); st != nil {
		return st.ExecContext(r.ctx, args...)
	}
	if r.tx != nil {
		return r.tx.ExecContext(r.ctx, query, args...)
	}
	return r.db.ExecContext(r.ctx, query, args...)
}

func (r runner) queryRow(query string, args ...any) *sql.Row {
	if st := r.stmt(query); st != nil {
		return st.QueryRowContext(r.ctx, args...)
	}
	if r.tx != nil {
		return r.tx.QueryRowContext(r.ctx, query, args...)
	}
	return r.db.QueryRowContext(r.ctx, query, args...)
}

func (r runner) query(query string, args ...any) (*sql.Rows, error) {
	if st := r.stmt(query); st != nil {
		return st.QueryContext(r.ctx, args...)
	}
	if r.tx != nil {
		return r.tx.QueryContext(r.ctx, query, args...)
	}
	return r.db.QueryContext(r.ctx, query, args...)
}

// stmtCache prepares a fixed list of queries on a pool the first time they
// are needed (after migration, when the tables exist) and keeps them.
//
// database/sql with the SQLite driver would otherwise compile each statement
// on every call. With one writer connection the statements stay prepared on
// it; on the reader pool database/sql prepares them once per connection.
type stmtCache struct {
	db      *sql.DB
	queries []string

	mu    sync.Mutex // held while preparing
	ready atomic.Pointer[map[string]*sql.Stmt]
}

func newStmtCache(db *sql.DB, queries []string) *stmtCache {
	return &stmtCache{db: db, queries: queries}
}

// get returns the prepared statements by query text. If preparing fails (the
// schema is missing, say) it returns the error and tries again next time.
func (c *stmtCache) get(ctx context.Context) (map[string]*sql.Stmt, error) {
	if m := c.ready.Load(); m != nil {
		return *m, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.ready.Load(); m != nil {
		return *m, nil
	}
	stmts := make(map[string]*sql.Stmt, len(c.queries))
	for _, q := range c.queries {
		st, err := c.db.PrepareContext(ctx, q)
		if err != nil {
			for _, st := range stmts {
				st.Close()
			}
			return nil, fmt.Errorf("prepare: %w", err)
		}
		stmts[q] = st
	}
	c.ready.Store(&stmts)
	return stmts, nil
}

func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.ready.Swap(nil)
	if m == nil {
		return nil
	}
	var errs []error
	for _, st := range *m {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// SQLitePath returns the file a SQLite database URL names, and false for a
// PostgreSQL or malformed URL. The binary keeps its generated secret beside
// that file.
func SQLitePath(url string) (string, bool) {
	dialect, path, err := parseURL(url)
	if err != nil || dialect != DialectSQLite {
		return "", false
	}
	return path, true
}

// IsUnavailable reports whether err means that the database cannot be
// reached (see the EUnavailable contract of [phoneverify.Store]), for
// adapters that run their own SQL on [Store.DB].
func IsUnavailable(err error) bool {
	return err != nil && unavailable(err)
}
