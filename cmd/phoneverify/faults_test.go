package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/phoneverify/phoneverify/internal/testenv"
)

// fakeSMSC is a loopback gateway: the receiver of the signed webhook
// gateway, standing in for an SMS provider and the phones behind it. It
// records every message it is handed, so a test can count deliveries and
// duplicates and read the codes. While held, requests are recorded on
// arrival (the provider took the message) and then left unanswered until
// release is closed or the sender gives up: the answer is lost, as when a
// node dies or times out mid-send.
type fakeSMSC struct {
	mu       sync.Mutex
	codes    map[string][]string // verification id → codes received, in order
	total    int
	held     bool
	release  chan struct{}
	canceled atomic.Int32 // held requests whose sender gave up
	// fail, when set, answers 503 without taking the message; refused
	// counts those answers.
	fail    atomic.Bool
	refused atomic.Int32
	srv     *httptest.Server
}

func newFakeSMSC(t *testing.T) *fakeSMSC {
	g := &fakeSMSC{codes: map[string][]string{}, release: make(chan struct{})}
	g.srv = httptest.NewServer(g)
	t.Cleanup(func() {
		g.Release()
		g.srv.Close()
	})
	return g
}

func (g *fakeSMSC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.fail.Load() {
		g.refused.Add(1)
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	var p struct {
		Code           string `json:"code"`
		VerificationID string `json:"verification_id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil || p.Code == "" || p.VerificationID == "" {
		http.Error(w, "bad payload", http.StatusBadRequest)
		return
	}
	g.mu.Lock()
	g.codes[p.VerificationID] = append(g.codes[p.VerificationID], p.Code)
	g.total++
	held, release := g.held, g.release
	g.mu.Unlock()
	if held {
		select {
		case <-release:
		case <-r.Context().Done():
			g.canceled.Add(1)
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}

// Hold makes the gateway take messages without answering until Release.
func (g *fakeSMSC) Hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.held {
		g.held, g.release = true, make(chan struct{})
	}
}

// Release answers the held requests and stops holding.
func (g *fakeSMSC) Release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held {
		g.held = false
		close(g.release)
	}
}

// code returns the last code received for a verification, or "".
func (g *fakeSMSC) code(id string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c := g.codes[id]; len(c) > 0 {
		return c[len(c)-1]
	}
	return ""
}

// counts returns, over ids, how many have had a message, and how many
// messages beyond the first each received (duplicates).
func (g *fakeSMSC) counts(ids []string) (delivered, duplicates int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, id := range ids {
		if n := len(g.codes[id]); n > 0 {
			delivered++
			duplicates += n - 1
		}
	}
	return delivered, duplicates
}

// env returns the node variables that send through this gateway.
func (g *fakeSMSC) env() []string {
	return []string{"PHONEVERIFY_GATEWAY_WEBHOOK_URL=" + g.srv.URL, "PHONEVERIFY_GATEWAY_WEBHOOK_SECRET=" + testSecret}
}

// tryStart posts a start and returns its status and id; err is a transport
// error (a node killed mid-request), which the caller judges.
func tryStart(client *http.Client, addr, to string) (status int, id, raw string, err error) {
	req, err := http.NewRequest("POST", "http://"+addr+"/v1/verifications", strings.NewReader(`{"to":"`+to+`"}`))
	if err != nil {
		return 0, "", "", err
	}
	req.Header.Set("Authorization", "Bearer "+testAPIKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, "", "", err
	}
	var body struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(b, &body)
	return res.StatusCode, body.ID, string(b), nil
}

// TestKill9UnderLoad kills a node process with SIGKILL while clients start
// verifications and its outbox is sending, restarts it on the same
// database, and proves that nothing it accepted is lost: every
// verification answered 201 gets its message (counted at the fake
// gateway; duplicates are allowed, at least once, and reported) and is
// approved with the code. Part of the messages are still queued at the
// kill and part are in flight at the gateway, whose answer the dead node
// never read.
func TestKill9UnderLoad(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t)
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
			testKill9UnderLoad(t, bin, tt.db(t))
		})
	}
}

func testKill9UnderLoad(t *testing.T, bin, dbURL string) {
	gw := newFakeSMSC(t)
	env := append([]string{
		"PHONEVERIFY_ADDR=127.0.0.1:0",
		"PHONEVERIFY_DATABASE_URL=" + dbURL,
		"PHONEVERIFY_SECRET=" + testSecret,
		"PHONEVERIFY_API_KEY=" + testAPIKey,
		"PHONEVERIFY_DEFAULT_REGION=NP",
		"PHONEVERIFY_DB_MAX_OPEN_CONNS=4",
		"PHONEVERIFY_RATE_LIMIT_IP=off",
		// The load is many unconverted numbers in one range: to fraud
		// protection, a pumping attack.
		"PHONEVERIFY_FRAUD_MODE=off",
	}, gw.env()...)
	first := startProcess(t, bin, "node", env)
	client := &http.Client{Timeout: 20 * time.Second}

	const (
		workers = 4
		// holdAt accepted starts, the gateway stops answering: messages
		// pile up in the outbox and the workers' sends hang.
		holdAt = 60
		killAt = 150
	)
	var (
		mu       sync.Mutex
		accepted []string // verification ids answered 201
		bad      []string
		killed   atomic.Bool
		lost     int // requests cut by the kill
		wg       sync.WaitGroup
	)
	// progress reports whether n starts were accepted, or a bad answer
	// ended the load.
	progress := func(n int) bool { mu.Lock(); defer mu.Unlock(); return len(accepted) >= n || len(bad) > 0 }
	for w := range workers {
		wg.Go(func() {
			for i := 0; !killed.Load() && i < 100000; i++ {
				status, id, raw, err := tryStart(client, first.addr, fmt.Sprintf("+97798%02d%06d", 20+w, i))
				mu.Lock()
				switch {
				case err != nil && killed.Load():
					lost++
				case err != nil:
					bad = append(bad, "transport error before the kill: "+err.Error())
				case status == 201:
					accepted = append(accepted, id)
				default:
					bad = append(bad, fmt.Sprintf("%d %s", status, raw))
				}
				stop := err != nil || len(bad) > 0
				mu.Unlock()
				if stop {
					return
				}
			}
		})
	}
	waitFor(t, "starts before the hold", 60*time.Second, func() bool { return progress(holdAt) })
	gw.Hold()
	waitFor(t, "starts before the kill", 60*time.Second, func() bool { return progress(killAt) })
	killed.Store(true)
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.done
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("answers other than 201 before the kill (%d): %v", len(bad), bad[:min(len(bad), 5)])
	}
	deliveredAtKill, _ := gw.counts(accepted)

	gw.Release()
	restarted := startProcess(t, bin, "node (restarted)", env)
	// A message the dead node had claimed is sent again once its lease (the
	// send timeout + 30 s) runs out.
	waitFor(t, "every accepted verification's message", 3*time.Minute, func() bool {
		delivered, _ := gw.counts(accepted)
		return delivered == len(accepted)
	})
	// And the restarted node records each as sent: the messages the dead
	// node had claimed are not stuck once their lease is over.
	waitFor(t, "every accepted verification's message recorded sent", 3*time.Minute, func() bool {
		for _, id := range accepted {
			r := callAPI(t, client, restarted.addr, "GET", "/v1/verifications/"+id, "")
			msgs, _ := r.body["messages"].([]any)
			if len(msgs) == 0 {
				t.Fatalf("verification %s: no messages in %s", id, r.raw)
			}
			if status, _ := msgs[len(msgs)-1].(map[string]any)["status"].(string); status != "sent" {
				return false
			}
		}
		return true
	})
	delivered, duplicates := gw.counts(accepted)
	for _, id := range accepted {
		r := callAPI(t, client, restarted.addr, "POST", "/v1/verifications/check", `{"id":"`+id+`","code":"`+gw.code(id)+`"}`)
		if r.status != 200 || r.str("status") != "approved" {
			t.Errorf("verification %s accepted before the kill: check %d %s, want 200 approved", id, r.status, r.raw)
		}
	}
	gw.mu.Lock()
	for _, id := range accepted {
		for _, c := range gw.codes[id] {
			if c != gw.codes[id][0] {
				t.Errorf("verification %s: different codes delivered %v; a restart must not change a code", id, gw.codes[id])
				break
			}
		}
	}
	total := gw.total
	gw.mu.Unlock()
	t.Logf("accepted %d (201s), %d requests cut by the kill; at the gateway: %d had a message at the kill, %d after the restart, "+
		"%d duplicates (%d held sends abandoned), %d messages in all",
		len(accepted), lost, deliveredAtKill, delivered, duplicates, gw.canceled.Load(), total)
}

// loadStats tallies the answers a load generator got, by status and error
// code, and keeps the first few that a fault must never produce.
type loadStats struct {
	mu     sync.Mutex
	counts map[string]int // "201", "503 unavailable", …
	bad    []string
}

// newLoadStats returns empty stats, logged if t fails before report.
func newLoadStats(t *testing.T) *loadStats {
	s := &loadStats{counts: map[string]int{}}
	t.Cleanup(func() {
		if t.Failed() {
			s.mu.Lock()
			defer s.mu.Unlock()
			t.Logf("answers so far: %v; bad: %v", s.counts, s.bad)
		}
	})
	return s
}

// add records r; ok says whether it is an acceptable answer.
func (s *loadStats) add(what string, r apiResponse, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := fmt.Sprint(r.status)
	if r.errCode() != "" {
		key += " " + r.errCode()
	}
	s.counts[what+" "+key]++
	if !ok && len(s.bad) < 5 {
		s.bad = append(s.bad, fmt.Sprintf("%s: %d %s", what, r.status, r.raw))
	}
}

func (s *loadStats) count(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[key]
}

func (s *loadStats) report(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.bad) > 0 {
		t.Errorf("answers a fault must never produce (first %d): %v", len(s.bad), s.bad)
	}
	t.Logf("answers: %v", s.counts)
}

// unavailable503 reports whether r is 503 with the error code unavailable.
func unavailable503(r apiResponse) bool { return r.status == 503 && r.errCode() == "unavailable" }

// TestPostgresCrashUnderLoad crashes and restarts the node's PostgreSQL
// server (a private one: pg_ctl stop -m immediate, then start, so it
// recovers from its WAL) while clients start verifications and read
// them: every answer is a success or 503 unavailable, never a 500; the
// node serves again by itself; and every verification it accepted is
// intact, approved afterwards with the code it was sent.
func TestPostgresCrashUnderLoad(t *testing.T) {
	t.Parallel()
	pg := testenv.NewPostgresServer(t)
	in := &inbox{codes: map[string]string{}}
	m := startMain(t, mustConfig(t, map[string]string{
		"PHONEVERIFY_ADDR":              "127.0.0.1:0",
		"PHONEVERIFY_DATABASE_URL":      pg.URL(),
		"PHONEVERIFY_SECRET":            testSecret,
		"PHONEVERIFY_API_KEY":           testAPIKey,
		"PHONEVERIFY_DEFAULT_REGION":    "NP",
		"PHONEVERIFY_DB_MAX_OPEN_CONNS": "4",
		"PHONEVERIFY_RATE_LIMIT_IP":     "off",
		"PHONEVERIFY_FRAUD_MODE":        "off",
	}), in)
	client := &http.Client{Timeout: 30 * time.Second}
	addr := m.Addr()

	type verification struct{ id, to string }
	var (
		stats    = newLoadStats(t)
		mu       sync.Mutex
		accepted []verification
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	const workers = 4
	for w := range workers {
		wg.Go(func() {
			for i := 0; !stop.Load() && i < 100000; i++ {
				to := fmt.Sprintf("+97798%02d%06d", 10+w, i)
				r := callAPI(t, client, addr, "POST", "/v1/verifications", `{"to":"`+to+`"}`)
				stats.add("start", r, r.status == 201 || unavailable503(r))
				if r.status != 201 {
					continue
				}
				mu.Lock()
				accepted = append(accepted, verification{r.str("id"), to})
				mu.Unlock()
				r = callAPI(t, client, addr, "GET", "/v1/verifications/"+r.str("id"), "")
				stats.add("get", r, r.status == 200 && r.str("status") == "pending" || unavailable503(r))
			}
		})
	}
	waitFor(t, "starts before the crash", 60*time.Second, func() bool { return stats.count("start 201") >= 50 })
	pg.Crash()
	waitFor(t, "503s while PostgreSQL is down", 60*time.Second, func() bool {
		return stats.count("start 503 unavailable") >= 20
	})
	if r := callAPI(t, client, addr, "GET", "/readyz", ""); r.status != 503 {
		t.Errorf("readyz while PostgreSQL is down: %d %s, want 503", r.status, r.raw)
	}
	before := stats.count("start 201")
	pg.Start()
	waitFor(t, "starts after the restart", 60*time.Second, func() bool { return stats.count("start 201") >= before+50 })
	stop.Store(true)
	wg.Wait()
	stats.report(t)

	// Nothing accepted was lost or damaged: each is delivered (the outbox
	// retries what it could not send or record meanwhile) and approved by
	// its code, once.
	for _, v := range accepted {
		code := in.code(v.to)
		if code == "" {
			t.Errorf("verification %s: no message within 2 min", v.id)
			continue
		}
		r := callAPI(t, client, addr, "POST", "/v1/verifications/check", `{"id":"`+v.id+`","code":"`+code+`"}`)
		if r.status != 200 || r.str("status") != "approved" {
			t.Errorf("verification %s accepted around the crash: check %d %s, want 200 approved", v.id, r.status, r.raw)
		}
	}
	t.Logf("%d verifications accepted, all checked afterwards", len(accepted))
}

// TestRedisKilledUnderLoad kills the node's Redis (a private
// redis-server, SIGKILL) while clients start and check verifications,
// and proves what README promises: Redis down fails closed, so starts are
// answered 503 unavailable (never 500, never let through unlimited),
// while checks and look-ups of verifications already started keep
// working; once Redis is back the node serves starts again by itself.
func TestRedisKilledUnderLoad(t *testing.T) {
	t.Parallel()
	rs := testenv.NewRedisServer(t)
	in := &inbox{codes: map[string]string{}}
	m := startMain(t, mustConfig(t, map[string]string{
		"PHONEVERIFY_ADDR":           "127.0.0.1:0",
		"PHONEVERIFY_DATABASE_URL":   "sqlite:" + filepath.Join(t.TempDir(), "pv.db"),
		"PHONEVERIFY_SECRET":         testSecret,
		"PHONEVERIFY_API_KEY":        testAPIKey,
		"PHONEVERIFY_DEFAULT_REGION": "NP",
		"PHONEVERIFY_REDIS_URL":      rs.URL(),
		// The per-IP limit, counted in Redis, is on and far off.
		"PHONEVERIFY_RATE_LIMIT_IP": "10000/10m",
		"PHONEVERIFY_FRAUD_MODE":    "off",
	}), in)
	client := &http.Client{Timeout: 30 * time.Second}
	addr := m.Addr()

	// Verifications started before the kill, checked while Redis is down.
	type verification struct{ id, to string }
	var pending []verification
	for i := range 20 {
		to := fmt.Sprintf("+9779849%06d", i)
		r := callAPI(t, client, addr, "POST", "/v1/verifications", `{"to":"`+to+`"}`)
		if r.status != 201 {
			t.Fatalf("start before the kill: %d %s", r.status, r.raw)
		}
		pending = append(pending, verification{r.str("id"), to})
		in.code(to)
	}

	var (
		stats = newLoadStats(t)
		// down is set while Redis is killed: a start may then only be
		// refused 503 unavailable, not accepted.
		down atomic.Bool
		stop atomic.Bool
		wg   sync.WaitGroup
	)
	const workers = 3
	for w := range workers {
		wg.Go(func() {
			for i := 0; !stop.Load() && i < 100000; i++ {
				to := fmt.Sprintf("+97798%02d%06d", 40+w, i)
				wasDown := down.Load()
				r := callAPI(t, client, addr, "POST", "/v1/verifications", `{"to":"`+to+`"}`)
				stats.add("start", r, r.status == 201 && !(wasDown && down.Load()) || unavailable503(r))
				if r.status != 201 {
					continue
				}
				r = callAPI(t, client, addr, "POST", "/v1/verifications/check", `{"id":"`+r.str("id")+`","code":"`+in.code(to)+`"}`)
				stats.add("check", r, r.status == 200)
			}
		})
	}
	waitFor(t, "starts before the kill", 60*time.Second, func() bool { return stats.count("start 201") >= 30 })
	rs.Kill()
	down.Store(true)
	waitFor(t, "503s while Redis is down", 60*time.Second, func() bool { return stats.count("start 503 unavailable") >= 20 })
	for _, v := range pending {
		r := callAPI(t, client, addr, "GET", "/v1/verifications/"+v.id, "")
		stats.add("get while down", r, r.status == 200)
		r = callAPI(t, client, addr, "POST", "/v1/verifications/check", `{"id":"`+v.id+`","code":"`+in.code(v.to)+`"}`)
		stats.add("check while down", r, r.status == 200 && r.str("status") == "approved")
	}
	if r := callAPI(t, client, addr, "GET", "/readyz", ""); r.status != 503 || !strings.Contains(r.raw, "Redis") {
		t.Errorf("readyz while Redis is down: %d %s, want 503 naming Redis", r.status, r.raw)
	}
	down.Store(false)
	before := stats.count("start 201")
	rs.Start()
	waitFor(t, "starts after Redis is back", 60*time.Second, func() bool { return stats.count("start 201") >= before+30 })
	stop.Store(true)
	wg.Wait()
	stats.report(t)
}

// fakeVonage is a loopback stand-in for Vonage's SMS API, the failover
// gateway: it takes every message and keeps the codes sent to each number.
type fakeVonage struct {
	mu    sync.Mutex
	codes map[string][]string // number without "+" → codes received
	srv   *httptest.Server
}

var sixDigits = regexp.MustCompile(`\b\d{6}\b`)

func newFakeVonage(t *testing.T) *fakeVonage {
	v := &fakeVonage{codes: map[string][]string{}}
	v.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		to := strings.TrimPrefix(r.PostForm.Get("to"), "+")
		v.mu.Lock()
		v.codes[to] = append(v.codes[to], sixDigits.FindString(r.PostForm.Get("text")))
		v.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"message-count":"1","messages":[{"to":%q,"message-id":"m-%d","status":"0"}]}`, to, time.Now().UnixNano())
	}))
	t.Cleanup(v.srv.Close)
	return v
}

