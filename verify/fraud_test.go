package verify_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/fraud"
	"github.com/phoneverify/phoneverify/internal/testenv"
	"github.com/phoneverify/phoneverify/verify"
)

// withFraud turns fraud protection on, with mode for the default service.
func withFraud(mode pv.FraudMode) func(*verify.Config, *testenv.Clock) {
	return func(c *verify.Config, _ *testenv.Clock) { c.Fraud = &verify.FraudConfig{DefaultMode: mode} }
}

// newFraudHarness is a harness with fraud protection on and custom codes
// allowed, so that a simulated user can "type" the code it was sent.
func newFraudHarness(t *testing.T, dbURL string, mode pv.FraudMode, extra ...func(*verify.Config, *testenv.Clock)) *harness {
	t.Helper()
	h := newHarnessOn(t, dbURL, func(s *pv.Service) { s.MaxSends = 1000 }, append([]func(*verify.Config, *testenv.Clock){withFraud(mode)}, extra...)...)
	h.setFeatures(t, pv.ServiceFeatures{CustomCodeEnabled: true})
	return h
}

// queued counts the messages in the outbox for numbers starting with prefix.
func (h *harness) queued(t *testing.T, prefix string) int {
	t.Helper()
	var n int
	if err := h.store.DB().QueryRow(`SELECT COUNT(*) FROM outbox WHERE substr(phone, 1, length($1)) = $1`, prefix).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

const simCode = "424242"

// TestPumpingSimulation runs an SMS-pumping attack among normal traffic:
// 3,000 starts to one prefix of a high-cost country (Uzbekistan, +998 90 1)
// from rotating addresses, none converted, plus 500 starts spread over
// 60 other Uzbek prefixes by a second attacker, interleaved with 1,000
// starts of real users to 12 prefixes in 5 other countries, of which about
// 80% convert a few requests later. The clock moves 6 s per request (about
// 7.5 hours in all).
//
// Under the race detector it runs a third of that traffic.
//
// It asserts that the attacked prefix received at most the prefix floor
// (20) messages, the whole country at most the country floor (100), and
// that no real user was refused.
func TestPumpingSimulation(t *testing.T) { forEachStore(t, testPumpingSimulation) }

func testPumpingSimulation(t *testing.T, dbURL string) {
	h := newFraudHarness(t, dbURL, pv.FraudBlock)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(6, 8))
	legitPrefixes := []string{"+977981", "+977980", "+977984", "+977985", "+1415", "+1212", "+1310",
		"+49151", "+49160", "+49176", "+91981", "+33612"}
	national := map[string]int{"+977": 10, "+1": 10, "+49": 11, "+91": 10, "+33": 9}
	// number draws a valid number in prefix, as real users have.
	number := func(prefix string) string {
		cc := prefix[:len(prefix)-3]
		if strings.HasPrefix(prefix, "+1") {
			cc = "+1"
		}
		digits := national[cc] - (len(prefix) - len(cc))
		for {
			n := fmt.Sprintf("%s%0*d", prefix, digits, rng.IntN(intPow10(digits)))
			if _, err := h.e.Number(n, "to"); err == nil {
				return n
			}
		}
	}

	type pending struct {
		id  string
		due int
	}
	var (
		conversions []pending
		legit       = 0
		falseBlocks = 0
		attackRes   = map[string]int{}
		rotateRes   = map[string]int{}
		legitErrs   []string
	)
	attackN, rotateN, legitN := 3000, 500, 1000
	if raceEnabled { // a third of the traffic: the same bounds must hold
		attackN, rotateN, legitN = 1000, 200, 400
	}
	total := attackN + rotateN + legitN
	a, r, l := 0, 0, 0
	for i := 0; i < total; i++ {
		h.clock.Advance(6 * time.Second)
		// Conversions that are due: a real user types the code.
		for len(conversions) > 0 && conversions[0].due <= i {
			c := conversions[0]
			conversions = conversions[1:]
			if _, err := h.check(verify.CheckRequest{ID: c.id, Code: simCode}); err != nil {
				t.Fatalf("check of a real user: %v", err)
			}
		}
		// Interleave the three streams in proportion.
		pick := rng.IntN(total - i)
		switch {
		case pick < attackN-a:
			a++
			_, err := h.e.Start(ctx, verify.StartRequest{ServiceID: h.svc.ID, To: fmt.Sprintf("+998901%06d", rng.IntN(1e6)),
				ClientIP: fmt.Sprintf("10.%d.%d.%d", a/65536%256, a/256%256, a%256), CustomCode: simCode})
			attackRes[pv.ErrorCode(err)]++
		case pick < attackN-a+rotateN-r:
			r++
			second := []string{"0", "1", "3", "4", "7", "9"}[rng.IntN(6)]
			_, err := h.e.Start(ctx, verify.StartRequest{ServiceID: h.svc.ID,
				To:       fmt.Sprintf("+9989%s%d%06d", second, rng.IntN(10), rng.IntN(1e6)),
				ClientIP: fmt.Sprintf("172.16.%d.%d", r/256%256, r%256), CustomCode: simCode})
			rotateRes[pv.ErrorCode(err)]++
		default:
			l++
			legit++
			to := number(legitPrefixes[rng.IntN(len(legitPrefixes))])
			v, err := h.e.Start(ctx, verify.StartRequest{ServiceID: h.svc.ID, To: to,
				ClientIP: fmt.Sprintf("192.168.%d.%d", l/256%256, l%256), CustomCode: simCode})
			if err != nil {
				falseBlocks++
				legitErrs = append(legitErrs, fmt.Sprintf("%s: %v", to, err))
				continue
			}
			if rng.Float64() < 0.8 {
				conversions = append(conversions, pending{id: v.ID, due: i + 1 + rng.IntN(10)})
			}
		}
	}
	attacked, country := h.queued(t, "+998901"), h.queued(t, "+998")
	t.Logf("attacked prefix: %d starts, %d SMS queued, refusals %v; whole country: %d SMS queued (rotating attacker: %v); "+
		"legitimate: %d starts, %d falsely blocked",
		attackN, attacked, attackRes, country, rotateRes, legit, falseBlocks)
	if attacked > fraud.DefaultPrefixFloor {
		t.Errorf("SMS queued to the attacked prefix = %d, want at most the prefix floor %d", attacked, fraud.DefaultPrefixFloor)
	}
	if attacked == 0 {
		t.Errorf("no SMS queued to the attacked prefix: the floor must let a new destination's first users through")
	}
	if country > fraud.DefaultCountryFloor {
		t.Errorf("SMS queued to the attacked country = %d, want at most the country floor %d", country, fraud.DefaultCountryFloor)
	}
	if falseBlocks != 0 {
		t.Errorf("%d of %d legitimate starts refused, want none: %v", falseBlocks, legit, legitErrs[:min(5, len(legitErrs))])
	}
	if got := attackRes[pv.EBlockedByFraud]; got != attackN-attacked {
		t.Errorf("attack starts refused by fraud protection = %d, want %d (all others)", got, attackN-attacked)
	}
	ds, err := h.e.FraudDecisions(ctx, pv.FraudDecisionFilter{ServiceID: h.svc.ID, Prefix: "+998901", Limit: 5})
	if err != nil || len(ds) == 0 {
		t.Fatalf("decisions for the attacked prefix: %v, %v", ds, err)
	}
	if d := ds[0]; d.Action != "blocked" || d.Country != "UZ" || !strings.Contains(d.Phone, "*****") || strings.HasPrefix(d.Phone, "+998901") && len(d.Phone) == 13 {
		t.Errorf("decision %+v: want blocked, country UZ, masked number", d)
	}
}

