package verify_test

import (
	"bytes"
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/internal/testenv"
	"github.com/phoneverify/phoneverify/otp"
	"github.com/phoneverify/phoneverify/outbox"
	"github.com/phoneverify/phoneverify/store"
	"github.com/phoneverify/phoneverify/token"
	"github.com/phoneverify/phoneverify/verify"
)

// phoneSim records what a phone would receive; it can be told to fail.
type phoneSim struct {
	mu   sync.Mutex
	msgs []pv.Message
	fail error
}

func (p *phoneSim) Send(_ context.Context, m *pv.Message) (*pv.SendResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return nil, p.fail
	}
	p.msgs = append(p.msgs, *m)
	return &pv.SendResult{Gateway: "sim"}, nil
}

func (p *phoneSim) last(t *testing.T) pv.Message {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.msgs) == 0 {
		t.Fatal("no message was sent")
	}
	return p.msgs[len(p.msgs)-1]
}

func (p *phoneSim) count() int { p.mu.Lock(); defer p.mu.Unlock(); return len(p.msgs) }

// harness runs an engine and, for delivery, an outbox dispatcher that
// sends to phone; last and sent drain the outbox first, as the workers of a
// running node would.
type harness struct {
	e      *verify.Engine
	clock  *testenv.Clock
	phone  *phoneSim
	outbox *outbox.Dispatcher
	svc    *pv.Service
	store  *store.Store
	// cfg is the engine's configuration.
	cfg verify.Config
}

// drain delivers every message due now.
func (h *harness) drain(t *testing.T) {
	t.Helper()
	if _, err := h.outbox.Drain(context.Background()); err != nil {
		t.Fatalf("Drain: %v", err)
	}
}

// last drains the outbox and returns the last message the phone received.
func (h *harness) last(t *testing.T) pv.Message {
	t.Helper()
	h.drain(t)
	return h.phone.last(t)
}

// sent drains the outbox and returns how many messages the phone received.
func (h *harness) sent(t *testing.T) int {
	t.Helper()
	h.drain(t)
	return h.phone.count()
}

const (
	nepal   = "+9779812345678"
	nepal2  = "+9779812345679"
	testNum = "+15005550006"
)

// newHarness starts an engine on a real SQLite file; tweak adjusts the default
// service before it is created.
func newHarness(t *testing.T, tweak func(*pv.Service), configure ...func(*verify.Config, *testenv.Clock)) *harness {
	t.Helper()
	return newHarnessOn(t, "", tweak, configure...)
}

// forEachStore runs test on SQLite and on PostgreSQL (a fresh database, or
// a skip without PHONEVERIFY_TEST_POSTGRES_URL), passing the database URL
// ("" for SQLite) for newHarnessOn: the rules must hold on both stores.
func forEachStore(t *testing.T, test func(t *testing.T, dbURL string)) {
	t.Run("SQLite", func(t *testing.T) { test(t, "") })
	t.Run("Postgres", func(t *testing.T) { test(t, testenv.NewPostgresDatabase(t)) })
}

