package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/httpapi"
	"github.com/phoneverify/phoneverify/receipts"
	"github.com/phoneverify/phoneverify/verify"
)

// loadSpec loads and validates the committed description as OpenAPI 3.1.
func loadSpec(tb testing.TB) *openapi3.T {
	tb.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(httpapi.OpenAPI)
	if err != nil {
		tb.Fatalf("openapi.json does not load: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		tb.Fatalf("openapi.json is OpenAPI %s, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background()); err != nil {
		tb.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	return doc
}

// TestOpenAPIDescribesEveryRoute checks that each route the API registers,
// the delivery receipt routes the binary adds included, is in the
// description, and that the error code enum is the API's.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	doc := loadSpec(t)
	e := newEnv(t, nil)
	rh, err := receipts.New(receipts.Config{Store: e.store, TwilioAuthToken: "t", TwilioURL: "https://x.example/v1/receipts/twilio", Vonage: true})
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]httpapi.RouteFunc{}
	for p, fn := range rh.Routes() {
		routes[p] = fn
	}
	h := httpapi.New(httpapi.Config{Engine: e.engine, Routes: routes})
	for _, pattern := range h.Routes() {
		method, path, _ := strings.Cut(pattern, " ")
		item := doc.Paths.Find(path)
		if item == nil || item.GetOperation(method) == nil {
			t.Errorf("route %q is registered but not described in httpapi/openapi.json: add %s under paths[%q]", pattern, strings.ToLower(method), path)
		}
	}
	enum := doc.Components.Schemas["Error"].Value.Properties["error"].Value.Properties["code"].Value.Enum
	var described []string
	for _, c := range enum {
		described = append(described, c.(string))
	}
	for _, c := range httpapi.Codes() {
		if !slices.Contains(described, c) {
			t.Errorf("error code %q is answered but missing from the Error schema's code enum", c)
		}
	}
}

// validator checks real answers against the description.
type validator struct {
	doc    *openapi3.T
	router routers.Router
	env    *env
}

func (v *validator) call(t *testing.T, method, path, body string, headers ...string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+apiKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	w := httptest.NewRecorder()
	v.env.h.ServeHTTP(w, req)
	raw := w.Body.Bytes()
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: not JSON: %q", method, path, raw)
		}
	}

	// Validate the answer against the operation the description gives the
	// request, or (an unknown path or method) against the Error schema.
	vreq := httptest.NewRequest(method, "http://localhost"+path, strings.NewReader(body))
	vreq.Header = req.Header.Clone()
	route, params, err := v.router.FindRoute(vreq)
	if err != nil {
		if w.Code != http.StatusNotFound && w.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: answered %d but no operation describes it: %v", method, path, w.Code, err)
			return w.Code, out
		}
		var generic any
		_ = json.Unmarshal(raw, &generic)
		if err := v.doc.Components.Schemas["Error"].Value.VisitJSON(generic, openapi3.EnableJSONSchema2020()); err != nil {
			t.Errorf("%s %s: %d body is not an Error: %v", method, path, w.Code, err)
		}
		return w.Code, out
	}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if w.Code < 400 {
		// A request the server took must be one the description allows.
		vreq.Body = io.NopCloser(strings.NewReader(body))
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			t.Errorf("%s %s: the server took a request the description refuses: %v", method, path, err)
		}
	}
	res := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: w.Code, Header: w.Header(),
		Body: io.NopCloser(bytes.NewReader(raw)), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	if err := openapi3filter.ValidateResponse(context.Background(), res); err != nil {
		t.Errorf("%s %s: the %d answer does not match the description: %v\nbody: %s", method, path, w.Code, err, raw)
	}
	return w.Code, out
}

func errCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

// TestResponsesMatchOpenAPI drives a real API on a real store through
// every route and many errors, validating each request and answer with
// kin-openapi.
func TestResponsesMatchOpenAPI(t *testing.T) { forEachStore(t, testResponsesMatchOpenAPI) }