func intPow10(n int) int {
	p := 1
	for range n {
		p *= 10
	}
	return p
}

// attack sends n unconverted starts to one prefix and returns the errors
// by code.
func attack(h *harness, prefix string, n int, ip func(i int) string) map[string]int {
	res := map[string]int{}
	for i := range n {
		_, err := h.e.Start(context.Background(), verify.StartRequest{ServiceID: h.svc.ID,
			To: fmt.Sprintf("%s%06d", prefix, i), ClientIP: ip(i), CustomCode: simCode})
		res[pv.ErrorCode(err)]++
	}
	return res
}

func rotatingIP(i int) string { return fmt.Sprintf("10.0.%d.%d", i/256%256, i%256) }

func TestFraudModes(t *testing.T) {
	tests := []struct {
		mode                 pv.FraudMode
		wantRefused, wantRec int
		wantObserved         string
	}{
		{pv.FraudBlock, 30, 30, "fraud_prefix"},
		{pv.FraudMonitor, 0, 30, "fraud_prefix_monitor"},
		{pv.FraudOff, 0, 0, ""},
	}
	for _, tt := range tests {
		t.Run(string(tt.mode), func(t *testing.T) {
			forEachStore(t, func(t *testing.T, dbURL string) {
				obs := &recordingObserver{}
				h := newFraudHarness(t, dbURL, tt.mode, func(c *verify.Config, _ *testenv.Clock) { c.Observer = obs })
				res := attack(h, "+998901", 50, rotatingIP)
				if got := res[pv.EBlockedByFraud]; got != tt.wantRefused {
					t.Errorf("refused = %d, want %d (%v)", got, tt.wantRefused, res)
				}
				ds, err := h.e.FraudDecisions(context.Background(), pv.FraudDecisionFilter{ServiceID: h.svc.ID, Limit: 100})
				if err != nil {
					t.Fatal(err)
				}
				if len(ds) != tt.wantRec {
					t.Errorf("decisions recorded = %d, want %d", len(ds), tt.wantRec)
				}
				obs.mu.Lock()
				defer obs.mu.Unlock()
				if tt.wantObserved == "" && len(obs.refused) != 0 || tt.wantObserved != "" && (len(obs.refused) != tt.wantRec || obs.refused[0] != tt.wantObserved) {
					t.Errorf("observer refusals = %d %v, want %d × %q", len(obs.refused), obs.refused[:min(1, len(obs.refused))], tt.wantRec, tt.wantObserved)
				}
			})
		})
	}
}

