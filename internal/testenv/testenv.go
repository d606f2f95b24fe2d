// Package testenv finds the real servers and programs tests run against
// (PostgreSQL, Redis, Chromium). Without them a test skips with a message naming the variable to
// set; when PHONEVERIFY_TEST_REQUIRE_SERVICES=1 (as .ci/run sets it) a
// missing server fails the test instead, so CI cannot pass by skipping.
package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// Variables the tests read.
const (
	PostgresVar = "PHONEVERIFY_TEST_POSTGRES_URL"
	RedisVar    = "PHONEVERIFY_TEST_REDIS_URL"
	RequireVar  = "PHONEVERIFY_TEST_REQUIRE_SERVICES"
	// ChromiumVar names a Chromium binary other than Debian's.
	ChromiumVar = "PHONEVERIFY_TEST_CHROMIUM"
)

// missing skips tb, or fails it when services are required.
func missing(tb testing.TB, variable, example string) {
	tb.Helper()
	msg := fmt.Sprintf("%s is not set; set it (e.g. %s) to run this test against a real server", variable, example)
	if os.Getenv(RequireVar) == "1" {
		tb.Fatal(msg + " (" + RequireVar + "=1 forbids skipping)")
	}
	tb.Skip(msg)
}

// PostgresURL returns the server URL tests may use, or skips.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(PostgresVar)
	if u == "" {
		missing(tb, PostgresVar, "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	}
	return u
}

// RedisURL returns the Redis URL tests may use, or skips.
func RedisURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(RedisVar)
	if u == "" {
		missing(tb, RedisVar, "redis://127.0.0.1:6379/0")
	}
	return u
}

// NewPostgresDatabase creates an empty database of its own for one test,
// drops it when the test ends, and returns its URL.
func NewPostgresDatabase(tb testing.TB) string {
	tb.Helper()
	base := PostgresURL(tb)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "pvtest_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
		}
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// Chromium returns the path of the Chromium the browser tests drive: the
// one $PHONEVERIFY_TEST_CHROMIUM names, else Debian's (/usr/bin/chromium or
// chromium on the PATH). Without one it skips tb with a message saying how
// to install it, or fails tb when PHONEVERIFY_TEST_REQUIRE_SERVICES=1.
func Chromium(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv(ChromiumVar); p != "" {
		if _, err := os.Stat(p); err != nil {
			tb.Fatalf("%s=%s: %v", ChromiumVar, p, err)
		}
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "Chromium is not installed: install Debian's package with `apt-get update && apt-get install -y chromium` " +
		"(or set " + ChromiumVar + " to a Chromium binary) to run the browser tests"
	if os.Getenv(RequireVar) == "1" {
		tb.Fatal(msg + " (" + RequireVar + "=1 forbids skipping)")
	}
	tb.Skip(msg)
	return ""
}
