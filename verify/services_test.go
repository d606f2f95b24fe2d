package verify_test

import (
	"context"
	"strings"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/message"
	"github.com/phoneverify/phoneverify/verify"
)

func (h *harness) setFeatures(t *testing.T, f pv.ServiceFeatures) {
	t.Helper()
	if err := h.e.UpdateService(context.Background(), h.svc, &f); err != nil {
		t.Fatal(err)
	}
}

func TestStartFeatures(t *testing.T) {
	tests := []struct {
		name      string
		features  pv.ServiceFeatures
		req       verify.StartRequest
		wantCode  string
		wantParam string
		check     func(t *testing.T, m pv.Message)
	}{
		{name: "custom code not enabled", req: verify.StartRequest{To: nepal, CustomCode: "1234"}, wantCode: pv.EInvalidRequest, wantParam: "custom_code"},
		{name: "custom code too short", features: pv.ServiceFeatures{CustomCodeEnabled: true},
			req: verify.StartRequest{To: nepal, CustomCode: "123"}, wantCode: pv.EInvalidRequest, wantParam: "custom_code"},
		{name: "custom code", features: pv.ServiceFeatures{CustomCodeEnabled: true}, req: verify.StartRequest{To: nepal, CustomCode: "4321"},
			check: func(t *testing.T, m pv.Message) {
				if m.Code != "4321" {
					t.Errorf("sent code %q, want the custom code", m.Code)
				}
			}},
		{name: "PSD2 without amount", features: pv.ServiceFeatures{PSD2Enabled: true}, req: verify.StartRequest{To: nepal, Payee: "Acme"},
			wantCode: pv.EInvalidRequest, wantParam: "amount"},
		{name: "PSD2 without payee", features: pv.ServiceFeatures{PSD2Enabled: true}, req: verify.StartRequest{To: nepal, Amount: "€5"},
			wantCode: pv.EInvalidRequest, wantParam: "payee"},
		{name: "PSD2", features: pv.ServiceFeatures{PSD2Enabled: true}, req: verify.StartRequest{To: nepal, Amount: "€5", Payee: "Acme"},
			check: func(t *testing.T, m pv.Message) {
				if !strings.Contains(m.Body, "You are about to send €5 to Acme.") {
					t.Errorf("body %q lacks the PSD2 sentence", m.Body)
				}
			}},
		{name: "amount without PSD2 is a binding only", req: verify.StartRequest{To: nepal, Amount: "€5", Payee: "Acme"},
			check: func(t *testing.T, m pv.Message) {
				if strings.Contains(m.Body, "Acme") {
					t.Errorf("body %q names the payee without PSD2", m.Body)
				}
			}},
		{name: "warning", features: pv.ServiceFeatures{DoNotShareWarning: true}, req: verify.StartRequest{To: nepal},
			check: func(t *testing.T, m pv.Message) {
				if !strings.Contains(m.Body, message.DoNotShareWarning) {
					t.Errorf("body %q lacks the warning", m.Body)
				}
			}},
		{name: "app name", req: verify.StartRequest{To: nepal, AppName: "Shop"},
			check: func(t *testing.T, m pv.Message) {
				if !strings.Contains(m.Body, "Shop") || strings.Contains(m.Body, "Example") {
					t.Errorf("body %q does not use the custom name", m.Body)
				}
			}},
		{name: "unknown rate limit", req: verify.StartRequest{To: nepal, RateLimits: map[string]string{"ip": "1"}},
			wantCode: pv.EInvalidRequest, wantParam: "rate_limits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.setFeatures(t, tt.features)
			tt.req.ServiceID = h.svc.ID
			_, err := h.e.Start(context.Background(), tt.req)
			if tt.wantCode != "" {
				if e := wantCode(t, err, tt.wantCode); e.Param != tt.wantParam {
					t.Errorf("param %q, want %q", e.Param, tt.wantParam)
				}
				if h.sent(t) != 0 {
					t.Error("a refused start sent a message")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, h.last(t))
		})
	}
}

func TestCustomCodeCheck(t *testing.T) {
	h := newHarness(t, nil)
	h.setFeatures(t, pv.ServiceFeatures{CustomCodeEnabled: true})
	h.start(t, verify.StartRequest{To: nepal, CustomCode: "98765432"})
	if _, err := h.check(verify.CheckRequest{To: nepal, Code: "98765431"}); pv.ErrorCode(err) != pv.EIncorrectCode {
		t.Fatalf("wrong custom code: got %v, want incorrect_code", err)
	}
	res, err := h.check(verify.CheckRequest{To: nepal, Code: "98765432"})
	if err != nil || res.Verification.Status != pv.StatusApproved {
		t.Fatalf("custom code of another length than the service's: %v", err)
	}
}

