package verify_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/internal/testenv"
	"github.com/phoneverify/phoneverify/ratelimit/sqllimit"
	"github.com/phoneverify/phoneverify/store"
	"github.com/phoneverify/phoneverify/verify"
)

// alertObserver records refusals and alerts.
type alertObserver struct {
	recordingObserver
	alerts []string
}

func (o *alertObserver) Alert(serviceID, kind string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.alerts = append(o.alerts, kind)
}

func (o *alertObserver) snapshot() (refused, alerts []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.refused), slices.Clone(o.alerts)
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func lim(max int, window time.Duration) *pv.Limit { return &pv.Limit{Max: max, Window: window} }

// outboxRows counts the messages queued, whatever their state.
func outboxRows(t *testing.T, h *harness) int {
	t.Helper()
	var n int
	if err := h.store.DB().QueryRow(`SELECT COUNT(*) FROM outbox`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLayeredLimits drives each limit to its refusal and past its window.
func TestLayeredLimits(t *testing.T) {
	t.Parallel()
	type step struct {
		advance          time.Duration
		to, ip, subject  string
		want, wantParam  string // error code and param, "" for success
		wantRefusedLabel string
	}
	tests := []struct {
		name     string
		defaults verify.StartLimits
		tweak    func(*pv.Service)
		steps    []step
	}{
		{
			name:     "per number per day, beside the send window",
			defaults: verify.StartLimits{PerNumberDay: pv.Limit{Max: 3, Window: 24 * time.Hour}},
			tweak:    func(s *pv.Service) { s.MaxSends = 2; s.SendWindow = 10 * time.Minute },
			steps: []step{
				{to: nepal}, {to: nepal},
				{to: nepal, want: pv.ETooManyRequests, wantParam: "to", wantRefusedLabel: "per_number"},
				{advance: 11 * time.Minute, to: nepal},
				{to: nepal, want: pv.ETooManyRequests, wantParam: "to", wantRefusedLabel: "per_number_day"},
				{advance: 11 * time.Minute, to: nepal, want: pv.ETooManyRequests, wantParam: "to", wantRefusedLabel: "per_number_day"},
				{to: nepal2},
				{advance: 24 * time.Hour, to: nepal},
			},
		},
		{
			name:     "per subject",
			defaults: verify.StartLimits{PerSubject: pv.Limit{Max: 2, Window: time.Hour}},
			steps: []step{
				{to: "+9779812345601", subject: "u1"}, {to: "+9779812345602", subject: "u1"},
				{to: "+9779812345603", subject: "u1", want: pv.ETooManyRequests, wantParam: "subject", wantRefusedLabel: "per_subject"},
				{to: "+9779812345603", subject: "u2"},
				{to: "+9779812345604"}, // no subject: not counted
				{advance: time.Hour, to: "+9779812345605", subject: "u1"},
			},
		},
		{
			name:     "per IP and per IPv6 /64",
			defaults: verify.StartLimits{PerIP: pv.Limit{Max: 1, Window: time.Hour}},
			steps: []step{
				{to: "+9779812345601", ip: "203.0.113.7"},
				{to: "+9779812345602", ip: "203.0.113.7", want: pv.ETooManyRequests, wantRefusedLabel: "per_ip"},
				{to: "+9779812345602", ip: "2001:db8:1:2::1"},
				{to: "+9779812345603", ip: "2001:db8:1:2:abcd::1", want: pv.ETooManyRequests, wantRefusedLabel: "per_ip"},
				{to: "+9779812345603", ip: "2001:db8:1:3::1"},
			},
		},
		{
			name:     "per country",
			defaults: verify.StartLimits{PerCountry: pv.Limit{Max: 1, Window: time.Hour}},
			steps: []step{
				{to: "+9779812345601"},
				{to: "+9779812345602", want: pv.ETooManyRequests, wantRefusedLabel: "per_country"},
				{to: "+918123456789"},
			},
		},
		{
			name:     "a service's own setting replaces the default",
			defaults: verify.StartLimits{PerIP: pv.Limit{Max: 1, Window: time.Hour}},
			tweak:    func(s *pv.Service) { s.Limits.PerIP = lim(2, time.Hour) },
			steps: []step{
				{to: "+9779812345601", ip: "203.0.113.7"}, {to: "+9779812345602", ip: "203.0.113.7"},
				{to: "+9779812345603", ip: "203.0.113.7", want: pv.ETooManyRequests, wantRefusedLabel: "per_ip"},
			},
		},
		{
			name:     "a service may turn a default off",
			defaults: verify.StartLimits{PerIP: pv.Limit{Max: 1, Window: time.Hour}},
			tweak:    func(s *pv.Service) { s.Limits.PerIP = &pv.Limit{} },
			steps: []step{
				{to: "+9779812345601", ip: "203.0.113.7"}, {to: "+9779812345602", ip: "203.0.113.7"},
				{to: "+9779812345603", ip: "203.0.113.7"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			obs := &alertObserver{}
			h := newHarness(t, tt.tweak, withLimits(tt.defaults), func(c *verify.Config, _ *testenv.Clock) { c.Observer = obs })
			var wantRefused []string
			for i, s := range tt.steps {
				h.clock.Advance(s.advance)
				_, err := h.e.Start(context.Background(), verify.StartRequest{ServiceID: h.svc.ID, To: s.to, ClientIP: s.ip, Subject: s.subject})
				if s.want == "" {
					if err != nil {
						t.Fatalf("step %d (%s): %v, want success", i, s.to, err)
					}
					continue
				}
				e := wantCode(t, err, s.want)
				if e.Param != s.wantParam || e.RetryAfter <= 0 {
					t.Errorf("step %d: param %q retry after %s; want param %q and a Retry-After", i, e.Param, e.RetryAfter, s.wantParam)
				}
				wantRefused = append(wantRefused, s.wantRefusedLabel)
			}
			if got, _ := obs.snapshot(); !slices.Equal(got, wantRefused) {
				t.Errorf("refusals observed %q, want %q", got, wantRefused)
			}
		})
	}
}

// TestBudgetBreaker: the service's hourly SMS budget trips its breaker:
// starts are refused with 429 and Retry-After, one ALERT line is logged at
// ERROR and one Alert observed, and sends resume when the hour has room.
func TestBudgetBreaker(t *testing.T) {
	t.Parallel()
	obs := &alertObserver{}
	logs := &syncBuffer{}
	h := newHarness(t, nil, withLimits(verify.StartLimits{BudgetHour: pv.Limit{Max: 3, Window: time.Hour}}),
		func(c *verify.Config, _ *testenv.Clock) {
			c.Observer = obs
			c.Logger = slog.New(slog.NewTextHandler(logs, nil))
		})
	ctx := context.Background()
	for i := range 3 {
		h.start(t, verify.StartRequest{To: "+97798123456" + string(rune('0'+i)) + "1"})
		h.clock.Advance(time.Minute)
	}
	// A test number sends nothing, so it spends no budget and passes.
	h.start(t, verify.StartRequest{To: testNum})
	for i := range 3 {
		_, err := h.e.Start(ctx, verify.StartRequest{ServiceID: h.svc.ID, To: "+97798123457" + string(rune('0'+i)) + "1"})
		e := wantCode(t, err, pv.ETooManyRequests)
		if e.RetryAfter <= 0 || e.RetryAfter > time.Hour || !strings.Contains(e.Message, "budget") {
			t.Errorf("refusal %d: %q, Retry-After %s", i, e.Message, e.RetryAfter)
		}
		h.clock.Advance(time.Second)
	}
	if got := h.sent(t); got != 3 {
		t.Errorf("%d SMS sent, want the budget of 3", got)
	}
	refused, alerts := obs.snapshot()
	if !slices.Equal(alerts, []string{"sms_budget"}) || len(refused) != 3 || refused[0] != "budget" {
		t.Errorf("alerts %q refusals %q; want one sms_budget alert and 3 budget refusals", alerts, refused)
	}
	out := logs.String()
	if n := strings.Count(out, "ALERT sms budget exceeded"); n != 1 || !strings.Contains(out, "level=ERROR") ||
		!strings.Contains(out, "window=hour") || !strings.Contains(out, "limit=3") {
		t.Errorf("alert lines: %d in\n%s", n, out)
	}
	// The first send leaves the window an hour after it was made.
	h.clock.Advance(time.Hour - 3*time.Minute)
	h.start(t, verify.StartRequest{To: "+9779812345800"})
}

// TestGeoPermissions: a country outside the allow-list, or on the
// deny-list, is refused with 403 country_not_allowed (param to) before any
// message is queued.
func TestGeoPermissions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		allow, deny    []string
		to             string
		wantRefused    bool
		wantQueuedRows int
	}{
		{"allow-list refuses others", []string{"IN"}, nil, nepal, true, 0},
		{"allow-list admits its own", []string{"IN"}, nil, "+918123456789", false, 1},
		{"deny-list refuses its own", nil, []string{"NP"}, nepal, true, 0},
		{"deny-list admits others", nil, []string{"NP"}, "+918123456789", false, 1},
		{"no lists", nil, nil, nepal, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			obs := &alertObserver{}
			h := newHarness(t, func(s *pv.Service) { s.Limits.AllowCountries, s.Limits.DenyCountries = tt.allow, tt.deny },
				func(c *verify.Config, _ *testenv.Clock) { c.Observer = obs })
			_, err := h.e.Start(context.Background(), verify.StartRequest{ServiceID: h.svc.ID, To: tt.to})
			if tt.wantRefused {
				if e := wantCode(t, err, pv.ECountryNotAllowed); e.Param != "to" {
					t.Errorf("param = %q, want to", e.Param)
				}
				if refused, _ := obs.snapshot(); !slices.Equal(refused, []string{"geo"}) {
					t.Errorf("refusals %q, want [geo]", refused)
				}
			} else if err != nil {
				t.Fatalf("Start = %v", err)
			}
			if got := outboxRows(t, h); got != tt.wantQueuedRows {
				t.Errorf("%d outbox rows, want %d", got, tt.wantQueuedRows)
			}
		})
	}
	// Both lists at once are refused when the service is saved.
	svc := pv.NewService("x")
	svc.Limits.AllowCountries, svc.Limits.DenyCountries = []string{"IN"}, []string{"NP"}
	if err := verify.ValidateService(svc); pv.ErrorCode(err) != pv.EInvalidRequest {
		t.Errorf("ValidateService(allow and deny) = %v, want invalid_request", err)
	}
}

