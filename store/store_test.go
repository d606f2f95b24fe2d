package store_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"github.com/phoneverify/phoneverify/internal/testenv"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/store"
	"github.com/phoneverify/phoneverify/store/storetest"
)

// MustOpen opens url and closes the store in tb.Cleanup.
func MustOpen(tb testing.TB, url string, opts store.Options) *store.Store {
	tb.Helper()
	s, err := store.Open(tb.Context(), url, opts)
	if err != nil {
		tb.Fatalf("Open = %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close = %v", err)
		}
	})
	return s
}

// MustOpenMigrated opens url, migrates it and closes it in tb.Cleanup.
func MustOpenMigrated(tb testing.TB, url string, opts store.Options) *store.Store {
	tb.Helper()
	s := MustOpen(tb, url, opts)
	if err := s.Migrate(tb.Context()); err != nil {
		tb.Fatalf("Migrate = %v", err)
	}
	return s
}

// SQLiteURL returns the URL of a new SQLite file in tb.TempDir().
func SQLiteURL(tb testing.TB) string {
	return "sqlite://" + filepath.Join(tb.TempDir(), "phoneverify.db")
}

// PostgresURL returns the URL of a new, empty PostgreSQL database that is
// dropped in tb.Cleanup, or skips tb (fails it in CI) without a server.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	return testenv.NewPostgresDatabase(tb)
}

// testOptions keeps the PostgreSQL pools small, so that parallel tests stay
// far below the server's connection limit.
var testOptions = store.Options{MaxOpenConns: 8}

func TestSQLite(t *testing.T) {
	t.Parallel()
	storetest.Run(t,
		func(t *testing.T) phoneverify.Store {
			return MustOpenMigrated(t, SQLiteURL(t), testOptions)
		},
		storetest.WithPair(func(t *testing.T) (a, b phoneverify.Store) {
			// Two stores on one file stand for two processes.
			url := SQLiteURL(t)
			return MustOpenMigrated(t, url, testOptions), MustOpenMigrated(t, url, testOptions)
		}),
	)
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	PostgresURL(t) // skips early without a server
	storetest.Run(t,
		func(t *testing.T) phoneverify.Store {
			return MustOpenMigrated(t, PostgresURL(t), testOptions)
		},
		storetest.WithPair(func(t *testing.T) (a, b phoneverify.Store) {
			url := PostgresURL(t)
			return MustOpenMigrated(t, url, testOptions), MustOpenMigrated(t, url, testOptions)
		}),
	)
}

func TestDialect(t *testing.T) {
	t.Parallel()
	for _, d := range dialects() {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			if got := MustOpen(t, d.url(t), store.Options{}).Dialect(); got != d.name {
				t.Errorf("Dialect() = %q, want %q", got, d.name)
			}
		})
	}
}

func TestSQLiteFileMode(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "private.db")
	s := MustOpenMigrated(t, "sqlite:"+path, store.Options{})
	// A write makes SQLite create the -wal and -shm files.
	svc := phoneverify.NewService("mode")
	svc.ID = "svc"
	if err := s.CreateService(t.Context(), svc); err != nil {
		t.Fatalf("CreateService = %v", err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("Stat(%s) = %v", filepath.Base(p), err)
			continue
		}
		if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
			t.Errorf("mode of %s = %v, want %v", filepath.Base(p), got, want)
		}
	}
}

func TestOpenBareSQLitePath(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bare.db")
	s := MustOpenMigrated(t, path, store.Options{})
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping = %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("Stat = %v, want the file created", err)
	}
}

func TestOpenRejects(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name, url string
	}{
		{"empty", ""},
		{"unknown scheme", "mysql://root@localhost/db"},
		{"memory", "sqlite::memory:"},
		{"query string", "sqlite://" + filepath.Join(dir, "x.db") + "?mode=ro"},
		{"missing directory", filepath.Join(dir, "no", "such", "dir.db")},
		{"bad postgres url", "postgres://%zz"},
	}
	for _, tt := range tests {
		if s, err := store.Open(t.Context(), tt.url, store.Options{}); err == nil {
			s.Close()
			t.Errorf("Open(%s) = nil error, want an error", tt.name)
		}
	}
}

