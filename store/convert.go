package store

import (
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// zeroUnixMilli is time.Time{}.UnixMilli().
const zeroUnixMilli = -62135596800000

// unixMilli returns t as stored: unix milliseconds.
func unixMilli(t time.Time) int64 { return t.UnixMilli() }

// fromUnixMilli returns a stored time in UTC; the zero time reads back as
// the zero time.
func fromUnixMilli(ms int64) time.Time {
	if ms == zeroUnixMilli {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// nullUnixMilli returns an optional time as stored: NULL or unix
// milliseconds.
func nullUnixMilli(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

// fromNullUnixMilli returns an optional stored time.
func fromNullUnixMilli(ms sql.NullInt64) *time.Time {
	if !ms.Valid {
		return nil
	}
	t := fromUnixMilli(ms.Int64)
	return &t
}

// normalTime returns t as it reads back from the store.
func normalTime(t time.Time) time.Time { return fromUnixMilli(unixMilli(t)) }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// encodeSends returns send times as stored: space-separated unix
// milliseconds.
func encodeSends(sends []time.Time) string {
	var b strings.Builder
	for i, t := range sends {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatInt(t.UnixMilli(), 10))
	}
	return b.String()
}

// decodeSends parses what encodeSends returns.
func decodeSends(s string) ([]time.Time, error) {
	if s == "" {
		return nil, nil
	}
	fields := strings.Fields(s)
	sends := make([]time.Time, 0, len(fields))
	for _, f := range fields {
		ms, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad send time in numbers row: %w", err)
		}
		sends = append(sends, fromUnixMilli(ms))
	}
	return sends, nil
}

// mustAffectOne returns ENotFound naming what if res affected no row.
func mustAffectOne(op string, res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return mapErr(op, err)
	}
	if n == 0 {
		return notFound(what)
	}
	return nil
}