// TestBruteForceBound is an attacker who cycles start and wrong checks on
// one number for a simulated day, as fast as the service lets them: a new
// verification (5 attempts each) whenever the last is used up. The
// failed-check cap (10 per hour per number) must bound the codes actually
// compared to 24 × 10 = 240 in the day, so with 6-digit codes their chance
// of success is at most 240 / 10^6 = 0.024%. The per-number send limits are
// raised out of the way so that the cap alone is tested.
//
// It runs with the in-memory limiter, whose slot is taken before the check's
// transaction, and with the SQL limiter in the store's (SQLite) database,
// whose slot is taken inside it.
func TestBruteForceBound(t *testing.T) {
	t.Parallel()
	for _, sql := range []bool{false, true} {
		t.Run(limiterName(sql), func(t *testing.T) {
			t.Parallel()
			testBruteForceBound(t, sql)
		})
	}
}

func testBruteForceBound(t *testing.T, sql bool) {
	const (
		capPerHour = 10
		day        = 24 * time.Hour
		step       = 30 * time.Second
	)
	h := newHarness(t, func(s *pv.Service) { s.MaxSends = 1000; s.SendWindow = time.Minute; s.MaxAttempts = 5 },
		withCapLimiter(sql, verify.StartLimits{FailedChecks: pv.Limit{Max: capPerHour, Window: time.Hour}}))
	ctx := context.Background()
	var compared, refusedByCap, starts int
	end := h.clock.Now().Add(day)
	for h.clock.Now().Before(end) {
		if _, err := h.e.Start(ctx, verify.StartRequest{ServiceID: h.svc.ID, To: nepal}); err == nil {
			starts++
		}
		for range 5 {
			_, err := h.e.Check(ctx, verify.CheckRequest{ServiceID: h.svc.ID, To: nepal, Code: "000000"})
			switch e := pv.AsError(err); {
			case e == nil:
				// 000000 may be the real code, with probability 10^-6 per compare.
				compared++
			case e.Code == pv.EIncorrectCode:
				compared++
			case e.Code == pv.ETooManyRequests && e.Param == "code":
				refusedByCap++
			}
		}
		h.clock.Advance(step)
	}
	bound := 24 * capPerHour
	if compared > bound {
		t.Fatalf("%d codes compared in a day, want at most %d", compared, bound)
	}
	if compared < bound {
		t.Errorf("%d codes compared, want the attacker to reach the bound %d (the test would not show it holds)", compared, bound)
	}
	if refusedByCap == 0 || starts < 100 {
		t.Errorf("starts %d, refused by the cap %d: the attacker did not cycle", starts, refusedByCap)
	}
	t.Logf("simulated day: %d starts, %d codes compared (bound %d, p ≤ %.3f%%), %d checks refused by the cap",
		starts, compared, bound, float64(compared)/1e6*100, refusedByCap)
}

