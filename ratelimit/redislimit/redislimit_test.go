package redislimit_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/internal/testenv"
	"github.com/phoneverify/phoneverify/ratelimit/limitertest"
	"github.com/phoneverify/phoneverify/ratelimit/redislimit"
)

// mustClient returns a client for url, closed in tb.Cleanup.
func mustClient(tb testing.TB, url string) *redis.Client {
	tb.Helper()
	c, err := redislimit.NewClient(url, redislimit.ClientOptions{PoolSize: 8})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

func TestConformance(t *testing.T) {
	t.Parallel()
	u := testenv.RedisURL(t)
	limitertest.Run(t,
		func(t *testing.T, clock *limitertest.Clock) pv.Limiter {
			return redislimit.New(mustClient(t, u), redislimit.Options{Now: clock.Now})
		},
		// Two clients stand for two nodes.
		limitertest.WithPair(func(t *testing.T, clock *limitertest.Clock) (a, b pv.Limiter) {
			return redislimit.New(mustClient(t, u), redislimit.Options{Now: clock.Now}),
				redislimit.New(mustClient(t, u), redislimit.Options{Now: clock.Now})
		}),
	)
}

// TestServerClock runs without an injected clock: the script reads Redis's.
func TestServerClock(t *testing.T) {
	t.Parallel()
	l := redislimit.New(mustClient(t, testenv.RedisURL(t)), redislimit.Options{Prefix: "phoneverify:test:" + time.Now().Format(time.RFC3339Nano) + ":"})
	limit := pv.Limit{Max: 2, Window: time.Minute}
	for i, want := range []bool{true, true, false} {
		d, err := l.Allow(t.Context(), "k", limit)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed != want {
			t.Fatalf("event %d: Allowed = %v, want %v", i+1, d.Allowed, want)
		}
		if !want && (d.RetryAfter <= 50*time.Second || d.RetryAfter > time.Minute) {
			t.Errorf("event %d: RetryAfter = %s, want just under 1m", i+1, d.RetryAfter)
		}
	}
}

// TestUnavailable cuts the connection to Redis: the limiter answers
// EUnavailable (never allows blindly), then recovers by itself.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, u.Host)
	u.Host = proxy.Addr()
	clock := limitertest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	l := redislimit.New(mustClient(t, u.String()), redislimit.Options{Prefix: "phoneverify:test:" + time.Now().Format(time.RFC3339Nano) + ":", Now: clock.Now})
	limit := pv.Limit{Max: 5, Window: time.Minute}
	if _, err := l.Allow(t.Context(), "k", limit); err != nil {
		t.Fatalf("before the cut: %v", err)
	}
	proxy.Cut()
	for i := range 3 {
		d, err := l.Allow(t.Context(), "k", limit)
		if got, want := pv.ErrorCode(err), pv.EUnavailable; got != want {
			t.Fatalf("during the cut, call %d: code %q (%v), want %q", i+1, got, err, want)
		}
		if d.Allowed {
			t.Fatalf("during the cut, call %d: allowed, want refused", i+1)
		}
	}
	proxy.Restore()
	d, err := l.Allow(t.Context(), "k", limit)
	if err != nil {
		t.Fatalf("after the restore: %v", err)
	}
	// The cut calls recorded nothing: this is the second event.
	if got, want := d, (pv.Decision{Allowed: true, Remaining: 3}); got != want {
		t.Errorf("after the restore: got %+v, want %+v", got, want)
	}
}