// newHarnessOn is newHarness on the database at dbURL, or on a new SQLite
// file if dbURL is empty.
func newHarnessOn(t *testing.T, dbURL string, tweak func(*pv.Service), configure ...func(*verify.Config, *testenv.Clock)) *harness {
	t.Helper()
	ctx := context.Background()
	if dbURL == "" {
		dbURL = "sqlite:" + filepath.Join(t.TempDir(), "pv.db")
	}
	st, err := store.Open(ctx, dbURL, store.Options{MaxOpenConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	secret := bytes.Repeat([]byte("k"), 32)
	c := testenv.NewClock(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	hasher, _ := otp.NewHasher(secret)
	keys, err := token.NewKeyring(ctx, st, secret, c.Now(), token.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sealer, _ := otp.NewSealer(secret)
	sim := &phoneSim{}
	cfg := verify.Config{Store: st, Sealer: sealer, Hasher: hasher, Keys: keys, Now: c.Now,
		DefaultRegion: "NP", TestNumbers: map[string]string{testNum: "123456"}, ServiceCacheTTL: -1}
	for _, f := range configure {
		f(&cfg, c)
	}
	e, err := verify.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d, err := outbox.New(outbox.Config{Store: st, Sender: sim, Sealer: sealer, Failer: e, Now: c.Now,
		Rand: func() float64 { return 0 }})
	if err != nil {
		t.Fatal(err)
	}
	seed := pv.NewService("Example")
	if tweak != nil {
		tweak(seed)
	}
	svc, err := e.EnsureDefaultService(ctx, seed)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{e: e, clock: c, phone: sim, outbox: d, svc: svc, store: st, cfg: cfg}
}

func (h *harness) start(t *testing.T, req verify.StartRequest) *pv.Verification {
	t.Helper()
	req.ServiceID = h.svc.ID
	v, err := h.e.Start(context.Background(), req)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return v
}

func (h *harness) check(req verify.CheckRequest) (*verify.CheckResult, error) {
	req.ServiceID = h.svc.ID
	return h.e.Check(context.Background(), req)
}

func wantCode(t *testing.T, err error, code string) *pv.Error {
	t.Helper()
	if got := pv.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
	return pv.AsError(err)
}

func wrong(code string) string {
	b := []byte(code)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}

func TestStartAndCheck(t *testing.T) { forEachStore(t, testStartAndCheck) }

func testStartAndCheck(t *testing.T, dbURL string) {
	h := newHarnessOn(t, dbURL, nil)
	v := h.start(t, verify.StartRequest{To: "981-234-5678", Subject: "user-1"})
	if v.To != nepal || v.Country != "NP" || v.Status != pv.StatusPending || v.SendCount != 1 {
		t.Fatalf("started %+v", v)
	}
	if !v.ExpiresAt.Equal(h.clock.Now().Add(10 * time.Minute)) {
		t.Errorf("expires_at = %v, want now+10m", v.ExpiresAt)
	}
	m := h.last(t)
	if m.To != nepal || !otp.ValidFormat(m.Code, 6) {
		t.Fatalf("message %+v", m)
	}
	if got, want := m.Body, "Your Example verification code is "+m.Code; got != want && h.svc.Template == "" && !bytes.Contains([]byte(got), []byte(m.Code)) {
		t.Errorf("body = %q, want it to contain the code", got)
	}
	res, err := h.check(verify.CheckRequest{ID: v.ID, Code: m.Code, Subject: "user-1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Verification.Status != pv.StatusApproved || res.Verification.Attempts != 1 || res.Token == "" {
		t.Fatalf("check result %+v", res.Verification)
	}
	claims, err := h.e.Introspect(context.Background(), h.svc.ID, res.Token)
	if err != nil {
		t.Fatal(err)
	}
	if claims.PhoneNumber != nepal || claims.Subject != "user-1" || claims.VerificationID != v.ID {
		t.Errorf("claims %+v", claims)
	}
	reg, err := h.e.VerifiedPhone(context.Background(), h.svc.ID, "user-1")
	if err != nil || reg.Phone != nepal {
		t.Errorf("registry: %+v, %v", reg, err)
	}
	_, err = h.check(verify.CheckRequest{ID: v.ID, Code: m.Code, Subject: "user-1"})
	wantCode(t, err, pv.EAlreadyApproved)
}

func TestResendKillsOldCode(t *testing.T) { forEachStore(t, testResendKillsOldCode) }

func testResendKillsOldCode(t *testing.T, dbURL string) {
	h := newHarnessOn(t, dbURL, nil)
	v1 := h.start(t, verify.StartRequest{To: nepal})
	first := h.last(t).Code
	h.clock.Advance(30 * time.Second)
	v2 := h.start(t, verify.StartRequest{To: nepal})
	second := h.last(t).Code
	if v2.ID != v1.ID || v2.SendCount != 2 {
		t.Fatalf("resend: id %s→%s send_count %d, want same id and 2", v1.ID, v2.ID, v2.SendCount)
	}
	if first == second {
		t.Fatal("resend repeated the previous code")
	}
	if !v2.ExpiresAt.Equal(h.clock.Now().Add(10 * time.Minute)) {
		t.Errorf("resend expires_at = %v, want a full new lifetime", v2.ExpiresAt)
	}
	_, err := h.check(verify.CheckRequest{To: nepal, Code: first})
	if e := wantCode(t, err, pv.EIncorrectCode); *e.AttemptsRemaining != 4 {
		t.Errorf("attempts_remaining = %d, want 4", *e.AttemptsRemaining)
	}
	if _, err := h.check(verify.CheckRequest{To: nepal, Code: second}); err != nil {
		t.Fatalf("new code: %v", err)
	}
}

func TestNeverRepeatsPreviousCode(t *testing.T) {
	// A 4-digit space makes a repeat likely within a few hundred resends
	// if the rule were missing.
	h := newHarness(t, func(s *pv.Service) { s.CodeLength = 4; s.MaxSends = 1000; s.SendWindow = time.Second })
	prev := ""
	for i := range 300 {
		h.clock.Advance(2 * time.Second)
		h.start(t, verify.StartRequest{To: nepal})
		code := h.last(t).Code
		if code == prev {
			t.Fatalf("send %d repeated the previous code", i)
		}
		prev = code
	}
}

func TestBindingChangeReplacesVerification(t *testing.T) {
	forEachStore(t, testBindingChangeReplacesVerification)
}

func testBindingChangeReplacesVerification(t *testing.T, dbURL string) {
	h := newHarnessOn(t, dbURL, nil)
	v1 := h.start(t, verify.StartRequest{To: nepal, Amount: "10.00", Payee: "shop"})
	v2 := h.start(t, verify.StartRequest{To: nepal, Amount: "99.00", Payee: "shop"})
	if v1.ID == v2.ID {
		t.Fatal("a start with another amount resent the old verification")
	}
	old, err := h.e.Get(context.Background(), h.svc.ID, v1.ID)
	if err != nil || old.Status != pv.StatusCanceled {
		t.Fatalf("old verification: %+v %v, want canceled", old, err)
	}
}

func TestExpiry(t *testing.T) { forEachStore(t, testExpiry) }

func testExpiry(t *testing.T, dbURL string) {
	h := newHarnessOn(t, dbURL, func(s *pv.Service) { s.CodeTTL = 45 * time.Second })
	v := h.start(t, verify.StartRequest{To: nepal})
	code := h.last(t).Code
	h.clock.Advance(45 * time.Second)
	got, _ := h.e.Get(context.Background(), h.svc.ID, v.ID)
	if got.Status != pv.StatusExpired {
		t.Errorf("status after lifetime = %s, want expired", got.Status)
	}
	_, err := h.check(verify.CheckRequest{ID: v.ID, Code: code})
	wantCode(t, err, pv.EVerificationExpired)
	_, err = h.check(verify.CheckRequest{ID: v.ID, Code: code})
	wantCode(t, err, pv.EVerificationExpired)
	v2 := h.start(t, verify.StartRequest{To: nepal})
	if v2.ID == v.ID || v2.SendCount != 1 {
		t.Errorf("start after expiry: id %s send_count %d, want a new verification", v2.ID, v2.SendCount)
	}
}

func TestExpireDue(t *testing.T) {
	h := newHarness(t, nil)
	v := h.start(t, verify.StartRequest{To: nepal})
	h.clock.Advance(11 * time.Minute)
	n, err := h.e.ExpireDue(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("ExpireDue = %d, %v; want 1", n, err)
	}
	got, _ := h.store.Verification(context.Background(), h.svc.ID, v.ID)
	if got.Status != pv.StatusExpired {
		t.Errorf("stored status %s, want expired", got.Status)
	}
}

func TestSendLimit(t *testing.T) { forEachStore(t, testSendLimit) }

func testSendLimit(t *testing.T, dbURL string) {
	h := newHarnessOn(t, dbURL, nil) // 5 per 10 minutes
	for range 5 {
		h.start(t, verify.StartRequest{To: nepal})
		// Deliver each before the next: an unsent message whose code a
		// resend replaced is given up, not sent.
		h.drain(t)
		h.clock.Advance(time.Minute)
	}
	// Now 5 minutes after the first send: the sixth must wait 5 more minutes.
	_, err := h.e.Start(context.Background(), verify.StartRequest{ServiceID: h.svc.ID, To: nepal})
	e := wantCode(t, err, pv.ETooManyRequests)
	if e.RetryAfter != 5*time.Minute {
		t.Errorf("RetryAfter = %v, want 5m", e.RetryAfter)
	}
	if h.sent(t) != 5 {
		t.Errorf("sent %d messages, want 5", h.sent(t))
	}
	// Other numbers are unaffected.
	h.start(t, verify.StartRequest{To: nepal2})
	h.clock.Advance(5 * time.Minute)
	h.start(t, verify.StartRequest{To: nepal})
}

func TestAttemptLimit(t *testing.T) { forEachStore(t, testAttemptLimit) }

func testAttemptLimit(t *testing.T, dbURL string) {
	h := newHarnessOn(t, dbURL, nil)
	v := h.start(t, verify.StartRequest{To: nepal})
	code := h.last(t).Code
	for i := 1; i <= 5; i++ {
		_, err := h.check(verify.CheckRequest{ID: v.ID, Code: wrong(code)})
		e := wantCode(t, err, pv.EIncorrectCode)
		if got, want := *e.AttemptsRemaining, 5-i; got != want {
			t.Errorf("attempt %d: remaining %d, want %d", i, got, want)
		}
	}
	got, _ := h.e.Get(context.Background(), h.svc.ID, v.ID)
	if got.Status != pv.StatusMaxAttemptsReached || got.Attempts != 5 {
		t.Fatalf("after 5 wrong codes: %s with %d attempts", got.Status, got.Attempts)
	}
	_, err := h.check(verify.CheckRequest{ID: v.ID, Code: code})
	wantCode(t, err, pv.EMaxAttemptsReached)
	got, _ = h.e.Get(context.Background(), h.svc.ID, v.ID)
	if got.Attempts != 5 {
		t.Errorf("attempts after a refused check = %d, want 5", got.Attempts)
	}
}

func TestResendKeepsAttempts(t *testing.T) {
	h := newHarness(t, nil)
	v := h.start(t, verify.StartRequest{To: nepal})
	for range 3 {
		_, _ = h.check(verify.CheckRequest{ID: v.ID, Code: wrong(h.last(t).Code)})
	}
	v = h.start(t, verify.StartRequest{To: nepal})
	if v.Attempts != 3 {
		t.Errorf("attempts after resend = %d, want 3 (a resend must not grant new guesses)", v.Attempts)
	}
}

func TestBindings(t *testing.T) {
	tests := []struct {
		name  string
		start verify.StartRequest
		check verify.CheckRequest
		code  string // error code, "" for approval
		param string
	}{
		{"subject matches", verify.StartRequest{Subject: "alice"}, verify.CheckRequest{Subject: "alice"}, "", ""},
		{"other subject", verify.StartRequest{Subject: "alice"}, verify.CheckRequest{Subject: "mallory"}, pv.EForbidden, "subject"},
		{"subject missing", verify.StartRequest{Subject: "alice"}, verify.CheckRequest{}, pv.EForbidden, "subject"},
		{"subject added", verify.StartRequest{}, verify.CheckRequest{Subject: "mallory"}, pv.EForbidden, "subject"},
		{"amount and payee match", verify.StartRequest{Amount: "10.00", Payee: "shop"}, verify.CheckRequest{Amount: "10.00", Payee: "shop"}, "", ""},
		{"other amount", verify.StartRequest{Amount: "10.00", Payee: "shop"}, verify.CheckRequest{Amount: "1000.00", Payee: "shop"}, pv.EForbidden, "amount"},
		{"other payee", verify.StartRequest{Amount: "10.00", Payee: "shop"}, verify.CheckRequest{Amount: "10.00", Payee: "thief"}, pv.EForbidden, "payee"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			tt.start.To = nepal
			v := h.start(t, tt.start)
			tt.check.ID, tt.check.Code = v.ID, h.last(t).Code
			res, err := h.check(tt.check)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("want approval, got %v", err)
				}
				if res.Verification.Subject != tt.start.Subject {
					t.Errorf("subject %q", res.Verification.Subject)
				}
				c, err := h.e.Introspect(context.Background(), h.svc.ID, res.Token)
				if err != nil || c.Amount != tt.start.Amount || c.Payee != tt.start.Payee {
					t.Errorf("token claims %+v, %v; want amount and payee of the start", c, err)
				}
				return
			}
			e := wantCode(t, err, tt.code)
			if e.Param != tt.param {
				t.Errorf("param = %q, want %q", e.Param, tt.param)
			}
			got, _ := h.e.Get(context.Background(), h.svc.ID, v.ID)
			if got.Status != pv.StatusPending || got.Attempts != 1 {
				t.Errorf("after a refused binding: %s, %d attempts; want pending with the attempt counted", got.Status, got.Attempts)
			}
		})
	}
}

func TestRegistryRules(t *testing.T) {
	tests := []struct {
		name  string
		tweak func(*pv.Service)
		next  verify.StartRequest
		code  string
	}{
		{"phone in use", nil, verify.StartRequest{To: nepal, Subject: "bob"}, pv.EPhoneInUse},
		{"already verified", nil, verify.StartRequest{To: nepal, Subject: "alice"}, pv.EAlreadyVerified},
		{"alice moves to a new phone", nil, verify.StartRequest{To: nepal2, Subject: "alice"}, ""},
		{"no subject is unbound", nil, verify.StartRequest{To: nepal}, ""},
		{"phone sharing allowed", func(s *pv.Service) { s.OneSubjectPerPhone = false }, verify.StartRequest{To: nepal, Subject: "bob"}, ""},
		{"re-verification allowed", func(s *pv.Service) { s.RejectAlreadyVerified = false }, verify.StartRequest{To: nepal, Subject: "alice"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.tweak)
			v := h.start(t, verify.StartRequest{To: nepal, Subject: "alice"})
			if _, err := h.check(verify.CheckRequest{ID: v.ID, Code: h.last(t).Code, Subject: "alice"}); err != nil {
				t.Fatal(err)
			}
			tt.next.ServiceID = h.svc.ID
			_, err := h.e.Start(context.Background(), tt.next)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("want success, got %v", err)
				}
				return
			}
			wantCode(t, err, tt.code)
		})
	}
}

