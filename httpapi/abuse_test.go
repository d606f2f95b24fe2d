package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/clientip"
	"github.com/phoneverify/phoneverify/httpapi"
	"github.com/phoneverify/phoneverify/ratelimit/memory"
	"github.com/phoneverify/phoneverify/verify"
)

// withTrustedProxies names the client as a node configured with
// PHONEVERIFY_TRUSTED_PROXIES=list does.
func withTrustedProxies(tb testing.TB, list string) func(*envConfig) {
	r, err := clientip.Parse(list)
	if err != nil {
		tb.Fatal(err)
	}
	return func(c *envConfig) {
		c.api = func(a *httpapi.Config) { a.ClientIP = r.ClientIP }
	}
}

// TestPerIPThroughProxies drives the per-IP limit (1 start per hour)
// through the real handler: IPv4 per address, IPv6 per /64, the
// X-Forwarded-For header honoured only from a trusted proxy and walked
// from the right past trusted hops, and a header spoofed by an untrusted
// peer ignored.
func TestPerIPThroughProxies(t *testing.T) {
	e := newEnv(t, nil, withIPLimit(1), withTrustedProxies(t, "10.0.0.0/8, fd00::/8"))
	n := 0
	start := func(remote string, headers ...string) response {
		n++
		return e.doFrom(t, remote, "POST", "/v1/verifications", fmt.Sprintf(`{"to":"+97798123%05d"}`, n), headers...)
	}
	tests := []struct {
		name    string
		remote  string
		xff     string
		want    int
		comment string
	}{
		{"v4 direct", "198.51.100.1:1000", "", 201, ""},
		{"v4 direct again", "198.51.100.1:2000", "", 429, "same address"},
		{"v4 spoofed XFF from an untrusted peer", "198.51.100.1:3000", "203.0.113.99", 429, "the header is ignored"},
		{"untrusted peer claiming a fresh address", "198.51.100.2:1", "198.51.100.1", 201, "the peer counts, not the header"},
		{"v6 direct", "[2001:db8:aa:1::1]:1", "", 201, ""},
		{"v6 same /64", "[2001:db8:aa:1:ffff::2]:1", "", 429, "one /64"},
		{"v6 next /64", "[2001:db8:aa:2::1]:1", "", 201, ""},
		{"trusted proxy, client in XFF", "10.0.0.5:1", "203.0.113.10", 201, ""},
		{"trusted proxy, same client", "10.1.2.3:1", "203.0.113.10", 429, "the client, not the proxy"},
		{"trusted proxy, other client", "10.0.0.5:1", "203.0.113.11", 201, "the proxy's address is not the client"},
		{"trusted chain: spoofed left entry ignored", "10.0.0.5:1", "198.51.100.77, 203.0.113.12, 10.9.9.9", 201, "client 203.0.113.12"},
		{"trusted chain: same client, other spoof", "10.0.0.6:1", "1.2.3.4, 203.0.113.12, 10.8.8.8", 429, "client 203.0.113.12 again"},
		{"trusted v6 proxy, v6 client /64", "[fd00::1]:1", "2001:db8:bb:1::5", 201, ""},
		{"trusted v6 proxy, same /64", "[fd00::2]:1", "2001:db8:bb:1::6", 429, ""},
	}
	for _, tt := range tests {
		var headers []string
		if tt.xff != "" {
			headers = []string{"X-Forwarded-For", tt.xff}
		}
		r := start(tt.remote, headers...)
		if r.status != tt.want {
			t.Errorf("%s (%s): got %d %s, want %d", tt.name, tt.comment, r.status, r.raw, tt.want)
		}
	}
}

