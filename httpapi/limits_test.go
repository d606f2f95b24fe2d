package httpapi_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/ratelimit/memory"
	"github.com/phoneverify/phoneverify/verify"
)

// withDefaultLimits gives the node a limiter and server-wide defaults:
// 30 starts per address per hour, 10 codes per number per day.
func withDefaultLimits(c *envConfig) {
	c.engine = func(v *verify.Config) {
		v.Limiter = memory.New(memory.Options{})
		v.StartLimits.PerIP = pv.Limit{Max: 30, Window: time.Hour}
		v.StartLimits.PerNumberDay = pv.Limit{Max: 10, Window: 24 * time.Hour}
	}
}

// limitsOf reads the body of a limits answer: each limit's setting, the
// lists and the effective limits.
func limitsOf(r response) (settings map[string]string, allow, deny []string, effective map[string]string) {
	settings, effective = map[string]string{}, map[string]string{}
	for _, name := range pv.LimitNames {
		settings[name] = r.str(name)
	}
	for _, l := range []struct {
		name string
		dst  *[]string
	}{{"allow_countries", &allow}, {"deny_countries", &deny}} {
		list, _ := r.body[l.name].([]any)
		*l.dst = []string{}
		for _, c := range list {
			s, _ := c.(string)
			*l.dst = append(*l.dst, s)
		}
	}
	eff, _ := r.body["effective"].(map[string]any)
	for k, v := range eff {
		effective[k], _ = v.(string)
	}
	return settings, allow, deny, effective
}

// TestServiceLimitsEndpoint drives GET and PUT /v1/services/{id}/limits:
// what is saved is read back and in force on the next start, every bad
// field is a 400 naming it that changes nothing, and the service must be
// one the key manages.
func TestServiceLimitsEndpoint(t *testing.T) { forEachStore(t, testServiceLimitsEndpoint) }