func TestFraudSafeListAndOverride(t *testing.T) {
	h := newFraudHarness(t, "", pv.FraudBlock)
	ctx := context.Background()
	attack(h, "+998901", 25, rotatingIP)
	blocked := "+998901999999"
	_, err := h.e.Start(ctx, verify.StartRequest{ServiceID: h.svc.ID, To: blocked, CustomCode: simCode})
	e := wantCode(t, err, pv.EBlockedByFraud)
	if e.Param != "to" || e.RetryAfter <= 0 || e.RetryAfter > time.Hour {
		t.Errorf("refusal %+v: want param to and Retry-After within the 1h cool-down", e)
	}
	// A safe-listed number in the blocked prefix is never refused.
	if _, err := h.e.AddToSafeList(ctx, blocked); err != nil {
		t.Fatal(err)
	}
	h.start(t, verify.StartRequest{To: blocked, CustomCode: simCode})
	// The override skips fraud protection.
	h.start(t, verify.StartRequest{To: "+998901888888", CustomCode: simCode, SkipRiskCheck: true})
	_, err = h.e.Start(ctx, verify.StartRequest{ServiceID: h.svc.ID, To: "+998901777777", CustomCode: simCode})
	wantCode(t, err, pv.EBlockedByFraud)
}

func TestFraudCooldown(t *testing.T) { forEachStore(t, testFraudCooldown) }

func testFraudCooldown(t *testing.T, dbURL string) {
	h := newFraudHarness(t, dbURL, pv.FraudBlock)
	ctx := context.Background()
	var ids []string
	for i := range 20 {
		v := h.start(t, verify.StartRequest{To: fmt.Sprintf("+998901%06d", i), CustomCode: simCode})
		ids = append(ids, v.ID)
	}
	_, err := h.e.Start(ctx, verify.StartRequest{ServiceID: h.svc.ID, To: "+998901500000", CustomCode: simCode})
	wantCode(t, err, pv.EBlockedByFraud)
	// Still blocked inside the cool-down, whatever happens meanwhile.
	h.clock.Advance(30 * time.Minute)
	for _, id := range ids[:15] { // real users convert late
		if _, err := h.check(verify.CheckRequest{ID: id, Code: simCode}); err != nil && pv.ErrorCode(err) != pv.EVerificationExpired {
			t.Fatal(err)
		}
	}
	_, err = h.e.Start(ctx, verify.StartRequest{ServiceID: h.svc.ID, To: "+998901500001", CustomCode: simCode})
	wantCode(t, err, pv.EBlockedByFraud)
	// After the cool-down the prefix is judged again: the codes expired
	// unchecked, so it stays blocked for another cool-down...
	h.clock.Advance(31 * time.Minute)
	_, err = h.e.Start(ctx, verify.StartRequest{ServiceID: h.svc.ID, To: "+998901500002", CustomCode: simCode})
	wantCode(t, err, pv.EBlockedByFraud)
	// ...until the unconverted sends leave the 24-hour window.
	h.clock.Advance(25 * time.Hour)
	h.start(t, verify.StartRequest{To: "+998901500003", CustomCode: simCode})
}