// TestFailedCheckCapByID: checks by id count against the same per-number
// cap, and a legitimate user still approves after waiting.
func TestFailedCheckCapByID(t *testing.T) {
	t.Parallel()
	for _, sql := range []bool{false, true} {
		t.Run(limiterName(sql), func(t *testing.T) {
			t.Parallel()
			testFailedCheckCapByID(t, sql)
		})
	}
}

// limiterName names the limiter withCapLimiter picks.
func limiterName(sql bool) string {
	if sql {
		return "SQLInStore"
	}
	return "Memory"
}

// withCapLimiter is withLimits, on the SQL limiter in the store's database
// if sql is set: the engine then takes the failed-check cap's slots inside
// the checks' own transactions.
func withCapLimiter(sql bool, limits verify.StartLimits) func(*verify.Config, *testenv.Clock) {
	return func(cfg *verify.Config, c *testenv.Clock) {
		withLimits(limits)(cfg, c)
		if sql {
			cfg.Limiter = sqllimit.NewOnStore(cfg.Store.(*store.Store), sqllimit.Options{Now: c.Now})
		}
	}
}

func testFailedCheckCapByID(t *testing.T, sql bool) {
	h := newHarness(t, func(s *pv.Service) { s.MaxAttempts = 10 },
		withCapLimiter(sql, verify.StartLimits{FailedChecks: pv.Limit{Max: 3, Window: time.Hour}}))
	if got := h.e.SlotsInCheck(); got != sql {
		t.Fatalf("slots taken in the check's transaction = %v, want %v", got, sql)
	}
	v := h.start(t, verify.StartRequest{To: nepal})
	code := h.last(t).Code
	for range 3 {
		_, err := h.check(verify.CheckRequest{ID: v.ID, Code: wrong(code)})
		wantCode(t, err, pv.EIncorrectCode)
	}
	_, err := h.check(verify.CheckRequest{ID: v.ID, Code: code})
	if e := wantCode(t, err, pv.ETooManyRequests); e.RetryAfter <= 0 || e.Param != "code" {
		t.Errorf("cap refusal: param %q Retry-After %s", e.Param, e.RetryAfter)
	}
	// The refused check compared nothing: the attempt was not counted.
	got, err := h.e.Get(context.Background(), h.svc.ID, v.ID)
	if err != nil || got.Attempts != 3 {
		t.Fatalf("attempts = %d, %v; want 3", got.Attempts, err)
	}
	h.clock.Advance(time.Hour)
	if _, err := h.check(verify.CheckRequest{ID: v.ID, Code: code}); err != nil && pv.ErrorCode(err) != pv.EVerificationExpired {
		t.Fatalf("check after the hour: %v", err)
	}
}