// TestScopesOverHTTP: each endpoint refuses a key that lacks its scope with
// 403 forbidden, and admits one that holds it.
func TestScopesOverHTTP(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	svc := e.engine.DefaultServiceID()
	keyWith := func(scopes ...string) string {
		raw, _, err := e.engine.CreateAPIKey(ctx, svc, "k", scopes)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	send, check, admin, override := keyWith(verify.ScopeSend), keyWith(verify.ScopeCheck), keyWith(verify.ScopeAdmin), keyWith(verify.ScopeRiskCheckOverride)
	r := e.do(t, "POST", "/v1/verifications", `{"to":"+9779812345678"}`)
	if r.status != 201 {
		t.Fatalf("start: %d %s", r.status, r.raw)
	}
	id := r.str("id")
	tests := []struct {
		method, path, body string
		ok                 string // the key that holds the scope
	}{
		{"POST", "/v1/verifications", `{"to":"+9779812345679"}`, send},
		{"POST", "/v1/verifications/" + id + "/cancel", "", send},
		{"POST", "/v1/verifications/check", `{"to":"+9779812345670","code":"123456"}`, check},
	}
	for _, tt := range tests {
		for _, key := range []string{send, check, admin, override} {
			if key == tt.ok {
				continue
			}
			r := e.do(t, tt.method, tt.path, tt.body, "Authorization", "Bearer "+key)
			if r.status != 403 || r.errCode() != pv.EForbidden {
				t.Errorf("%s %s with a key lacking the scope: %d %s, want 403 forbidden", tt.method, tt.path, r.status, r.raw)
			}
		}
		if r := e.do(t, tt.method, tt.path, tt.body, "Authorization", "Bearer "+tt.ok); r.status == 403 || r.status == 401 {
			t.Errorf("%s %s with the scope: %d %s", tt.method, tt.path, r.status, r.raw)
		}
	}
}

// TestKeyAddressRangeOverHTTP: a key restricted to a range is refused with
// 403 forbidden from elsewhere, and the range sees the client a trusted
// proxy names.
func TestKeyAddressRangeOverHTTP(t *testing.T) {
	e := newEnv(t, nil, withTrustedProxies(t, "10.0.0.0/8"))
	allowed, _ := verify.ParseAllowedIPs("203.0.113.0/24")
	raw, _, err := e.engine.CreateAPIKeyWithIPs(context.Background(), e.engine.DefaultServiceID(), "office", nil, allowed)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, remote, xff string
		want              int
	}{
		{"inside the range", "203.0.113.4:1", "", 404},
		{"outside", "198.51.100.4:1", "", 403},
		{"outside, spoofing XFF", "198.51.100.4:1", "203.0.113.4", 403},
		{"through a trusted proxy, inside", "10.0.0.1:1", "203.0.113.4", 404},
		{"through a trusted proxy, outside", "10.0.0.1:1", "198.51.100.4", 403},
	}
	for _, tt := range tests {
		headers := []string{"Authorization", "Bearer " + raw}
		if tt.xff != "" {
			headers = append(headers, "X-Forwarded-For", tt.xff)
		}
		r := e.doFrom(t, tt.remote, "GET", "/v1/subjects/nobody", "", headers...)
		if r.status != tt.want || (tt.want == 403 && r.errCode() != pv.EForbidden) {
			t.Errorf("%s: %d %s, want %d", tt.name, r.status, r.raw, tt.want)
		}
	}
}

// TestBruteForceCapOverHTTP: once a number's failed-check cap is reached,
// a check answers 429 too_many_requests with Retry-After without comparing
// the code, even the right one.
func TestBruteForceCapOverHTTP(t *testing.T) {
	e := newEnv(t, func(s *pv.Service) { s.MaxAttempts = 10 }, func(c *envConfig) {
		c.engine = func(v *verify.Config) {
			v.Limiter = memory.New(memory.Options{})
			v.StartLimits.FailedChecks = pv.Limit{Max: 2, Window: time.Hour}
		}
	})
	if r := e.do(t, "POST", "/v1/verifications", `{"to":"+9779812345678"}`); r.status != 201 {
		t.Fatalf("start: %d %s", r.status, r.raw)
	}
	code := e.inbox.code("+9779812345678")
	for range 2 {
		if r := e.do(t, "POST", "/v1/verifications/check", `{"to":"+9779812345678","code":"`+wrongCode(code)+`"}`); r.status != 400 {
			t.Fatalf("wrong code: %d %s", r.status, r.raw)
		}
	}
	r := e.do(t, "POST", "/v1/verifications/check", `{"to":"+9779812345678","code":"`+code+`"}`)
	if r.status != http.StatusTooManyRequests || r.errCode() != pv.ETooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("right code past the cap: %d %s (Retry-After %q), want 429 too_many_requests", r.status, r.raw, r.header.Get("Retry-After"))
	}
}

func wrongCode(code string) string {
	if code == "000000" {
		return "111111"
	}
	return "000000"
}

// TestGeoOverHTTP: a country the service does not allow is refused with
// 403 country_not_allowed (param to), and no outbox row is written.
func TestGeoOverHTTP(t *testing.T) {
	e := newEnv(t, func(s *pv.Service) { s.Limits.DenyCountries = []string{"NP"} })
	r := e.do(t, "POST", "/v1/verifications", `{"to":"+9779812345678"}`)
	if r.status != http.StatusForbidden || r.errCode() != pv.ECountryNotAllowed || r.errField("param") != "to" {
		t.Fatalf("denied country: %d %s, want 403 country_not_allowed param to", r.status, r.raw)
	}
	var rows int
	if err := e.store.DB().QueryRow(`SELECT COUNT(*) FROM outbox`).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("outbox rows = %d, %v; want 0", rows, err)
	}
	if r := e.do(t, "POST", "/v1/verifications", `{"to":"+918123456789"}`); r.status != http.StatusCreated {
		t.Fatalf("allowed country: %d %s", r.status, r.raw)
	}
}