func TestFraudConversionsRaiseBudget(t *testing.T) {
	h := newFraudHarness(t, "", pv.FraudBlock)
	// 100 real users of a prefix convert: its budget of unconverted sends
	// becomes 100, far above the floor.
	for i := range 100 {
		v := h.start(t, verify.StartRequest{To: fmt.Sprintf("+998901%06d", i), CustomCode: simCode})
		if _, err := h.check(verify.CheckRequest{ID: v.ID, Code: simCode}); err != nil {
			t.Fatal(err)
		}
	}
	res := attack(h, "+998901", 150, rotatingIP)
	if got := res[""]; got != 100 {
		t.Errorf("unconverted sends allowed after 100 conversions = %d, want 100 (%v)", got, res)
	}
}

func TestFraudIPManyCountries(t *testing.T) {
	h := newFraudHarness(t, "", pv.FraudBlock)
	ctx := context.Background()
	numbers := []string{"+9779812345678", "+14155552671", "+4915112345678", "+919812345678", "+33612345678", "+447400123456"}
	for _, n := range numbers[:5] {
		h.start(t, verify.StartRequest{To: n, CustomCode: simCode, ClientIP: "203.0.113.9"})
	}
	_, err := h.e.Start(ctx, verify.StartRequest{ServiceID: h.svc.ID, To: numbers[5], CustomCode: simCode, ClientIP: "203.0.113.9"})
	e := wantCode(t, err, pv.EBlockedByFraud)
	if e.Param != "" {
		t.Errorf("param = %q, want none for an address block", e.Param)
	}
	// Another address is not concerned; an address that converts is not flagged.
	h.start(t, verify.StartRequest{To: numbers[5], CustomCode: simCode, ClientIP: "203.0.113.10"})
	for i, n := range numbers[:5] {
		v := h.start(t, verify.StartRequest{To: n, CustomCode: simCode, ClientIP: "2001:db8::1", Subject: fmt.Sprint("s", i)})
		if i == 0 {
			if _, err := h.check(verify.CheckRequest{ID: v.ID, Code: simCode, Subject: "s0"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	h.start(t, verify.StartRequest{To: numbers[5], CustomCode: simCode, ClientIP: "2001:db8::2", Subject: "s5"})
	ds, err := h.e.FraudDecisions(ctx, pv.FraudDecisionFilter{ServiceID: h.svc.ID, Reason: pv.FraudReasonIP})
	if err != nil || len(ds) != 1 || ds[0].IP != "203.0.113.9" {
		t.Fatalf("ip decisions = %+v, %v; want one for 203.0.113.9", ds, err)
	}
}

func TestFraudSettingsSaved(t *testing.T) {
	h := newFraudHarness(t, "", pv.FraudBlock)
	ctx := context.Background()
	got, err := h.e.SaveFraudSettings(ctx, &pv.FraudSettings{ServiceID: h.svc.ID, PrefixFloor: 5})
	if err != nil {
		t.Fatal(err)
	}
	if got.PrefixFloor != 5 || got.Mode != pv.FraudBlock || got.CountryFloor != fraud.DefaultCountryFloor {
		t.Errorf("settings %+v", got)
	}
	if res := attack(h, "+998901", 10, rotatingIP); res[""] != 5 {
		t.Errorf("allowed with a floor of 5 = %d, want 5", res[""])
	}
	_, err = h.e.SaveFraudSettings(ctx, &pv.FraudSettings{ServiceID: h.svc.ID, Mode: "loud"})
	wantCode(t, err, pv.EInvalidRequest)
	_, err = h.e.SaveFraudSettings(ctx, &pv.FraudSettings{ServiceID: "VA" + strings.Repeat("0", 32)})
	wantCode(t, err, pv.ENotFound)
}

// TestFraudSharedAcrossNodes: two engines on one database (two nodes)
// share the counters and the blocks.
func TestFraudSharedAcrossNodes(t *testing.T) { forEachStore(t, testFraudSharedAcrossNodes) }

func testFraudSharedAcrossNodes(t *testing.T, dbURL string) {
	if dbURL == "" {
		dbURL = "sqlite:" + t.TempDir() + "/shared.db"
	}
	a := newFraudHarness(t, dbURL, pv.FraudBlock)
	b := newFraudHarness(t, dbURL, pv.FraudBlock)
	ctx := context.Background()
	for i := range 20 {
		n := a
		if i%2 == 1 {
			n = b
		}
		n.start(t, verify.StartRequest{To: fmt.Sprintf("+998901%06d", i), CustomCode: simCode})
	}
	for _, n := range []*harness{a, b} {
		_, err := n.e.Start(ctx, verify.StartRequest{ServiceID: n.svc.ID, To: "+998901999999", CustomCode: simCode})
		wantCode(t, err, pv.EBlockedByFraud)
	}
}

// TestFraudConcurrentStarts: starts that race each other overshoot the
// budget by at most the number of starts in flight, and the counters lose
// no increment.
func TestFraudConcurrentStarts(t *testing.T) { forEachStore(t, testFraudConcurrentStarts) }

func testFraudConcurrentStarts(t *testing.T, dbURL string) {
	h := newFraudHarness(t, dbURL, pv.FraudBlock)
	const workers, each = 8, 10
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				_, err := h.e.Start(context.Background(), verify.StartRequest{ServiceID: h.svc.ID,
					To: fmt.Sprintf("+998901%03d%03d", w, i), CustomCode: simCode})
				if err != nil && pv.ErrorCode(err) != pv.EBlockedByFraud {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	queued := h.queued(t, "+998901")
	t.Logf("%d concurrent starts in %d workers: %d SMS queued (floor %d)", workers*each, workers, queued, fraud.DefaultPrefixFloor)
	if queued < fraud.DefaultPrefixFloor || queued > fraud.DefaultPrefixFloor+workers {
		t.Errorf("SMS queued = %d, want between the floor %d and the floor plus %d starts in flight", queued, fraud.DefaultPrefixFloor, workers)
	}
	if got := historyOf(t, h, "+998901").Sends; got != int64(queued) {
		t.Errorf("sends counted = %d, want %d (one per queued SMS)", got, queued)
	}
}

// TestCheckCountsConversions: an approval counts one conversion for its
// number's prefix (in the check's own transaction where the store can),
// whatever path the store writes it by; a refused check, and an approval of
// a test number, count none. Off mode still counts, so that turning
// protection on finds a history.
func TestCheckCountsConversions(t *testing.T) {
	tests := []struct {
		name      string
		mode      pv.FraudMode
		to, code  string
		subscribe bool // events make PostgreSQL take its locking path
		want      int64
	}{
		{"approved", pv.FraudBlock, "+998901000001", simCode, false, 1},
		{"approved with events", pv.FraudBlock, "+998901000001", simCode, true, 1},
		{"approved in off mode", pv.FraudOff, "+998901000001", simCode, false, 1},
		{"wrong code", pv.FraudBlock, "+998901000001", "000000", false, 0},
		{"test number", pv.FraudBlock, testNum, "123456", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, dbURL string) {
				h := newFraudHarness(t, dbURL, tt.mode)
				ctx := context.Background()
				if tt.subscribe {
					if _, _, err := h.e.CreateEventSubscription(ctx, h.svc.ID, "https://app.example/hook", nil); err != nil {
						t.Fatal(err)
					}
				}
				req := verify.StartRequest{To: tt.to}
				if tt.to != testNum {
					req.CustomCode = simCode
				}
				v := h.start(t, req)
				_, err := h.check(verify.CheckRequest{ID: v.ID, Code: tt.code})
				if (err == nil) != (tt.code == simCode || tt.to == testNum) {
					t.Fatalf("check: %v", err)
				}
				if got := historyOf(t, h, fraud.Prefix(tt.to)).Conversions; got != tt.want {
					t.Errorf("conversions counted = %d, want %d", got, tt.want)
				}
			})
		})
	}
}