// TestScopes: risk_check:override is a known scope that keys get only on
// purpose.
func TestScopes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ctx := context.Background()
	if slices.Contains(verify.AllScopes, verify.ScopeRiskCheckOverride) {
		t.Errorf("AllScopes %q holds %s", verify.AllScopes, verify.ScopeRiskCheckOverride)
	}
	_, k, err := h.e.CreateAPIKey(ctx, h.svc.ID, "backend", []string{verify.ScopeSend, verify.ScopeRiskCheckOverride})
	if err != nil || !verify.HasScope(k, verify.ScopeRiskCheckOverride) {
		t.Fatalf("CreateAPIKey(override) = %v, %v", k, err)
	}
	_, k, err = h.e.CreateAPIKey(ctx, h.svc.ID, "default", nil)
	if err != nil || verify.HasScope(k, verify.ScopeRiskCheckOverride) {
		t.Errorf("default key scopes %v, %v; want no override", k.Scopes, err)
	}
	if _, _, err := h.e.CreateAPIKey(ctx, h.svc.ID, "bad", []string{"risk_check:everything"}); pv.ErrorCode(err) != pv.EInvalidRequest {
		t.Errorf("unknown scope: %v, want invalid_request", err)
	}
}

// TestKeyAddressRanges: a key restricted to ranges is accepted only from
// them (403 forbidden elsewhere), for native and Twilio-style keys.
func TestKeyAddressRanges(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ctx := context.Background()
	allowed, err := verify.ParseAllowedIPs("203.0.113.0/24, 2001:db8::/32, 198.51.100.9")
	if err != nil {
		t.Fatal(err)
	}
	raw, _, err := h.e.CreateAPIKeyWithIPs(ctx, h.svc.ID, "office", nil, allowed)
	if err != nil {
		t.Fatal(err)
	}
	creds, _, err := h.e.CreateCompatKeyWithIPs(ctx, h.svc.ID, "office twilio", allowed)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ip   string
		want string
	}{
		{"203.0.113.200", ""},
		{"::ffff:203.0.113.5", ""},
		{"2001:db8:ffff::1", ""},
		{"198.51.100.9", ""},
		{"198.51.100.10", pv.EForbidden},
		{"192.0.2.1", pv.EForbidden},
		{"", pv.EForbidden},
	}
	for _, tt := range tests {
		_, err := h.e.Authenticate(ctx, raw, tt.ip)
		if pv.ErrorCode(err) != tt.want {
			t.Errorf("Authenticate from %q = %v, want %q", tt.ip, err, tt.want)
		}
		_, _, err = h.e.AuthenticateCompat(ctx, creds.AccountSID, creds.Secret, tt.ip)
		if pv.ErrorCode(err) != tt.want {
			t.Errorf("AuthenticateCompat from %q = %v, want %q", tt.ip, err, tt.want)
		}
	}
	if _, err := verify.ParseAllowedIPs("10.0.0.0/33"); pv.ErrorCode(err) != pv.EInvalidRequest {
		t.Errorf("ParseAllowedIPs(bad) = %v, want invalid_request", err)
	}
}

