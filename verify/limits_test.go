package verify_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/internal/testenv"
	"github.com/phoneverify/phoneverify/ratelimit/memory"
	"github.com/phoneverify/phoneverify/verify"
)

func withLimits(limits verify.StartLimits) func(*verify.Config, *testenv.Clock) {
	return func(cfg *verify.Config, c *testenv.Clock) {
		cfg.Limiter = memory.New(memory.Options{Now: c.Now})
		cfg.StartLimits = limits
	}
}

func TestStartLimits(t *testing.T) {
	t.Parallel()
	type start struct {
		to, ip string
		want   string // error code, "" for success
	}
	tests := []struct {
		name   string
		limits verify.StartLimits
		starts []start
	}{
		{
			name:   "per IP",
			limits: verify.StartLimits{PerIP: pv.Limit{Max: 2, Window: 10 * time.Minute}},
			starts: []start{
				{"+9779812345601", "203.0.113.7", ""},
				{"+9779812345602", "203.0.113.7", ""},
				{"+9779812345603", "203.0.113.7", pv.ETooManyRequests},
				{"+9779812345603", "203.0.113.8", ""},
				// An IPv4-mapped IPv6 address is the IPv4 address.
				{"+9779812345604", "::ffff:203.0.113.7", pv.ETooManyRequests},
				// No client address: the per-IP limit does not apply.
				{"+9779812345605", "", ""},
			},
		},
		{
			name:   "per IPv6 /64",
			limits: verify.StartLimits{PerIP: pv.Limit{Max: 1, Window: time.Hour}},
			starts: []start{
				{"+9779812345601", "2001:db8:1:2::1", ""},
				{"+9779812345602", "2001:db8:1:2:ffff::9", pv.ETooManyRequests},
				{"+9779812345603", "2001:db8:1:3::1", ""},
			},
		},
		{
			name:   "per country",
			limits: verify.StartLimits{PerCountry: pv.Limit{Max: 2, Window: time.Hour}},
			starts: []start{
				{"+9779812345601", "203.0.113.1", ""},
				{"+9779812345602", "203.0.113.2", ""},
				{"+9779812345603", "203.0.113.3", pv.ETooManyRequests},
				{"+918123456789", "203.0.113.3", ""},
			},
		},
		{
			name:   "off",
			limits: verify.StartLimits{},
			starts: []start{
				{"+9779812345601", "203.0.113.7", ""},
				{"+9779812345602", "203.0.113.7", ""},
				{"+9779812345603", "203.0.113.7", ""},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil, withLimits(tt.limits))
			for i, s := range tt.starts {
				sent := h.phone.count()
				_, err := h.e.Start(context.Background(), verify.StartRequest{ServiceID: h.svc.ID, To: s.to, ClientIP: s.ip})
				if got := pv.ErrorCode(err); got != s.want {
					t.Fatalf("start %d (%s): code %q (%v), want %q", i+1, s.ip, got, err, s.want)
				}
				if s.want == "" {
					continue
				}
				e := pv.AsError(err)
				if e.RetryAfter <= 0 {
					t.Errorf("start %d: RetryAfter = %s, want > 0", i+1, e.RetryAfter)
				}
				if !strings.Contains(e.Message, "limit") {
					t.Errorf("start %d: message %q does not name the limit", i+1, e.Message)
				}
				if got := h.phone.count(); got != sent {
					t.Errorf("start %d: refused but %d messages sent", i+1, got-sent)
				}
			}
		})
	}
}

func TestStartLimitRetryAfter(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, withLimits(verify.StartLimits{PerIP: pv.Limit{Max: 1, Window: 10 * time.Minute}}))
	req := verify.StartRequest{ServiceID: h.svc.ID, To: nepal, ClientIP: "198.51.100.1"}
	if _, err := h.e.Start(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(4 * time.Minute)
	req.To = nepal2
	e := wantCode(t, func() error { _, err := h.e.Start(context.Background(), req); return err }(), pv.ETooManyRequests)
	if got, want := e.RetryAfter, 6*time.Minute; got != want {
		t.Errorf("RetryAfter = %s, want %s", got, want)
	}
	if got, want := e.Message, "Too many verifications were started from this IP address (ip limit: at most 1 per 10m0s)."; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
	h.clock.Advance(6 * time.Minute)
	if _, err := h.e.Start(context.Background(), req); err != nil {
		t.Errorf("after the window: %v", err)
	}
}

// failingLimiter stands for a limiter whose backend is down.
type failingLimiter struct{}

func (failingLimiter) Allow(context.Context, string, pv.Limit) (pv.Decision, error) {
	return pv.Decision{}, &pv.Error{Code: pv.EUnavailable, Message: "The rate limiter (Redis) is unavailable.", Err: errors.New("connection refused")}
}

// TestStartLimiterDownFailsClosed: no limiter, no send.
func TestStartLimiterDownFailsClosed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil, func(cfg *verify.Config, _ *testenv.Clock) {
		cfg.Limiter = failingLimiter{}
		cfg.StartLimits.PerIP = pv.Limit{Max: 30, Window: 10 * time.Minute}
	})
	_, err := h.e.Start(context.Background(), verify.StartRequest{ServiceID: h.svc.ID, To: nepal, ClientIP: "198.51.100.1"})
	wantCode(t, err, pv.EUnavailable)
	if got := h.phone.count(); got != 0 {
		t.Errorf("%d messages sent while the limiter was down, want 0", got)
	}
	// Nothing was stored either: a check finds no verification.
	_, err = h.check(verify.CheckRequest{To: nepal, Code: "123456"})
	wantCode(t, err, pv.ENotFound)
}

func TestStartLimitsConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		cfg    func(*verify.Config)
		wantOK bool
	}{
		{"limits without a limiter", func(c *verify.Config) { c.StartLimits.PerIP = pv.Limit{Max: 1, Window: time.Minute} }, false},
		{"invalid limit", func(c *verify.Config) {
			c.Limiter = memory.New(memory.Options{})
			c.StartLimits.PerCountry = pv.Limit{Max: 0, Window: time.Minute}
		}, false},
		{"limiter without limits", func(c *verify.Config) { c.Limiter = memory.New(memory.Options{}) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			cfg := h.cfg
			cfg.Limiter, cfg.StartLimits = nil, verify.StartLimits{}
			tt.cfg(&cfg)
			_, err := verify.New(cfg)
			if got := err == nil; got != tt.wantOK {
				t.Errorf("New: error %v, want ok=%v", err, tt.wantOK)
			}
		})
	}
}
