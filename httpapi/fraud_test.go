package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/verify"
)

// withFraud turns fraud protection on in block mode.
func withFraud(ec *envConfig) {
	ec.engine = func(c *verify.Config) { c.Fraud = &verify.FraudConfig{DefaultMode: pv.FraudBlock} }
}

func (e *env) key(t *testing.T, scopes ...string) string {
	t.Helper()
	raw, _, err := e.engine.CreateAPIKey(context.Background(), e.engine.DefaultServiceID(), "test", scopes)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// pump sends n starts to one prefix from rotating addresses.
func (e *env) pump(t *testing.T, prefix string, n int) map[int]int {
	t.Helper()
	res := map[int]int{}
	for i := range n {
		r := e.doFrom(t, fmt.Sprintf("10.1.%d.%d:1234", i/256, i%256), "POST", "/v1/verifications",
			fmt.Sprintf(`{"to":"%s%06d"}`, prefix, i))
		res[r.status]++
	}
	return res
}

func TestFraudBlockAnswer(t *testing.T) { forEachStore(t, testFraudBlockAnswer) }

func testFraudBlockAnswer(t *testing.T, store ...func(*envConfig)) {
	e := newEnv(t, nil, append(store, withFraud)...)
	if res := e.pump(t, "+998901", 21); res[http.StatusCreated] != 20 || res[http.StatusForbidden] != 1 {
		t.Fatalf("statuses %v, want 20 × 201 then 403", res)
	}
	r := e.do(t, "POST", "/v1/verifications", `{"to":"+998901999999"}`)
	if r.status != http.StatusForbidden || r.errCode() != pv.EBlockedByFraud || r.errField("param") != "to" || r.header.Get("Retry-After") != "3600" {
		t.Fatalf("blocked start: %d %s Retry-After %q", r.status, r.raw, r.header.Get("Retry-After"))
	}
}

func TestRiskCheckOverride(t *testing.T) {
	e := newEnv(t, nil, withFraud)
	e.pump(t, "+998901", 21)
	plain := e.key(t) // the default grant: AllScopes, without the override
	override := e.key(t, verify.ScopeSend, verify.ScopeRiskCheckOverride)
	tests := []struct {
		name, key, body string
		status          int
		code, param     string
	}{
		{"no field, blocked", plain, `{"to":"+998901888881"}`, 403, pv.EBlockedByFraud, "to"},
		{"disable without the scope", plain, `{"to":"+998901888882","risk_check":"disable"}`, 403, pv.EForbidden, "risk_check"},
		{"bad value", override, `{"to":"+998901888883","risk_check":"off"}`, 400, pv.EInvalidRequest, "risk_check"},
		{"enable with the scope is still checked", override, `{"to":"+998901888884","risk_check":"enable"}`, 403, pv.EBlockedByFraud, "to"},
		{"disable with the scope", override, `{"to":"+998901888885","risk_check":"disable"}`, 201, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, "POST", "/v1/verifications", tt.body, "Authorization", "Bearer "+tt.key)
			if r.status != tt.status || r.errCode() != tt.code || tt.param != "" && r.errField("param") != tt.param {
				t.Errorf("%d %s, want %d %s param %s", r.status, r.raw, tt.status, tt.code, tt.param)
			}
		})
	}
	for _, s := range verify.AllScopes {
		if s == verify.ScopeRiskCheckOverride {
			t.Errorf("AllScopes holds %s; it must be granted explicitly", s)
		}
	}
}