func TestCancel(t *testing.T) { forEachStore(t, testCancel) }

func testCancel(t *testing.T, dbURL string) {
	h := newHarnessOn(t, dbURL, nil)
	v := h.start(t, verify.StartRequest{To: nepal})
	code := h.last(t).Code
	c, err := h.e.Cancel(context.Background(), h.svc.ID, v.ID)
	if err != nil || c.Status != pv.StatusCanceled {
		t.Fatalf("Cancel: %+v %v", c, err)
	}
	_, err = h.check(verify.CheckRequest{ID: v.ID, Code: code})
	wantCode(t, err, pv.EVerificationCanceled)
	_, err = h.e.Cancel(context.Background(), h.svc.ID, v.ID)
	wantCode(t, err, pv.EVerificationCanceled)
	_, err = h.e.Cancel(context.Background(), h.svc.ID, "VE00000000000000000000000000000000")
	wantCode(t, err, pv.ENotFound)
}

func TestBadInput(t *testing.T) {
	h := newHarness(t, nil)
	v := h.start(t, verify.StartRequest{To: nepal})
	starts := []struct {
		name  string
		req   verify.StartRequest
		code  string
		param string
	}{
		{"empty number", verify.StartRequest{}, pv.EInvalidRequest, "to"},
		{"letters", verify.StartRequest{To: "call me"}, pv.EInvalidPhoneNumber, "to"},
		{"too short", verify.StartRequest{To: "+97798"}, pv.EInvalidPhoneNumber, "to"},
		{"landline", verify.StartRequest{To: "+442079460958"}, pv.EUnsupportedNumberType, "to"},
		{"toll free", verify.StartRequest{To: "+18002752273"}, pv.EUnsupportedNumberType, "to"},
		{"voice channel", verify.StartRequest{To: nepal, Channel: "call"}, pv.EInvalidRequest, "channel"},
		{"bad locale", verify.StartRequest{To: nepal, Locale: "not a locale!"}, pv.EInvalidRequest, "locale"},
		{"bad app hash", verify.StartRequest{To: nepal, AppHash: "short"}, pv.EInvalidRequest, "app_hash"},
		{"control char subject", verify.StartRequest{To: nepal, Subject: "a\nb"}, pv.EInvalidRequest, "subject"},
	}
	for _, tt := range starts {
		t.Run("start/"+tt.name, func(t *testing.T) {
			tt.req.ServiceID = h.svc.ID
			_, err := h.e.Start(context.Background(), tt.req)
			if e := wantCode(t, err, tt.code); e.Param != tt.param {
				t.Errorf("param = %q, want %q", e.Param, tt.param)
			}
		})
	}
	checks := []struct {
		name string
		req  verify.CheckRequest
		code string
	}{
		{"letters in code", verify.CheckRequest{ID: v.ID, Code: "12345a"}, pv.EInvalidRequest},
		{"short code", verify.CheckRequest{ID: v.ID, Code: "12345"}, pv.EInvalidRequest},
		{"no code", verify.CheckRequest{ID: v.ID}, pv.EInvalidRequest},
		{"no target", verify.CheckRequest{Code: "123456"}, pv.EInvalidRequest},
		{"both targets", verify.CheckRequest{ID: v.ID, To: nepal, Code: "123456"}, pv.EInvalidRequest},
		{"malformed id", verify.CheckRequest{ID: "VE'; drop table", Code: "123456"}, pv.ENotFound},
		{"unknown id", verify.CheckRequest{ID: "VE00000000000000000000000000000000", Code: "123456"}, pv.ENotFound},
		{"unknown number", verify.CheckRequest{To: nepal2, Code: "123456"}, pv.ENotFound},
	}
	for _, tt := range checks {
		t.Run("check/"+tt.name, func(t *testing.T) {
			_, err := h.check(tt.req)
			wantCode(t, err, tt.code)
		})
	}
	got, _ := h.e.Get(context.Background(), h.svc.ID, v.ID)
	if got.Attempts != 0 {
		t.Errorf("malformed checks counted %d attempts, want 0", got.Attempts)
	}
}