// dialects names the URL makers of both dialects, for tests that run on
// each.
func dialects() []struct {
	name string
	url  func(testing.TB) string
} {
	return []struct {
		name string
		url  func(testing.TB) string
	}{{store.DialectSQLite, SQLiteURL}, {store.DialectPostgres, PostgresURL}}
}

func TestMigrateTwice(t *testing.T) {
	t.Parallel()
	for _, d := range dialects() {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			s := MustOpenMigrated(t, d.url(t), store.Options{})
			if err := s.Migrate(t.Context()); err != nil {
				t.Errorf("second Migrate = %v, want nil", err)
			}
		})
	}
}

func TestClosedStore(t *testing.T) {
	t.Parallel()
	for _, d := range dialects() {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			s := MustOpenMigrated(t, d.url(t), store.Options{})
			if err := s.Close(); err != nil {
				t.Fatalf("Close = %v", err)
			}
			if err := s.Close(); err != nil {
				t.Errorf("second Close = %v, want nil", err)
			}
			if got := phoneverify.ErrorCode(s.Ping(t.Context())); got != phoneverify.EUnavailable {
				t.Errorf("Ping after Close: code %q, want %q", got, phoneverify.EUnavailable)
			}
			_, err := s.Service(t.Context(), "x")
			if got := phoneverify.ErrorCode(err); got != phoneverify.EUnavailable {
				t.Errorf("Service after Close: code %q (%v), want %q", got, err, phoneverify.EUnavailable)
			}
		})
	}
}