func testResponsesMatchOpenAPI(t *testing.T, store ...func(*envConfig)) {
	doc := loadSpec(t)
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	// Fraud protection on, in block mode, as a node serves by default.
	e := newEnv(t, func(s *pv.Service) { s.MaxSends = 2; s.MaxAttempts = 3 }, append(store, withFraud)...)
	v := &validator{doc: doc, router: router, env: e}
	ctx := context.Background()

	type step struct {
		method, path, body string
		headers            []string
		status             int
		code               string
	}
	run := func(s step) map[string]any {
		t.Helper()
		status, body := v.call(t, s.method, s.path, s.body, s.headers...)
		if status != s.status || (s.code != "" && errCode(body) != s.code) {
			t.Errorf("%s %s: %d %s, want %d %s", s.method, s.path, status, errCode(body), s.status, s.code)
		}
		return body
	}

	started := run(step{method: "POST", path: "/v1/verifications", body: `{"to":"+9779812000001","subject":"user-1"}`, status: 201})
	id, _ := started["id"].(string)
	code := e.inbox.code("+9779812000001")
	for _, s := range []step{
		{method: "GET", path: "/v1/verifications/" + id, status: 200},
		{method: "GET", path: "/v1/verifications/VE00000000000000000000000000000000", status: 404, code: "not_found"},
		{method: "GET", path: "/v1/verifications/" + id, headers: []string{"Authorization", ""}, status: 401, code: "unauthorized"},
		{method: "POST", path: "/v1/verifications", body: `{"to":"12"}`, status: 400, code: "invalid_phone_number"},
		{method: "POST", path: "/v1/verifications", body: `{"to":"+9779812000002","extra":1}`, status: 400, code: "invalid_request"},
		{method: "POST", path: "/v1/verifications", body: `to=1`, headers: []string{"Content-Type", "text/plain"}, status: 415, code: "unsupported_media_type"},
		{method: "POST", path: "/v1/verifications/check", body: `{"id":"` + id + `","code":"` + wrongCode(code) + `","subject":"user-1"}`, status: 400, code: "incorrect_code"},
		{method: "POST", path: "/v1/verifications/check", body: `{"id":"` + id + `","code":"` + code + `","subject":"user-2"}`, status: 403, code: "forbidden"},
	} {
		run(s)
	}
	approved := run(step{method: "POST", path: "/v1/verifications/check", body: `{"id":"` + id + `","code":"` + code + `","subject":"user-1"}`, status: 200})
	tok, _ := approved["token"].(string)
	for _, s := range []step{
		{method: "POST", path: "/v1/verifications/check", body: `{"id":"` + id + `","code":"` + code + `","subject":"user-1"}`, status: 409, code: "verification_approved"},
		{method: "POST", path: "/v1/verifications/" + id + "/cancel", status: 409, code: "verification_approved"},
		{method: "GET", path: "/v1/tokens/" + tok, status: 200},
		{method: "GET", path: "/v1/tokens/forged.token.here", status: 401, code: "invalid_token"},
		{method: "GET", path: "/v1/subjects/user-1", status: 200},
		{method: "GET", path: "/v1/subjects/nobody", status: 404, code: "not_found"},
		{method: "POST", path: "/v1/verifications", body: `{"to":"+9779812000001","subject":"user-1"}`, status: 409, code: "already_verified"},
		{method: "POST", path: "/v1/verifications", body: `{"to":"+9779812000001","subject":"user-3"}`, status: 409, code: "phone_in_use"},
		{method: "GET", path: "/.well-known/jwks.json", status: 200},
		{method: "GET", path: "/healthz", status: 200},
		{method: "GET", path: "/readyz", status: 200},
		{method: "GET", path: "/openapi.json", status: 200},
		{method: "PUT", path: "/v1/verifications", body: `{}`, status: 405, code: "method_not_allowed"},
		{method: "GET", path: "/v1/nope", status: 404, code: "not_found"},
	} {
		run(s)
	}

	other := run(step{method: "POST", path: "/v1/verifications", body: `{"to":"+9779812000003"}`, status: 201})
	run(step{method: "POST", path: "/v1/verifications", body: `{"to":"+9779812000003"}`, status: 201}) // a resend
	run(step{method: "POST", path: "/v1/verifications", body: `{"to":"+9779812000003"}`, status: 429, code: "too_many_requests"})
	oid, _ := other["id"].(string)
	run(step{method: "POST", path: "/v1/verifications/" + oid + "/cancel", status: 200})
	run(step{method: "POST", path: "/v1/verifications/check", body: `{"id":"` + oid + `","code":"123456"}`, status: 409, code: "verification_canceled"})

	maxed := run(step{method: "POST", path: "/v1/verifications", body: `{"to":"+9779812000004"}`, status: 201})
	mid, _ := maxed["id"].(string)
	wrong := wrongCode(e.inbox.code("+9779812000004"))
	for range 3 {
		run(step{method: "POST", path: "/v1/verifications/check", body: `{"id":"` + mid + `","code":"` + wrong + `"}`, status: 400, code: "incorrect_code"})
	}
	run(step{method: "POST", path: "/v1/verifications/check", body: `{"id":"` + mid + `","code":"` + wrong + `"}`, status: 429, code: "max_attempts_reached"})

	// Event subscriptions and the replay list.
	sub := run(step{method: "POST", path: "/v1/event-subscriptions", body: `{"url":"https://app.example/hooks","types":["verification.approved"]}`, status: 201})
	run(step{method: "POST", path: "/v1/event-subscriptions", body: `{"url":"https://app.example/hooks","types":["nope"]}`, status: 400, code: "invalid_request"})
	run(step{method: "GET", path: "/v1/event-subscriptions", status: 200})
	run(step{method: "POST", path: "/v1/verifications", body: `{"to":"+9779812000005"}`, status: 201})
	run(step{method: "GET", path: "/v1/events?type=verification.pending&limit=1", status: 200})
	run(step{method: "GET", path: "/v1/events?since=yesterday", status: 400, code: "invalid_request"})
	sid, _ := sub["id"].(string)
	run(step{method: "DELETE", path: "/v1/event-subscriptions/" + sid, status: 204})
	run(step{method: "DELETE", path: "/v1/event-subscriptions/" + sid, status: 404, code: "not_found"})

	// A key without the admin scope.
	raw, _, err := e.engine.CreateAPIKey(ctx, e.svcID(t), "sender", []string{verify.ScopeSend})
	if err != nil {
		t.Fatal(err)
	}
	run(step{method: "GET", path: "/v1/events", headers: []string{"Authorization", "Bearer " + raw}, status: 403, code: "forbidden"})

	// Fraud protection: a pumped prefix is refused, the refusals are
	// listed, and the default service's settings are read and replaced.
	if res := e.pump(t, "+998901", 20); res[http.StatusCreated] != 20 {
		t.Fatalf("pump: %v, want 20 × 201", res)
	}
	for _, to := range []string{"+998901999998", "+998901999999"} {
		run(step{method: "POST", path: "/v1/verifications", body: `{"to":"` + to + `"}`, status: 403, code: "blocked_by_fraud_protection"})
	}
	run(step{method: "POST", path: "/v1/verifications", body: `{"to":"+998901999997","risk_check":"disable"}`, status: 403, code: "forbidden"})
	run(step{method: "POST", path: "/v1/verifications", body: `{"to":"+9779812000006","risk_check":"enable"}`, status: 201})
	list := run(step{method: "GET", path: "/v1/fraud/decisions", status: 200})
	if ds, _ := list["decisions"].([]any); len(ds) != 2 {
		t.Errorf("GET /v1/fraud/decisions: %d decisions, want 2", len(ds))
	}
	page := run(step{method: "GET", path: "/v1/fraud/decisions?reason=fraud_prefix&action=blocked&country=uz&prefix=%2B998901&after=2000-01-01T00:00:00Z&before=2999-01-01T00:00:00Z&limit=1", status: 200})
	next, _ := page["next_page_token"].(string)
	if next == "" {
		t.Errorf("GET /v1/fraud/decisions?limit=1: no next_page_token: %v", page)
	}
	run(step{method: "GET", path: "/v1/fraud/decisions?limit=1&page_token=" + next, status: 200})
	for _, q := range []string{"limit=0", "reason=spam", "page_token=x", "service=all"} {
		run(step{method: "GET", path: "/v1/fraud/decisions?" + q, status: 400, code: "invalid_request"})
	}
	run(step{method: "GET", path: "/v1/fraud/decisions", headers: []string{"Authorization", ""}, status: 401, code: "unauthorized"})
	run(step{method: "GET", path: "/v1/fraud/decisions", headers: []string{"Authorization", "Bearer " + raw}, status: 403, code: "forbidden"})

	run(step{method: "GET", path: "/v1/services/default/fraud", status: 200})
	run(step{method: "GET", path: "/v1/services/" + e.svcID(t) + "/fraud", status: 200})
	saved := run(step{method: "PUT", path: "/v1/services/default/fraud", status: 200,
		body: `{"mode":"monitor","prefix_floor":3,"country_floor":50,"budget_ratio":0.5,"window":"48h","cooldown":"10m","ip_countries":7}`})
	if saved["mode"] != "monitor" || saved["window"] != "48h0m0s" || saved["cooldown"] != "10m0s" || saved["updated_at"] == nil {
		t.Errorf("PUT /v1/services/default/fraud: %v", saved)
	}
	run(step{method: "GET", path: "/v1/services/default/fraud", status: 200})
	run(step{method: "PUT", path: "/v1/services/default/fraud", body: `{}`, status: 200})
	for _, body := range []string{`{"window":"90m"}`, `{"mode":"loud"}`, `{"cooldown":"soon"}`, `{"ip_countries":301}`, `{"floor":1}`} {
		run(step{method: "PUT", path: "/v1/services/default/fraud", body: body, status: 400, code: "invalid_request"})
	}
	run(step{method: "PUT", path: "/v1/services/default/fraud", status: 400, code: "invalid_request"})
	run(step{method: "PUT", path: "/v1/services/default/fraud", body: `mode=off`, headers: []string{"Content-Type", "text/plain"}, status: 415, code: "unsupported_media_type"})
	run(step{method: "GET", path: "/v1/services/VA00000000000000000000000000000000/fraud", status: 404, code: "not_found"})
	run(step{method: "PUT", path: "/v1/services/VA00000000000000000000000000000000/fraud", body: `{}`, status: 404, code: "not_found"})
	run(step{method: "GET", path: "/v1/services/default/fraud", headers: []string{"Authorization", ""}, status: 401, code: "unauthorized"})
	run(step{method: "PUT", path: "/v1/services/default/fraud", body: `{}`, headers: []string{"Authorization", "Bearer " + raw}, status: 403, code: "forbidden"})

	// Each service's limits and geo permissions.
	run(step{method: "GET", path: "/v1/services/default/limits", status: 200})
	limits := run(step{method: "PUT", path: "/v1/services/" + e.svcID(t) + "/limits", status: 200,
		body: `{"per_number_day":"10/24h","per_ip":"30/1h","per_subject":"off","per_country":"default","budget_hour":"500/1h","budget_day":null,"failed_checks":"10/1h","deny_countries":["cu","KP"]}`})
	if limits["per_ip"] != "30/1h0m0s" || limits["budget_day"] != "default" || limits["effective"] == nil {
		t.Errorf("PUT /v1/services/default/limits: %v", limits)
	}
	run(step{method: "POST", path: "/v1/verifications", body: `{"to":"+5352345678"}`, status: 403, code: "country_not_allowed"})
	run(step{method: "PUT", path: "/v1/services/default/limits", body: `{"allow_countries":["NP"],"deny_countries":null}`, status: 200})
	run(step{method: "GET", path: "/v1/services/default/limits", status: 200})
	run(step{method: "PUT", path: "/v1/services/default/limits", body: `{}`, status: 200})
	for _, body := range []string{`{"per_ip":"lots"}`, `{"budget_day":"5/1h"}`, `{"deny_countries":["UK"]}`, `{"allow_countries":["NP"],"deny_countries":["IN"]}`, `{"limit":"1/1h"}`} {
		run(step{method: "PUT", path: "/v1/services/default/limits", body: body, status: 400, code: "invalid_request"})
	}
	run(step{method: "PUT", path: "/v1/services/default/limits", body: `per_ip=off`, headers: []string{"Content-Type", "text/plain"}, status: 415, code: "unsupported_media_type"})
	run(step{method: "GET", path: "/v1/services/VA00000000000000000000000000000000/limits", status: 404, code: "not_found"})
	run(step{method: "PUT", path: "/v1/services/VA00000000000000000000000000000000/limits", body: `{}`, status: 404, code: "not_found"})
	run(step{method: "GET", path: "/v1/services/default/limits", headers: []string{"Authorization", ""}, status: 401, code: "unauthorized"})
	run(step{method: "PUT", path: "/v1/services/default/limits", body: `{}`, headers: []string{"Authorization", "Bearer " + raw}, status: 403, code: "forbidden"})
}

func (e *env) svcID(tb testing.TB) string {
	tb.Helper()
	svc, err := e.store.DefaultService(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return svc.ID
}
