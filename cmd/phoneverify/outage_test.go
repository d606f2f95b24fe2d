package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phoneverify/phoneverify/internal/testenv"
)

// TestOutages runs a node on PostgreSQL and Redis through loopback proxies,
// cuts each, and checks that requests during the cut are answered 503
// unavailable (never 500, never a dropped connection), that /readyz names
// what is down, and that the node recovers by itself once it is back.
func TestOutages(t *testing.T) {
	t.Parallel()
	pgURL, err := url.Parse(testenv.NewPostgresDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	redisURL, err := url.Parse(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	pgProxy := testenv.NewProxy(t, pgURL.Host)
	pgURL.Host = pgProxy.Addr()
	redisProxy := testenv.NewProxy(t, redisURL.Host)
	redisURL.Host = redisProxy.Addr()

	in := &inbox{codes: map[string]string{}}
	m := startMain(t, mustConfig(t, map[string]string{
		"PHONEVERIFY_ADDR":              "127.0.0.1:0",
		"PHONEVERIFY_DATABASE_URL":      pgURL.String(),
		"PHONEVERIFY_REDIS_URL":         redisURL.String(),
		"PHONEVERIFY_SECRET":            testSecret,
		"PHONEVERIFY_API_KEY":           testAPIKey,
		"PHONEVERIFY_DEFAULT_REGION":    "NP",
		"PHONEVERIFY_DB_MAX_OPEN_CONNS": "4",
	}), in)
	client := &http.Client{Timeout: 20 * time.Second}
	addr := m.Addr()

	// seq numbers the phones, so that no number hits its send limit.
	seq := 0
	startAndCheck := func(t *testing.T) {
		t.Helper()
		seq++
		to := "+97798123450" + string(rune('0'+seq/10)) + string(rune('0'+seq%10))
		r := callAPI(t, client, addr, "POST", "/v1/verifications", `{"to":"`+to+`"}`)
		if r.status != 201 {
			t.Fatalf("start: %d %s", r.status, r.raw)
		}
		r = callAPI(t, client, addr, "POST", "/v1/verifications/check", `{"id":"`+r.str("id")+`","code":"`+in.code(to)+`"}`)
		if r.status != 200 {
			t.Fatalf("check: %d %s", r.status, r.raw)
		}
	}
	startAndCheck(t)
	// A verification started before the cut, to check during and after it.
	pending := callAPI(t, client, addr, "POST", "/v1/verifications", `{"to":"+9779812345699"}`).str("id")

	tests := []struct {
		name  string
		proxy *testenv.Proxy
		// down lists the requests refused during the cut; ok those that
		// still succeed.
		down, ok []string
		// readyMsg is in /readyz's message during the cut.
		readyMsg string
	}{
		{
			name:     "PostgreSQL",
			proxy:    pgProxy,
			down:     []string{"start", "check", "get"},
			readyMsg: "database",
		},
		{
			name:     "Redis",
			proxy:    redisProxy,
			down:     []string{"start"},
			ok:       []string{"get"},
			readyMsg: "Redis",
		},
	}
	requests := map[string]func() apiResponse{
		"start": func() apiResponse {
			return callAPI(t, client, addr, "POST", "/v1/verifications", `{"to":"+9779812345698"}`)
		},
		"check": func() apiResponse {
			return callAPI(t, client, addr, "POST", "/v1/verifications/check", `{"id":"`+pending+`","code":"000000"}`)
		},
		"get": func() apiResponse { return callAPI(t, client, addr, "GET", "/v1/verifications/"+pending, "") },
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.proxy.Cut()
			for range 3 { // the first calls meet the pool's broken connections
				for _, name := range tt.down {
					r := requests[name]()
					if r.status != 503 || r.errCode() != "unavailable" {
						t.Errorf("%s during the cut: %d %s, want 503 unavailable", name, r.status, r.raw)
					}
				}
				for _, name := range tt.ok {
					if r := requests[name](); r.status != 200 {
						t.Errorf("%s during the cut: %d %s, want 200", name, r.status, r.raw)
					}
				}
			}
			r := callAPI(t, client, addr, "GET", "/readyz", "")
			if msg, _ := r.body["error"].(map[string]any)["message"].(string); r.status != 503 || !strings.Contains(msg, tt.readyMsg) {
				t.Errorf("readyz during the cut: %d %s, want 503 naming %s", r.status, r.raw, tt.readyMsg)
			}

			tt.proxy.Restore()
			waitFor(t, "readyz after the restore", 15*time.Second, func() bool {
				return callAPI(t, client, addr, "GET", "/readyz", "").status == 200
			})
			startAndCheck(t)
			if r := requests["get"](); r.status != 200 || r.str("status") != "pending" {
				t.Errorf("the verification started before the cut: %d %s, want 200 pending", r.status, r.raw)
			}
		})
	}
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestStartupWaits: a node started while its database or Redis is down
// logs each retry and comes up once it answers; one that never answers
// fails after PHONEVERIFY_STARTUP_TIMEOUT with a clear error.
func TestStartupWaits(t *testing.T) {
	t.Parallel()
	pgURL, err := url.Parse(testenv.NewPostgresDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	redisURL, err := url.Parse(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	pgProxy := testenv.NewProxy(t, pgURL.Host)
	pgURL.Host = pgProxy.Addr()
	redisProxy := testenv.NewProxy(t, redisURL.Host)
	redisURL.Host = redisProxy.Addr()
	tests := []struct {
		name, env, value string
		proxy            *testenv.Proxy
		logLine          string
	}{
		{"database", "PHONEVERIFY_DATABASE_URL", pgURL.String(), pgProxy, "database unreachable, retrying"},
		{"Redis", "PHONEVERIFY_REDIS_URL", redisURL.String(), redisProxy, "Redis unreachable, retrying"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" comes up", func(t *testing.T) {
			env := map[string]string{
				"PHONEVERIFY_ADDR": "127.0.0.1:0", "PHONEVERIFY_SECRET": testSecret,
				"PHONEVERIFY_DATABASE_URL":    "sqlite:" + t.TempDir() + "/pv.db",
				"PHONEVERIFY_STARTUP_TIMEOUT": "30s",
			}
			env[tt.env] = tt.value
			tt.proxy.Cut()
			logs := &lockedBuffer{}
			m := NewMain(mustConfig(t, env), logs)
			defer m.Close()
			opened := make(chan error, 1)
			go func() { opened <- m.Open(t.Context()) }()
			waitFor(t, "a logged retry", 10*time.Second, func() bool { return strings.Contains(logs.String(), tt.logLine) })
			tt.proxy.Restore()
			select {
			case err := <-opened:
				if err != nil {
					t.Fatalf("Open after the restore: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("Open did not return within 20s of the restore")
			}
		})
	}
	t.Run("never comes up", func(t *testing.T) {
		m := NewMain(mustConfig(t, map[string]string{
			"PHONEVERIFY_ADDR": "127.0.0.1:0", "PHONEVERIFY_SECRET": testSecret,
			// Port 1: nothing listens there.
			"PHONEVERIFY_DATABASE_URL":    "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable",
			"PHONEVERIFY_STARTUP_TIMEOUT": "1s",
		}), &lockedBuffer{})
		defer m.Close()
		err := m.Open(t.Context())
		if err == nil || !strings.Contains(err.Error(), "still unreachable") || !strings.Contains(err.Error(), "PHONEVERIFY_STARTUP_TIMEOUT") {
			t.Errorf("Open = %v, want an error saying the database is still unreachable after PHONEVERIFY_STARTUP_TIMEOUT", err)
		}
	})
}

// TestOutageUnderLoad cuts PostgreSQL while requests are in flight: every
// answer is a success or 503 unavailable, never a 500 or a dropped
// connection, and the node serves again after the restore.
func TestOutageUnderLoad(t *testing.T) {
	t.Parallel()
	pgURL, err := url.Parse(testenv.NewPostgresDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	pgProxy := testenv.NewProxy(t, pgURL.Host)
	pgURL.Host = pgProxy.Addr()
	in := &inbox{codes: map[string]string{}}
	m := startMain(t, mustConfig(t, map[string]string{
		"PHONEVERIFY_ADDR":              "127.0.0.1:0",
		"PHONEVERIFY_DATABASE_URL":      pgURL.String(),
		"PHONEVERIFY_SECRET":            testSecret,
		"PHONEVERIFY_API_KEY":           testAPIKey,
		"PHONEVERIFY_DEFAULT_REGION":    "NP",
		"PHONEVERIFY_DB_MAX_OPEN_CONNS": "4",
		"PHONEVERIFY_RATE_LIMIT_IP":     "off",
	}), in)
	client := &http.Client{Timeout: 20 * time.Second}
	addr := m.Addr()

	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		bad      []string
	)
	// phase is 0 before the cut, 1 during it, 2 after the restore, 3 when
	// the workers should stop.
	var phase atomic.Int32
	const workers, maxPerWorker = 4, 5000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; i < maxPerWorker && phase.Load() < 3; i++ {
				to := fmt.Sprintf("+97798%02d%06d", 10+w, i)
				r := callAPI(t, client, addr, "POST", "/v1/verifications", `{"to":"`+to+`"}`)
				if r.status == 201 {
					r = callAPI(t, client, addr, "POST", "/v1/verifications/check", `{"id":"`+r.str("id")+`","code":"`+in.code(to)+`"}`)
				}
				mu.Lock()
				statuses[r.status]++
				ok := r.status == 200 || r.status == 503 && r.errCode() == "unavailable"
				if !ok && len(bad) < 5 {
					bad = append(bad, fmt.Sprintf("phase %d: %d %s", phase.Load(), r.status, r.raw))
				}
				mu.Unlock()
			}
		})
	}
	count := func(status int) int { mu.Lock(); defer mu.Unlock(); return statuses[status] }
	waitFor(t, "successes before the cut", 30*time.Second, func() bool { return count(200) >= 20 })
	phase.Store(1)
	pgProxy.Cut()
	waitFor(t, "503s during the cut", 30*time.Second, func() bool { return count(503) >= 20 })
	before := count(200)
	phase.Store(2)
	pgProxy.Restore()
	waitFor(t, "successes after the restore", 30*time.Second, func() bool { return count(200) >= before+20 })
	phase.Store(3)
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("answers other than 200 or 503 unavailable (first %d): %v", len(bad), bad)
	}
	t.Logf("statuses: %v", statuses)
}
