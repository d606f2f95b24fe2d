package testenv

import (
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Clock is a settable time source, safe for concurrent use: expiry,
// leases, backoff and windows are tested by moving it, never by sleeping.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock that reads t until it is moved.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time; pass it where a func() time.Time is taken.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// ForEachDatabase runs fn as a subtest on a fresh SQLite file ("sqlite")
// and on a PostgreSQL database of its own ("postgres"; skipped, or failed
// under PHONEVERIFY_TEST_REQUIRE_SERVICES, as [NewPostgresDatabase] says),
// passing the database URL.
func ForEachDatabase(t *testing.T, fn func(t *testing.T, url string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, "sqlite:"+filepath.Join(t.TempDir(), "pv.db")) })
	t.Run("postgres", func(t *testing.T) { fn(t, NewPostgresDatabase(t)) })
}