func TestRateLimitBuckets(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	rl, err := h.e.CreateRateLimit(ctx, h.svc.ID, "end_user_ip_address", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.e.CreateBucket(ctx, h.svc.ID, rl.ID, 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	ip := map[string]string{"end_user_ip_address": "203.0.113.9"}
	h.start(t, verify.StartRequest{To: nepal, RateLimits: ip})
	_, err = h.e.Start(ctx, verify.StartRequest{ServiceID: h.svc.ID, To: nepal2, RateLimits: ip})
	e := wantCode(t, err, pv.ETooManyRequests)
	if e.Param != "rate_limits" || e.RetryAfter != time.Minute {
		t.Errorf("param %q retry after %s, want rate_limits and 1m", e.Param, e.RetryAfter)
	}
	h.clock.Advance(time.Minute + time.Second)
	h.start(t, verify.StartRequest{To: nepal2, RateLimits: ip})

	for _, bad := range []struct {
		max      int
		interval time.Duration
		param    string
	}{{0, time.Minute, "max"}, {1, 0, "interval"}, {1, 1500 * time.Millisecond, "interval"}, {1, 8 * 24 * time.Hour, "interval"}} {
		_, err := h.e.CreateBucket(ctx, h.svc.ID, rl.ID, bad.max, bad.interval)
		if e := wantCode(t, err, pv.EInvalidRequest); e.Param != bad.param {
			t.Errorf("bucket %d/%s: param %q, want %q", bad.max, bad.interval, e.Param, bad.param)
		}
	}
	for _, name := range []string{"", "has space", strings.Repeat("x", 65)} {
		if _, err := h.e.CreateRateLimit(ctx, h.svc.ID, name, ""); pv.ErrorCode(err) != pv.EInvalidRequest {
			t.Errorf("unique name %q: got %v, want invalid_request", name, err)
		}
	}
}

func TestSendAttemptsAndApprove(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	v := h.start(t, verify.StartRequest{To: nepal})
	h.start(t, verify.StartRequest{To: nepal})
	attempts, err := h.e.SendAttemptsOf(ctx, v.ID)
	if err != nil || len(attempts) != 2 {
		t.Fatalf("attempts = %d, %v; want 2 (a start and a resend)", len(attempts), err)
	}
	h.start(t, verify.StartRequest{To: testNum})
	if total, _, err := h.e.AttemptsSummary(ctx, pv.AttemptFilter{ServiceID: h.svc.ID}); err != nil || total != 3 {
		t.Errorf("total = %d, %v; want 3 (a test number counts too)", total, err)
	}

	_, err = h.e.Approve(ctx, h.svc.ID, v.ID)
	wantCode(t, err, pv.EInvalidRequest)
	h.setFeatures(t, pv.ServiceFeatures{CustomCodeEnabled: true})
	got, err := h.e.Approve(ctx, h.svc.ID, v.ID)
	if err != nil || got.Status != pv.StatusApproved {
		t.Fatalf("approve: %v, %v", got, err)
	}
	_, err = h.e.Approve(ctx, h.svc.ID, v.ID)
	wantCode(t, err, pv.EAlreadyApproved)
	if _, converted, _ := h.e.AttemptsSummary(ctx, pv.AttemptFilter{ServiceID: h.svc.ID}); converted != 2 {
		t.Errorf("converted = %d, want the two attempts of the approved verification", converted)
	}
	latest, err := h.e.Latest(ctx, h.svc.ID, "9812345678")
	if err != nil || latest.ID != v.ID {
		t.Errorf("latest by national number = %v, %v", latest, err)
	}
}

func TestServiceLifecycle(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	svc := pv.NewService("Second")
	if err := h.e.CreateService(ctx, svc, &pv.ServiceFeatures{LookupEnabled: true}); err != nil {
		t.Fatal(err)
	}
	if _, f, err := h.e.ServiceWithFeatures(ctx, svc.ID); err != nil || !f.LookupEnabled {
		t.Fatalf("features = %+v, %v", f, err)
	}
	bad := *svc
	bad.CodeLength = 11
	if err := h.e.UpdateService(ctx, &bad, &pv.ServiceFeatures{}); pv.ErrorCode(err) != pv.EInvalidRequest {
		t.Errorf("code length 11: got %v, want invalid_request", err)
	}
	if err := h.e.DeleteService(ctx, h.svc.ID); pv.ErrorCode(err) != pv.EInvalidRequest {
		t.Errorf("delete the default service: got %v, want invalid_request", err)
	}
	if err := h.e.DeleteService(ctx, svc.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.e.ServiceWithFeatures(ctx, svc.ID); pv.ErrorCode(err) != pv.ENotFound {
		t.Errorf("deleted service: got %v, want not_found", err)
	}
	list, _, err := h.e.Services(ctx)
	if err != nil || len(list) != 1 || list[0].ID != h.svc.ID {
		t.Errorf("services = %v, %v; want the default only", list, err)
	}
}

func TestCompatKeys(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	creds, k, err := h.e.CreateCompatKey(ctx, h.svc.ID, "app")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(creds.AccountSID, "AC") || creds.APIKeySID != k.ID || creds.AccountSID[2:] != k.ID[2:] || len(creds.Secret) != 32 {
		t.Fatalf("credentials %+v key %s", creds, k.ID)
	}
	tests := []struct {
		name, user, pass string
		ok               bool
	}{
		{"account SID", creds.AccountSID, creds.Secret, true},
		{"API key SID", creds.APIKeySID, creds.Secret, true},
		{"wrong secret", creds.AccountSID, strings.Repeat("0", 32), false},
		{"other SID", "AC" + strings.Repeat("f", 32), creds.Secret, false},
		{"malformed SID", "AC123", creds.Secret, false},
		{"native prefix", "KY" + creds.AccountSID[2:], creds.Secret, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, account, err := h.e.AuthenticateCompat(ctx, tt.user, tt.pass, "")
			if !tt.ok {
				wantCode(t, err, pv.EUnauthorized)
				return
			}
			if err != nil || got.ID != k.ID || account != creds.AccountSID {
				t.Fatalf("got %v %q %v", got, account, err)
			}
		})
	}
	if err := h.e.RevokeAPIKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	_, _, err = h.e.AuthenticateCompat(ctx, creds.APIKeySID, creds.Secret, "")
	wantCode(t, err, pv.EUnauthorized)
}