func testServiceLimitsEndpoint(t *testing.T, store ...func(*envConfig)) {
	e := newEnv(t, nil, append(store, withDefaultLimits)...)
	ctx := context.Background()

	r := e.do(t, "GET", "/v1/services/default/limits", "")
	settings, allow, deny, eff := limitsOf(r)
	if r.status != 200 || r.str("service_id") != e.svcID(t) || r.str("updated_at") == "" || len(allow) != 0 || len(deny) != 0 {
		t.Fatalf("GET: %d %s", r.status, r.raw)
	}
	for _, name := range pv.LimitNames {
		if settings[name] != "default" {
			t.Errorf("GET: %s = %q, want default", name, settings[name])
		}
	}
	if eff["per_ip"] != "30/1h0m0s" || eff["per_number_day"] != "10/24h0m0s" || eff["per_subject"] != "off" || len(eff) != len(pv.LimitNames) {
		t.Errorf("GET: effective %v", eff)
	}

	saved := `{"per_ip":"1/1h","per_subject":"off","budget_day":"100/24h","per_country":null,"deny_countries":["np","IN","NP"]}`
	r = e.do(t, "PUT", "/v1/services/default/limits", saved)
	settings, _, deny, eff = limitsOf(r)
	if r.status != 200 || settings["per_ip"] != "1/1h0m0s" || settings["per_subject"] != "off" || settings["budget_day"] != "100/24h0m0s" ||
		settings["per_country"] != "default" || settings["per_number_day"] != "default" || !slices.Equal(deny, []string{"NP", "IN"}) {
		t.Fatalf("PUT: %d %s", r.status, r.raw)
	}
	if eff["per_ip"] != "1/1h0m0s" || eff["per_number_day"] != "10/24h0m0s" || eff["per_subject"] != "off" || eff["budget_day"] != "100/24h0m0s" {
		t.Errorf("PUT: effective %v", eff)
	}
	if got := e.do(t, "GET", "/v1/services/default/limits", ""); got.raw != r.raw {
		t.Errorf("GET after PUT:\n%s\nwant the PUT's answer:\n%s", got.raw, r.raw)
	}

	// In force at once: the denied country, then the per-address limit.
	if s := e.do(t, "POST", "/v1/verifications", `{"to":"+9779812000001"}`); s.status != http.StatusForbidden || s.errCode() != pv.ECountryNotAllowed {
		t.Errorf("start to a denied country: %d %s", s.status, s.raw)
	}
	if s := e.doFrom(t, "198.51.100.7:1", "POST", "/v1/verifications", `{"to":"+12015550123"}`); s.status != http.StatusCreated {
		t.Errorf("first start from an address: %d %s", s.status, s.raw)
	}
	if s := e.doFrom(t, "198.51.100.7:2", "POST", "/v1/verifications", `{"to":"+12015550124"}`); s.status != http.StatusTooManyRequests {
		t.Errorf("second start from the address (per_ip 1/1h): %d %s", s.status, s.raw)
	}

	for _, tt := range []struct{ name, body, param string }{
		{"not a limit", `{"per_ip":"banana"}`, "per_ip"},
		{"empty", `{"per_ip":""}`, "per_ip"},
		{"zero count", `{"per_subject":"0/1h"}`, "per_subject"},
		{"count too large", `{"failed_checks":"10001/1h"}`, "failed_checks"},
		{"no unit", `{"per_country":"5/10"}`, "per_country"},
		{"a number", `{"per_ip":5}`, "per_ip"},
		{"hourly budget over two hours", `{"budget_hour":"5/2h"}`, "budget_hour"},
		{"both lists", `{"allow_countries":["NP"],"deny_countries":["IN"]}`, "allow_countries"},
		{"not a code", `{"allow_countries":["Nepal"]}`, "allow_countries"},
		{"unknown country", `{"deny_countries":["UK"]}`, "deny_countries"},
		{"list of numbers", `{"deny_countries":[1]}`, "deny_countries"},
		{"a good limit and a bad one", `{"per_ip":"off","per_number_day":"soon"}`, "per_number_day"},
		{"a good limit and a bad list", `{"per_ip":"off","allow_countries":["ZZ"]}`, "allow_countries"},
		{"unknown field", `{"per_phone":"1/1h"}`, "per_phone"},
		{"no body", ``, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, "PUT", "/v1/services/default/limits", tt.body)
			if r.status != 400 || r.errCode() != pv.EInvalidRequest || tt.param != "" && r.errField("param") != tt.param {
				t.Errorf("%d %s, want 400 invalid_request naming %q", r.status, r.raw, tt.param)
			}
			if got := e.do(t, "GET", "/v1/services/default/limits", ""); got.str("per_ip") != "1/1h0m0s" || got.str("per_number_day") != "default" {
				t.Errorf("limits after a refused PUT: %s", got.raw)
			}
		})
	}

	// {} puts every limit back to the default and clears the lists.
	r = e.do(t, "PUT", "/v1/services/"+e.svcID(t)+"/limits", `{}`)
	settings, allow, deny, _ = limitsOf(r)
	if r.status != 200 || settings["per_ip"] != "default" || settings["budget_day"] != "default" || len(allow)+len(deny) != 0 {
		t.Errorf("PUT {}: %d %s", r.status, r.raw)
	}
	if s := e.do(t, "POST", "/v1/verifications", `{"to":"+9779812000001"}`); s.status != http.StatusCreated {
		t.Errorf("start after the lists were cleared: %d %s", s.status, s.raw)
	}

	// Which services a key reaches: the operator's (default service) key
	// any, another service's key its own only.
	other := pv.NewService("Other")
	if err := e.engine.CreateService(ctx, other, &pv.ServiceFeatures{}); err != nil {
		t.Fatal(err)
	}
	otherKey, _, err := e.engine.CreateAPIKey(ctx, other.ID, "other admin", []string{verify.ScopeAdmin})
	if err != nil {
		t.Fatal(err)
	}
	sendOnly := e.key(t, verify.ScopeSend)
	for _, tt := range []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		code                     string
	}{
		{"operator, other service", "PUT", "/v1/services/" + other.ID + "/limits", `{"allow_countries":["GB"]}`, nil, 200, ""},
		{"own service", "GET", "/v1/services/" + other.ID + "/limits", "", []string{"Authorization", "Bearer " + otherKey}, 200, ""},
		{"another service's key, default", "GET", "/v1/services/default/limits", "", []string{"Authorization", "Bearer " + otherKey}, 404, pv.ENotFound},
		{"another service's key, PUT", "PUT", "/v1/services/" + e.svcID(t) + "/limits", `{}`, []string{"Authorization", "Bearer " + otherKey}, 404, pv.ENotFound},
		{"unknown service", "GET", "/v1/services/VA00000000000000000000000000000000/limits", "", nil, 404, pv.ENotFound},
		{"unknown service, PUT", "PUT", "/v1/services/VA00000000000000000000000000000000/limits", `{}`, nil, 404, pv.ENotFound},
		{"not an id", "GET", "/v1/services/x'--/limits", "", nil, 404, pv.ENotFound},
		// PostgreSQL refuses a NUL or invalid UTF-8 in a text parameter:
		// such ids must be answered before they reach the store.
		{"NUL in the id", "GET", "/v1/services/%00/limits", "", nil, 404, pv.ENotFound},
		{"invalid UTF-8 in the id, PUT", "PUT", "/v1/services/%ff/limits", `{}`, nil, 404, pv.ENotFound},
		{"without admin", "GET", "/v1/services/default/limits", "", []string{"Authorization", "Bearer " + sendOnly}, 403, pv.EForbidden},
		{"without admin, PUT", "PUT", "/v1/services/default/limits", `{}`, []string{"Authorization", "Bearer " + sendOnly}, 403, pv.EForbidden},
		{"no key", "PUT", "/v1/services/default/limits", `{}`, []string{"Authorization", ""}, 401, pv.EUnauthorized},
		{"form body", "PUT", "/v1/services/default/limits", `per_ip=off`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, pv.EUnsupportedMediaType},
		{"POST", "POST", "/v1/services/default/limits", `{}`, nil, 405, pv.EMethodNotAllowed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, tt.method, tt.path, tt.body, tt.headers...)
			if r.status != tt.status || r.errCode() != tt.code {
				t.Errorf("%d %s, want %d %s", r.status, r.raw, tt.status, tt.code)
			}
		})
	}
	if r := e.do(t, "GET", "/v1/services/"+other.ID+"/limits", ""); !slices.Equal(r.body["allow_countries"].([]any), []any{"GB"}) {
		t.Errorf("other service's limits: %s", r.raw)
	}
	if err := e.engine.DeleteService(ctx, other.ID); err != nil {
		t.Fatal(err)
	}
	if r := e.do(t, "GET", "/v1/services/"+other.ID+"/limits", ""); r.status != 404 || r.errField("param") != "id" {
		t.Errorf("deleted service: %d %s", r.status, r.raw)
	}
}