func (v *fakeVonage) code(to string) string {
	v.mu.Lock()
	defer v.mu.Unlock()
	c := v.codes[strings.TrimPrefix(to, "+")]
	if len(c) == 0 {
		return ""
	}
	return c[len(c)-1]
}

func (v *fakeVonage) total() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for _, c := range v.codes {
		n += len(c)
	}
	return n
}

func (v *fakeVonage) env() []string {
	return []string{
		"PHONEVERIFY_GATEWAY_VONAGE_API_KEY=key", "PHONEVERIFY_GATEWAY_VONAGE_API_SECRET=secret",
		"PHONEVERIFY_GATEWAY_VONAGE_FROM=Example", "PHONEVERIFY_GATEWAY_VONAGE_BASE_URL=" + v.srv.URL,
	}
}

// TestGatewayFaults runs a node whose first gateway hangs or fails while
// clients start verifications: the API keeps answering 201 at once (sending
// is the outbox's, after the commit), the hung sends time out, and every
// message goes out, through the failover gateway or by a retry once the
// gateway recovers, so that each verification is approved with its code.
func TestGatewayFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// routes is PHONEVERIFY_ROUTES; the webhook gateway is the faulty
		// one, Vonage the failover.
		routes string
		hang   bool // the webhook takes messages and never answers
		fail   bool // the webhook answers 503
		// recover ends the webhook's fault once it has refused a message.
		recover bool
		// cooldown is PHONEVERIFY_CIRCUIT_COOLDOWN: long where the failover
		// gateway takes over, short where the only gateway must be tried
		// again soon.
		cooldown string
	}{
		{name: "hangs, fails over", routes: "*=webhook,vonage", hang: true, cooldown: "10m"},
		{name: "errs, fails over", routes: "*=webhook,vonage", fail: true, cooldown: "10m"},
		{name: "errs, retried after it recovers", routes: "*=webhook", fail: true, recover: true, cooldown: "1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hook, vonage := newFakeSMSC(t), newFakeVonage(t)
			if tt.hang {
				hook.Hold()
			}
			hook.fail.Store(tt.fail)
			env := map[string]string{
				"PHONEVERIFY_ADDR":              "127.0.0.1:0",
				"PHONEVERIFY_DATABASE_URL":      "sqlite:" + filepath.Join(t.TempDir(), "pv.db"),
				"PHONEVERIFY_SECRET":            testSecret,
				"PHONEVERIFY_API_KEY":           testAPIKey,
				"PHONEVERIFY_DEFAULT_REGION":    "NP",
				"PHONEVERIFY_RATE_LIMIT_IP":     "off",
				"PHONEVERIFY_FRAUD_MODE":        "off",
				"PHONEVERIFY_ROUTES":            tt.routes,
				"PHONEVERIFY_CIRCUIT_THRESHOLD": "2",
				"PHONEVERIFY_CIRCUIT_COOLDOWN":  tt.cooldown,
			}
			for _, kv := range append(hook.env(), vonage.env()...) {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
			m := startMain(t, mustConfig(t, env), nil)
			client := &http.Client{Timeout: 20 * time.Second}
			addr := m.Addr()

			type verification struct{ id, to string }
			var started []verification
			const n = 20
			for i := range n {
				to := fmt.Sprintf("+9779851%06d", i)
				r := callAPI(t, client, addr, "POST", "/v1/verifications", `{"to":"`+to+`"}`)
				if r.status != 201 {
					t.Fatalf("start %d while the gateway is faulty: %d %s, want 201", i, r.status, r.raw)
				}
				started = append(started, verification{r.str("id"), to})
				if i == 0 && tt.hang {
					// The rest are started while this one's send hangs.
					waitFor(t, "a send hanging at the gateway", 30*time.Second, func() bool {
						hook.mu.Lock()
						defer hook.mu.Unlock()
						return hook.total > 0
					})
				}
			}
			// Every start was answered while the hung sends were still
			// held (they are released only when the test ends): the API
			// does not wait for gateways.
			codeOf := func(v verification) string {
				if c := vonage.code(v.to); c != "" {
					return c
				}
				if tt.hang { // taken but never answered: not a delivery
					return ""
				}
				return hook.code(v.id)
			}
			if tt.recover {
				waitFor(t, "the gateway refusing messages", 30*time.Second, func() bool { return hook.refused.Load() >= 2 })
				hook.fail.Store(false)
			}
			waitFor(t, "every message sent", 2*time.Minute, func() bool {
				for _, v := range started {
					if codeOf(v) == "" {
						return false
					}
				}
				return true
			})
			if tt.hang && hook.canceled.Load() == 0 {
				t.Errorf("no hung send was abandoned: the send timeout did not fire")
			}
			for _, v := range started {
				r := callAPI(t, client, addr, "POST", "/v1/verifications/check", `{"id":"`+v.id+`","code":"`+codeOf(v)+`"}`)
				if r.status != 200 || r.str("status") != "approved" {
					t.Errorf("verification %s: check %d %s, want 200 approved", v.id, r.status, r.raw)
				}
			}
			hook.mu.Lock()
			took := hook.total
			hook.mu.Unlock()
			t.Logf("%d started; webhook: %d taken, %d refused, %d hung sends timed out; vonage: %d delivered",
				n, took, hook.refused.Load(), hook.canceled.Load(), vonage.total())
		})
	}
}