func TestTestNumber(t *testing.T) {
	h := newHarness(t, nil)
	v := h.start(t, verify.StartRequest{To: "+1 500 555 0006"})
	if h.sent(t) != 0 {
		t.Fatal("a message was sent to a test number")
	}
	if msgs, err := h.e.Messages(context.Background(), h.svc.ID, v.ID); err != nil || len(msgs) != 0 {
		t.Fatalf("test number outbox = %d messages (%v), want none", len(msgs), err)
	}
	if v.To != testNum {
		t.Errorf("to = %s", v.To)
	}
	if _, err := h.check(verify.CheckRequest{To: testNum, Code: "123456"}); err != nil {
		t.Fatalf("fixed code: %v", err)
	}
}

// TestGatewayFailure: a start returns before sending; a message the gateway
// refuses for good fails its verification, one it cannot take for now is
// retried, and neither leaves a code behind that nobody received.
func TestGatewayFailure(t *testing.T) { forEachStore(t, testGatewayFailure) }

func testGatewayFailure(t *testing.T, dbURL string) {
	h := newHarnessOn(t, dbURL, nil)
	h.phone.fail = &pv.DeliveryError{Gateway: "sim", Permanent: true, Reason: "invalid number"}
	v := h.start(t, verify.StartRequest{To: nepal})
	if v.Status != pv.StatusPending {
		t.Fatalf("status after start = %s, want pending (sending happens later)", v.Status)
	}
	h.drain(t)
	got, err := h.e.Get(context.Background(), h.svc.ID, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != pv.StatusFailed {
		t.Fatalf("status after a permanent refusal = %s, want failed", got.Status)
	}
	msgs, err := h.e.Messages(context.Background(), h.svc.ID, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || msgs[0].Status != pv.MessageFailed || msgs[0].Error == "" {
		t.Fatalf("history = %+v, want one failed message with its error", msgs)
	}

	h.phone.fail = &pv.DeliveryError{Gateway: "sim", Reason: "503"}
	v2 := h.start(t, verify.StartRequest{To: nepal})
	if v2.SendCount != 1 || v2.ID == v.ID {
		t.Errorf("after a failed send the next start should be a new verification, got send_count %d", v2.SendCount)
	}
	h.drain(t)
	if got, _ := h.e.Get(context.Background(), h.svc.ID, v2.ID); got.Status != pv.StatusPending {
		t.Fatalf("status after a temporary error = %s, want pending", got.Status)
	}
	h.phone.fail = nil
	h.clock.Advance(time.Second) // the first retry is due after MinBackoff/2 with no jitter
	code := h.last(t).Code
	if _, err := h.check(verify.CheckRequest{ID: v2.ID, Code: code}); err != nil {
		t.Fatalf("check after the retry delivered: %v", err)
	}
}

func TestIntrospectRejects(t *testing.T) {
	h := newHarness(t, func(s *pv.Service) { s.TokenTTL = time.Minute })
	v := h.start(t, verify.StartRequest{To: nepal})
	res, err := h.check(verify.CheckRequest{ID: v.ID, Code: h.last(t).Code})
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.e.Introspect(context.Background(), "VAother", res.Token)
	wantCode(t, err, pv.EInvalidToken)
	_, err = h.e.Introspect(context.Background(), h.svc.ID, res.Token+"x")
	wantCode(t, err, pv.EInvalidToken)
	h.clock.Advance(time.Minute)
	_, err = h.e.Introspect(context.Background(), h.svc.ID, res.Token)
	wantCode(t, err, pv.EInvalidToken)
}

// TestConcurrentChecks hammers one verification with right and wrong codes at
// once: attempts never exceed the maximum and at most one check approves.
func TestConcurrentChecks(t *testing.T) { forEachStore(t, testConcurrentChecks) }

func testConcurrentChecks(t *testing.T, dbURL string) {
	h := newHarnessOn(t, dbURL, nil)
	v := h.start(t, verify.StartRequest{To: nepal})
	code := h.last(t).Code
	var wg sync.WaitGroup
	var mu sync.Mutex
	approvals, outcomes := 0, map[string]int{}
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := wrong(code)
			if i%7 == 0 {
				c = code
			}
			_, err := h.check(verify.CheckRequest{ID: v.ID, Code: c})
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				approvals++
			}
			outcomes[pv.ErrorCode(err)]++
		}()
	}
	wg.Wait()
	got, _ := h.e.Get(context.Background(), h.svc.ID, v.ID)
	if approvals > 1 {
		t.Errorf("%d approvals, want at most 1", approvals)
	}
	if got.Attempts > 5 {
		t.Errorf("attempts = %d, want at most 5", got.Attempts)
	}
	if counted := outcomes[""] + outcomes[pv.EIncorrectCode]; counted != got.Attempts {
		t.Errorf("%d checks were evaluated but %d attempts recorded (%v)", counted, got.Attempts, outcomes)
	}
	t.Logf("outcomes %v, final status %s with %d attempts", outcomes, got.Status, got.Attempts)
}

func TestCodeNeverStoredInClear(t *testing.T) {
	h := newHarness(t, nil)
	v := h.start(t, verify.StartRequest{To: nepal})
	code := h.last(t).Code
	got, _ := h.store.Verification(context.Background(), h.svc.ID, v.ID)
	if bytes.Contains(got.CodeHash, []byte(code)) || len(got.CodeHash) != 32 {
		t.Errorf("stored code hash %x looks wrong", got.CodeHash)
	}
}
