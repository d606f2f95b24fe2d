package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/phoneverify/phoneverify"
)

// unavailableMessage is the client-safe message of every EUnavailable error.
const unavailableMessage = "The database is unavailable."

// mapErr turns a database error into the store's error contract: an
// *phoneverify.Error passes unchanged, a failure to reach the database
// becomes EUnavailable, and anything else is wrapped (internal) with op as
// context. sql.ErrNoRows is left to callers, which know what was not found.
func mapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *phoneverify.Error
	if errors.As(err, &e) {
		return err
	}
	if unavailable(err) {
		return &phoneverify.Error{Code: phoneverify.EUnavailable, Message: unavailableMessage, Err: fmt.Errorf("store: %s: %w", op, err)}
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// notFound returns an ENotFound error with a client-safe message.
func notFound(what string) error {
	return phoneverify.Errorf(phoneverify.ENotFound, "The %s was not found.", what)
}

// conflict returns an EConflict error with a client-safe message and cause.
func conflict(err error, format string, args ...any) error {
	e := phoneverify.Errorf(phoneverify.EConflict, format, args...)
	e.Err = err
	return e
}

// unavailable reports whether err means the database cannot be reached: no
// connection could be made, the connection broke, the server is shutting
// down or refuses connections, the pool is closed, or SQLite cannot open its
// file or stayed locked past its busy timeout.
func unavailable(err error) bool {
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	// database/sql does not export this error.
	if strings.Contains(err.Error(), "sql: database is closed") {
		return true
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			pe.Code == "57P01", // admin_shutdown
			pe.Code == "57P02", // crash_shutdown
			pe.Code == "57P03", // cannot_connect_now
			pe.Code == "53300": // too_many_connections
			return true
		}
		return false
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_BUSY:
			return true
		}
		return false
	}
	if pgconn.SafeToRetry(err) {
		return true
	}
	// context.DeadlineExceeded is a net.Error too, but the caller's
	// deadline is not the database's fault.
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// isUniqueViolation reports whether err is a unique or primary key
// violation.
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// isForeignKeyViolation reports whether err is a foreign key violation: in
// this schema, a reference to a service that does not exist.
func isForeignKeyViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23503"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	return false
}

// isDeadlock reports whether PostgreSQL ended err's transaction to break a
// deadlock: the transaction wrote nothing and may simply run again.
func isDeadlock(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "40P01"
}
