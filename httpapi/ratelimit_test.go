package httpapi_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/httpapi"
	"github.com/phoneverify/phoneverify/ratelimit/memory"
	"github.com/phoneverify/phoneverify/verify"
)

func withIPLimit(max int) func(*envConfig) {
	return func(c *envConfig) {
		c.engine = func(v *verify.Config) {
			v.Limiter = memory.New(memory.Options{})
			v.StartLimits.PerIP = pv.Limit{Max: max, Window: 10 * time.Minute}
		}
	}
}

// TestStartRateLimitOverHTTP: the per-IP limit counts the connection's
// address; a refusal is 429 too_many_requests with Retry-After.
func TestStartRateLimitOverHTTP(t *testing.T) {
	e := newEnv(t, nil, withIPLimit(2))
	tests := []struct {
		name, to, remote string
		status           int
		code             string
	}{
		{"first", "+9779812345601", "192.0.2.10:5000", 201, ""},
		{"second, other port", "+9779812345602", "192.0.2.10:5001", 201, ""},
		{"third", "+9779812345603", "192.0.2.10:5002", 429, pv.ETooManyRequests},
		{"other client", "+9779812345603", "192.0.2.11:5000", 201, ""},
	}
	for _, tt := range tests {
		r := e.doFrom(t, tt.remote, "POST", "/v1/verifications", `{"to":"`+tt.to+`"}`)
		if r.status != tt.status || r.errCode() != tt.code {
			t.Fatalf("%s: got %d %s, want %d %q", tt.name, r.status, r.raw, tt.status, tt.code)
		}
		if tt.status != 429 {
			continue
		}
		if got := r.header.Get("Retry-After"); got != "600" {
			t.Errorf("%s: Retry-After = %q, want %q", tt.name, got, "600")
		}
		if msg, _ := r.errField("message").(string); !strings.Contains(msg, "ip limit") {
			t.Errorf("%s: message %q does not name the ip limit", tt.name, msg)
		}
	}
}

// TestClientIPHook: a deployment behind a proxy names the client itself.
func TestClientIPHook(t *testing.T) {
	e := newEnv(t, nil, withIPLimit(1), func(c *envConfig) {
		c.api = func(a *httpapi.Config) {
			a.ClientIP = func(r *http.Request) string { return r.Header.Get("X-Test-Client") }
		}
	})
	for i, want := range []int{201, 429} {
		r := e.doFrom(t, "192.0.2.1:1", "POST", "/v1/verifications", `{"to":"+97798123456`+string(rune('1'+i))+`0"}`, "X-Test-Client", "198.51.100.5")
		if r.status != want {
			t.Fatalf("start %d: got %d %s, want %d", i+1, r.status, r.raw, want)
		}
	}
	// Another client per the hook, same connection address.
	if r := e.doFrom(t, "192.0.2.1:1", "POST", "/v1/verifications", `{"to":"+9779812345690"}`, "X-Test-Client", "198.51.100.6"); r.status != 201 {
		t.Fatalf("other client: got %d %s, want 201", r.status, r.raw)
	}
}

type downLimiter struct{}

func (downLimiter) Allow(context.Context, string, pv.Limit) (pv.Decision, error) {
	return pv.Decision{}, &pv.Error{Code: pv.EUnavailable, Message: "The rate limiter (Redis) is unavailable.", Err: errors.New("dial tcp: connection refused")}
}

// TestLimiterDownIs503: a limiter outage refuses starts with 503
// unavailable, never 500, and leaves checks alone.
func TestLimiterDownIs503(t *testing.T) {
	e := newEnv(t, nil, func(c *envConfig) {
		c.engine = func(v *verify.Config) {
			v.Limiter = downLimiter{}
			v.StartLimits.PerIP = pv.Limit{Max: 30, Window: 10 * time.Minute}
		}
	})
	r := e.do(t, "POST", "/v1/verifications", `{"to":"+9779812345601"}`)
	if r.status != 503 || r.errCode() != pv.EUnavailable {
		t.Fatalf("start: got %d %s, want 503 unavailable", r.status, r.raw)
	}
	if got := e.inbox.count(); got != 0 {
		t.Errorf("%d messages sent, want 0", got)
	}
}
