package sqllimit_test

import (
	"path/filepath"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/internal/testenv"
	"github.com/phoneverify/phoneverify/ratelimit/limitertest"
	"github.com/phoneverify/phoneverify/ratelimit/sqllimit"
	"github.com/phoneverify/phoneverify/store"
)

// mustStore opens and migrates url, closed in tb.Cleanup.
func mustStore(tb testing.TB, url string) *store.Store {
	tb.Helper()
	st, err := store.Open(tb.Context(), url, store.Options{MaxOpenConns: 8})
	if err != nil {
		tb.Fatalf("Open = %v", err)
	}
	tb.Cleanup(func() { st.Close() })
	if err := st.Migrate(tb.Context()); err != nil {
		tb.Fatalf("Migrate = %v", err)
	}
	return st
}

func sqliteURL(tb testing.TB) string {
	return "sqlite:" + filepath.Join(tb.TempDir(), "phoneverify.db")
}

func TestConformance(t *testing.T) {
	t.Parallel()
	dialects := []struct {
		name string
		url  func(tb testing.TB) string
	}{
		{"SQLite", sqliteURL},
		{"Postgres", testenv.NewPostgresDatabase},
	}
	// New runs each statement on its own; NewOnStore runs them through
	// the store (on SQLite inside its group commit).
	constructors := []struct {
		name string
		make func(st *store.Store, opts sqllimit.Options) *sqllimit.Limiter
	}{
		{"DB", func(st *store.Store, opts sqllimit.Options) *sqllimit.Limiter { return sqllimit.New(st.DB(), opts) }},
		{"Store", sqllimit.NewOnStore},
	}
	for _, d := range dialects {
		for _, c := range constructors {
			t.Run(d.name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				limitertest.Run(t,
					func(t *testing.T, clock *limitertest.Clock) pv.Limiter {
						return c.make(mustStore(t, d.url(t)), sqllimit.Options{Now: clock.Now})
					},
					// Two stores on one database stand for two nodes.
					limitertest.WithPair(func(t *testing.T, clock *limitertest.Clock) (a, b pv.Limiter) {
						url := d.url(t)
						a = c.make(mustStore(t, url), sqllimit.Options{Now: clock.Now})
						b = c.make(mustStore(t, url), sqllimit.Options{Now: clock.Now})
						return a, b
					}),
				)
			})
		}
	}
}

func TestSweep(t *testing.T) {
	t.Parallel()
	clock := limitertest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	l := sqllimit.NewOnStore(mustStore(t, sqliteURL(t)), sqllimit.Options{Now: clock.Now})
	short, long := pv.Limit{Max: 2, Window: time.Minute}, pv.Limit{Max: 2, Window: time.Hour}
	for _, key := range []string{"a", "b"} {
		if _, err := l.Allow(t.Context(), key, short); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Allow(t.Context(), "c", long); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	n, err := l.Sweep(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := n, 2; got != want {
		t.Errorf("Sweep() = %d, want %d", got, want)
	}
	// The long key kept its event.
	d, err := l.Allow(t.Context(), "c", long)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := d, (pv.Decision{Allowed: true, Remaining: 0}); got != want {
		t.Errorf("Allow(c) after sweep = %+v, want %+v", got, want)
	}
}