func TestFraudDecisionsEndpoint(t *testing.T) {
	e := newEnv(t, nil, withFraud)
	e.pump(t, "+998901", 25) // 5 refusals
	sendOnly := e.key(t, verify.ScopeSend)
	tests := []struct {
		name, query string
		headers     []string
		status      int
		code, param string
		n           int
	}{
		{"no key", "", []string{"Authorization", ""}, 401, pv.EUnauthorized, "", 0},
		{"key without admin", "", []string{"Authorization", "Bearer " + sendOnly}, 403, pv.EForbidden, "", 0},
		{"all", "", nil, 200, "", "", 5},
		{"by prefix", "?prefix=%2B998901", nil, 200, "", "", 5},
		{"other prefix", "?prefix=%2B977981", nil, 200, "", "", 0},
		{"by country and reason", "?country=uz&reason=fraud_prefix&action=blocked", nil, 200, "", "", 5},
		{"monitored only", "?action=monitored", nil, 200, "", "", 0},
		{"after the future", "?after=2999-01-01T00:00:00Z", nil, 200, "", "", 0},
		{"limit", "?limit=2", nil, 200, "", "", 2},
		{"bad reason", "?reason=spam", nil, 400, pv.EInvalidRequest, "reason", 0},
		{"bad action", "?action=x", nil, 400, pv.EInvalidRequest, "action", 0},
		{"bad country", "?country=Nepal", nil, 400, pv.EInvalidRequest, "country", 0},
		{"bad prefix", "?prefix=998", nil, 400, pv.EInvalidRequest, "prefix", 0},
		{"bad time", "?after=yesterday", nil, 400, pv.EInvalidRequest, "after", 0},
		{"bad limit", "?limit=0", nil, 400, pv.EInvalidRequest, "limit", 0},
		{"huge limit", "?limit=100000", nil, 400, pv.EInvalidRequest, "limit", 0},
		{"bad page token", "?page_token=x'--", nil, 400, pv.EInvalidRequest, "page_token", 0},
		{"unknown parameter", "?service=all", nil, 400, pv.EInvalidRequest, "service", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, "GET", "/v1/fraud/decisions"+tt.query, "", tt.headers...)
			if r.status != tt.status || r.errCode() != tt.code || tt.param != "" && r.errField("param") != tt.param {
				t.Fatalf("%d %s, want %d %s param %s", r.status, r.raw, tt.status, tt.code, tt.param)
			}
			if tt.status == 200 {
				ds, _ := r.body["decisions"].([]any)
				if len(ds) != tt.n {
					t.Errorf("%d decisions, want %d", len(ds), tt.n)
				}
			}
		})
	}
	// Paging walks every decision once, newest first.
	seen := map[string]bool{}
	token := ""
	for range 10 {
		q := "?limit=2"
		if token != "" {
			q += "&page_token=" + url.QueryEscape(token)
		}
		r := e.do(t, "GET", "/v1/fraud/decisions"+q, "")
		for _, d := range r.body["decisions"].([]any) {
			m := d.(map[string]any)
			id := m["id"].(string)
			if seen[id] {
				t.Fatalf("decision %s seen twice", id)
			}
			seen[id] = true
			if to := m["to"].(string); to == "" || to[len(to)-7:len(to)-2] != "*****" {
				t.Errorf("decision number %q is not masked", to)
			}
		}
		if token = r.str("next_page_token"); token == "" {
			break
		}
	}
	if len(seen) != 5 {
		t.Errorf("paging saw %d decisions, want 5", len(seen))
	}
}

func TestFraudSettingsEndpoint(t *testing.T) {
	e := newEnv(t, nil, withFraud)
	r := e.do(t, "GET", "/v1/services/default/fraud", "")
	if r.status != 200 || r.str("mode") != "block" || r.str("window") != "24h0m0s" || r.body["prefix_floor"] != float64(20) {
		t.Fatalf("GET settings: %d %s", r.status, r.raw)
	}
	r = e.do(t, "PUT", "/v1/services/default/fraud", `{"mode":"monitor","prefix_floor":3,"cooldown":"10m"}`)
	if r.status != 200 || r.str("mode") != "monitor" || r.body["prefix_floor"] != float64(3) || r.str("cooldown") != "10m0s" {
		t.Fatalf("PUT settings: %d %s", r.status, r.raw)
	}
	if res := e.pump(t, "+998901", 5); res[http.StatusCreated] != 5 {
		t.Errorf("monitor mode refused: %v", res)
	}
	r = e.do(t, "GET", "/v1/fraud/decisions?action=monitored", "")
	if ds, _ := r.body["decisions"].([]any); len(ds) != 2 {
		t.Errorf("monitored decisions = %d, want 2: %s", len(ds), r.raw)
	}
	for _, tt := range []struct{ body, param string }{
		{`{"mode":"loud"}`, "mode"},
		{`{"window":"90m"}`, "window"},
		{`{"cooldown":"-1h"}`, "cooldown"},
		{`{"prefix_floor":-1}`, "prefix_floor"},
		{`{"budget_ratio":-2}`, "budget_ratio"},
	} {
		if r := e.do(t, "PUT", "/v1/services/default/fraud", tt.body); r.status != 400 || r.errField("param") != tt.param {
			t.Errorf("PUT %s: %d %s, want 400 naming %s", tt.body, r.status, r.raw, tt.param)
		}
	}
	if r := e.do(t, "GET", "/v1/services/VA"+fmt.Sprintf("%032d", 0)+"/fraud", ""); r.status != 404 {
		t.Errorf("unknown service: %d %s", r.status, r.raw)
	}
	// PostgreSQL refuses a NUL or invalid UTF-8 in a text parameter: such
	// ids are answered before they reach the store.
	for _, path := range []string{"/v1/services/%00/fraud", "/v1/services/%ff/fraud"} {
		for _, method := range []string{"GET", "PUT"} {
			if r := e.do(t, method, path, `{"mode":"monitor"}`); r.status != 404 || r.errField("code") != pv.ENotFound {
				t.Errorf("%s %s: %d %s, want 404 not_found", method, path, r.status, r.raw)
			}
		}
	}
	if r := e.do(t, "GET", "/v1/services/default/fraud", "", "Authorization", "Bearer "+e.key(t, verify.ScopeSend)); r.status != 403 {
		t.Errorf("without admin: %d %s", r.status, r.raw)
	}
}