// TestKeyLastUsed: the last use is recorded, at most once a minute.
func TestKeyLastUsed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	ctx := context.Background()
	raw, k, err := h.e.CreateAPIKey(ctx, h.svc.ID, "ci", nil)
	if err != nil {
		t.Fatal(err)
	}
	lastUsed := func() *time.Time {
		got, err := h.store.APIKeyByHash(ctx, k.Hash)
		if err != nil {
			t.Fatal(err)
		}
		return got.LastUsedAt
	}
	if lastUsed() != nil {
		t.Fatal("a new key has a last use")
	}
	first := h.clock.Now()
	steps := []struct {
		advance time.Duration
		want    time.Time
	}{
		{0, first},
		{30 * time.Second, first}, // within the minute: not written
		{31 * time.Second, first.Add(61 * time.Second)}, // a minute on: written
	}
	for i, s := range steps {
		h.clock.Advance(s.advance)
		if _, err := h.e.Authenticate(ctx, raw, ""); err != nil {
			t.Fatal(err)
		}
		if got := lastUsed(); got == nil || !got.Equal(s.want) {
			t.Errorf("step %d: last used %v, want %v", i, got, s.want)
		}
	}
}

// TestRevocationAcrossNodes: two engines on one database (two nodes); a
// key revoked on one fails on the other at once.
func TestRevocationAcrossNodes(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) {
		testRevocationAcrossNodes(t, "sqlite:"+filepath.Join(t.TempDir(), "shared.db"))
	})
	t.Run("Postgres", func(t *testing.T) { testRevocationAcrossNodes(t, testenv.NewPostgresDatabase(t)) })
}

func testRevocationAcrossNodes(t *testing.T, dbURL string) {
	a := newHarnessOn(t, dbURL, nil)
	b := newHarnessOn(t, dbURL, nil)
	ctx := context.Background()
	raw, k, err := a.e.CreateAPIKey(ctx, a.svc.ID, "shared", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.e.Authenticate(ctx, raw, "203.0.113.1"); err != nil {
		t.Fatalf("node B before revocation: %v", err)
	}
	if err := a.e.RevokeAPIKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.e.Authenticate(ctx, raw, "203.0.113.1"); pv.ErrorCode(err) != pv.EUnauthorized {
		t.Fatalf("node B right after revocation on A: %v, want unauthorized", err)
	}
	if _, err := a.e.Authenticate(ctx, raw, "203.0.113.1"); pv.ErrorCode(err) != pv.EUnauthorized {
		t.Fatalf("node A after revocation: %v, want unauthorized", err)
	}
}
