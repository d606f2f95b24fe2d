package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/internal/testenv"
)

// phoneLog records every message a node sends, in order, standing in for
// the phone.
type phoneLog struct {
	mu   sync.Mutex
	msgs []pv.Message
}

func (p *phoneLog) Send(_ context.Context, m *pv.Message) (*pv.SendResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msgs = append(p.msgs, *m)
	return &pv.SendResult{Gateway: "phone"}, nil
}

func (p *phoneLog) last() pv.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.msgs[len(p.msgs)-1]
}

// TestHammerOneNumberOverHTTP is the concurrency proof through the real
// HTTP API, on both stores: rounds of a hundred concurrent requests for
// one number — checks with the right and wrong codes, by id and by
// number, and resends that replace the code — never compare more guesses
// than a verification's attempt limit, approve a verification at most
// once, or leave two verifications of the number pending, which a watcher
// queries in the database throughout.
func TestHammerOneNumberOverHTTP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		db   func(t *testing.T) string
	}{
		{"SQLite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "pv.db") }},
		{"PostgreSQL", func(t *testing.T) string { return testenv.NewPostgresDatabase(t) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			testHammerOverHTTP(t, tt.db(t))
		})
	}
}

func testHammerOverHTTP(t *testing.T, dbURL string) {
	const to = "+9779861234567"
	phone := &phoneLog{}
	m := startMain(t, mustConfig(t, map[string]string{
		"PHONEVERIFY_ADDR":           "127.0.0.1:0",
		"PHONEVERIFY_DATABASE_URL":   dbURL,
		"PHONEVERIFY_SECRET":         testSecret,
		"PHONEVERIFY_API_KEY":        testAPIKey,
		"PHONEVERIFY_DEFAULT_REGION": "NP",
		"PHONEVERIFY_RATE_LIMIT_IP":  "off",
	}), phone)
	ctx := t.Context()
	svc, features, err := m.Engine.ServiceWithFeatures(ctx, m.Engine.DefaultServiceID())
	if err != nil {
		t.Fatal(err)
	}
	svc.MaxSends = 1000 // resends are limited per number; this test needs many
	if err := m.Engine.UpdateService(ctx, svc, features); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	addr := m.Addr()
	db := m.Store.DB()
	query := func(q string, args ...any) func(dest ...any) error {
		return func(dest ...any) error { return db.QueryRowContext(ctx, q, args...).Scan(dest...) }
	}
	pendingNow := func() int {
		var n int
		if err := query("SELECT COUNT(*) FROM verifications WHERE status = 'pending' AND phone = '" + to + "'")(&n); err != nil {
			t.Errorf("counting pending verifications: %v", err)
		}
		return n
	}
	// delivered waits until the outbox has sent every queued message.
	delivered := func() {
		waitFor(t, "the outbox sending the codes", time.Minute, func() bool {
			var n int
			if err := query("SELECT COUNT(*) FROM outbox WHERE status = 'queued'")(&n); err != nil {
				t.Fatal(err)
			}
			return n == 0
		})
	}
	if r := callAPI(t, client, addr, "POST", "/v1/verifications", `{"to":"`+to+`"}`); r.status != 201 {
		t.Fatalf("start: %d %s", r.status, r.raw)
	}

	var (
		stop       = make(chan struct{})
		watcher    sync.WaitGroup
		maxPending atomic.Int32
		polls      atomic.Int32
	)
	watcher.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			if n := int32(pendingNow()); n > maxPending.Load() {
				maxPending.Store(n)
			}
			polls.Add(1)
		}
	})

	const rounds, perRound = 3, 100
	var (
		mu        sync.Mutex
		checks    = map[string]int{} // status and error code of each check
		starts    = map[string]int{}
		approvals = map[string]int{} // verification id → approving checks
		compared  int                // checks that compared a guess
	)
	for range rounds {
		delivered()
		last := phone.last()
		var wg sync.WaitGroup
		for i := range perRound {
			wg.Go(func() {
				if i%10 == 0 {
					r := callAPI(t, client, addr, "POST", "/v1/verifications", `{"to":"`+to+`"}`)
					mu.Lock()
					starts[fmt.Sprint(r.status, " ", r.errCode())]++
					mu.Unlock()
					return
				}
				code := last.Code
				if i%3 != 0 {
					code = wrongCode(code)
				}
				ref := `"id":"` + last.VerificationID + `"`
				if i%2 == 1 {
					ref = `"to":"` + to + `"`
				}
				r := callAPI(t, client, addr, "POST", "/v1/verifications/check", `{`+ref+`,"code":"`+code+`"}`)
				mu.Lock()
				defer mu.Unlock()
				checks[fmt.Sprint(r.status, " ", r.errCode())]++
				switch {
				case r.status == 200:
					compared++
					approvals[r.str("id")]++
				case r.errCode() == pv.EIncorrectCode:
					compared++
				}
			})
		}
		wg.Wait()
	}
	close(stop)
	watcher.Wait()

	rows, err := db.QueryContext(ctx, "SELECT id, status, attempts, max_attempts FROM verifications WHERE phone = '"+to+"'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	attempts, verifications, pending := 0, 0, 0
	for rows.Next() {
		var id, status string
		var n, limit int
		if err := rows.Scan(&id, &status, &n, &limit); err != nil {
			t.Fatal(err)
		}
		verifications++
		attempts += n
		if n > limit {
			t.Errorf("verification %s: %d attempts recorded, limit %d", id, n, limit)
		}
		if status == "pending" {
			pending++
		}
		if approvals[id] > 1 || (approvals[id] == 1) != (status == "approved") {
			t.Errorf("verification %s: %s in the database, approved by %d checks", id, status, approvals[id])
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if compared != attempts {
		t.Errorf("%d guesses compared (%v) but %d attempts recorded", compared, checks, attempts)
	}
	if pending > 1 || maxPending.Load() > 1 {
		t.Errorf("pending verifications: %d at the end, up to %d meanwhile; want at most 1", pending, maxPending.Load())
	}
	for k := range checks {
		if k[0] == '5' {
			t.Errorf("checks answered %s: %v", k, checks)
		}
	}
	for k := range starts {
		if k[0] == '5' {
			t.Errorf("starts answered %s: %v", k, starts)
		}
	}
	t.Logf("%d verifications, %d attempts; checks %v; starts %v; pending watched %d times, max %d",
		verifications, attempts, checks, starts, polls.Load(), maxPending.Load())
}

// wrongCode returns a code of the same length that differs from code.
func wrongCode(code string) string {
	b := []byte(code)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}