func TestPostgresConcurrentMigrate(t *testing.T) {
	t.Parallel()
	url := PostgresURL(t)
	const nodes = 4
	stores := make([]*store.Store, nodes)
	for i := range stores {
		stores[i] = MustOpen(t, url, store.Options{MaxOpenConns: 2})
	}
	var wg sync.WaitGroup
	errs := make([]error, nodes)
	for i, s := range stores {
		wg.Go(func() { errs[i] = s.Migrate(t.Context()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: Migrate = %v", i, err)
		}
	}
	rows, err := stores[0].DB().QueryContext(t.Context(),
		`SELECT version_id, COUNT(*) FROM phoneverify_migrations GROUP BY version_id ORDER BY version_id`)
	if err != nil {
		t.Fatalf("read migration versions: %v", err)
	}
	defer rows.Close()
	var versions []int64
	for rows.Next() {
		var version, n int64
		if err := rows.Scan(&version, &n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("version %d applied %d times, want once", version, n)
		}
		versions = append(versions, version)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(versions) < 2 || versions[0] != 0 {
		t.Errorf("recorded versions = %v, want 0 then the migrations", versions)
	}
}

// TestPostgresUnreachable checks that a server that does not answer reads as
// EUnavailable, quickly, from every kind of call.
func TestPostgresUnreachable(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	// Nothing listens on port 1.
	s := MustOpen(t, "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2", store.Options{})
	key := phoneverify.NumberKey{ServiceID: "s", Phone: "+9779800000001"}
	calls := []struct {
		name string
		call func() error
	}{
		{"Ping", func() error { return s.Ping(ctx) }},
		{"Service", func() error { _, err := s.Service(ctx, "s"); return err }},
		{"Services", func() error { _, err := s.Services(ctx); return err }},
		{"StartVerification", func() error {
			_, err := s.StartVerification(ctx, key, func(*phoneverify.StartState) (*phoneverify.StartResult, error) {
				return nil, fmt.Errorf("decide must not run")
			})
			return err
		}},
		{"ExpireVerifications", func() error { _, err := s.ExpireVerifications(ctx, time.Now()); return err }},
		{"Migrate", func() error { return s.Migrate(ctx) }},
	}
	for _, c := range calls {
		err := c.call()
		if got := phoneverify.ErrorCode(err); got != phoneverify.EUnavailable {
			t.Errorf("%s: code %q (%v), want %q", c.name, got, err, phoneverify.EUnavailable)
		}
		if got, want := phoneverify.ErrorMessage(err), "The database is unavailable."; got != want {
			t.Errorf("%s: message %q, want %q", c.name, got, want)
		}
	}
}

// benchParallelism times GOMAXPROCS is the number of concurrent callers in
// the benchmarks, as a server has many requests in flight: PostgreSQL needs
// them to overlap network round trips and commit flushes, SQLite queues them
// on its writer.
const benchParallelism = 8

// benchStores returns the stores to benchmark: SQLite always, PostgreSQL
// when PHONEVERIFY_TEST_POSTGRES_URL is set.
func benchStores(b *testing.B) []struct {
	name string
	url  func(testing.TB) string
} {
	stores := dialects()
	if os.Getenv(testenv.PostgresVar) == "" {
		stores = stores[:1]
	}
	return stores
}

func benchService(b *testing.B, s *store.Store) *phoneverify.Service {
	b.Helper()
	svc := phoneverify.NewService("bench")
	svc.ID = "bench"
	if err := s.CreateService(b.Context(), svc); err != nil {
		b.Fatalf("CreateService = %v", err)
	}
	return svc
}

func benchVerification(svc *phoneverify.Service, phone string, now time.Time) *phoneverify.Verification {
	return &phoneverify.Verification{
		ID: rand.Text(), ServiceID: svc.ID, To: phone, Country: "US", Channel: phoneverify.ChannelSMS,
		Status: phoneverify.StatusPending, SendCount: 1, MaxAttempts: 1 << 30, CodeHash: make([]byte, 32),
		ExpiresAt: now.Add(svc.CodeTTL), CreatedAt: now, UpdatedAt: now,
	}
}

// BenchmarkStartVerification measures start transactions: "new" starts for
// numbers never seen (an insert), "resend" restarts among 1000 numbers (an
// update once each number is pending).
func BenchmarkStartVerification(b *testing.B) {
	for _, bs := range benchStores(b) {
		for _, mode := range []string{"new", "resend"} {
			b.Run(bs.name+"/"+mode, func(b *testing.B) {
				s := MustOpenMigrated(b, bs.url(b), store.Options{})
				svc := benchService(b, s)
				now := time.Now()
				var n atomic.Int64
				b.SetParallelism(benchParallelism)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := n.Add(1)
						if mode == "resend" {
							i %= 1000
						}
						phone := fmt.Sprintf("+1555%07d", i)
						_, err := s.StartVerification(b.Context(), phoneverify.NumberKey{ServiceID: svc.ID, Phone: phone},
							func(st *phoneverify.StartState) (*phoneverify.StartResult, error) {
								sends := append(st.Sends, now)
								if len(sends) > 5 {
									sends = sends[len(sends)-5:]
								}
								if st.Latest == nil || st.Latest.Status != phoneverify.StatusPending {
									return &phoneverify.StartResult{Save: benchVerification(svc, phone, now), Sends: sends}, nil
								}
								v := *st.Latest
								v.SendCount++
								return &phoneverify.StartResult{Save: &v, Sends: sends}, nil
							})
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// BenchmarkUpdateVerification measures check transactions: lock one of 1000
// verifications by id, count an attempt, save.
func BenchmarkUpdateVerification(b *testing.B) {
	for _, bs := range benchStores(b) {
		b.Run(bs.name, func(b *testing.B) {
			s := MustOpenMigrated(b, bs.url(b), store.Options{})
			svc := benchService(b, s)
			now := time.Now()
			ids := make([]string, 1000)
			for i := range ids {
				v := benchVerification(svc, fmt.Sprintf("+1555%07d", i), now)
				_, err := s.StartVerification(b.Context(), phoneverify.NumberKey{ServiceID: svc.ID, Phone: v.To},
					func(*phoneverify.StartState) (*phoneverify.StartResult, error) {
						return &phoneverify.StartResult{Save: v, Sends: []time.Time{now}}, nil
					})
				if err != nil {
					b.Fatal(err)
				}
				ids[i] = v.ID
			}
			var n atomic.Int64
			b.SetParallelism(benchParallelism)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := ids[n.Add(1)%int64(len(ids))]
					_, err := s.UpdateVerification(b.Context(), phoneverify.VerificationRef{ServiceID: svc.ID, ID: id},
						func(v *phoneverify.Verification) (*phoneverify.Update, error) {
							v.Attempts++
							v.UpdatedAt = now
							return &phoneverify.Update{Save: true}, nil
						})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
