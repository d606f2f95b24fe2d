package twilioapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/otp"
	"github.com/phoneverify/phoneverify/outbox"
	"github.com/phoneverify/phoneverify/store"
	"github.com/phoneverify/phoneverify/token"
	"github.com/phoneverify/phoneverify/twilioapi"
	"github.com/phoneverify/phoneverify/verify"
)

const (
	accountSID = "AC0123456789abcdef0123456789abcdef"
	authToken  = "0123456789abcdef0123456789abcdef"
)

// inbox keeps the last code sent to each number; code drains the outbox
// first, as a running node's workers would.
type inbox struct {
	drain func()
	mu    sync.Mutex
	codes map[string]string
}

func (i *inbox) code(to string) string {
	i.drain()
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.codes[to]
}

func (i *inbox) Send(_ context.Context, m *pv.Message) (*pv.SendResult, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.codes[m.To] = m.Code
	return &pv.SendResult{Gateway: "inbox"}, nil
}

type env struct {
	h      *twilioapi.Handler
	engine *verify.Engine
	store  *store.Store
	inbox  *inbox
}

// newEnv starts the Twilio-compatible API on a real SQLite store; configure
// adjusts the engine's configuration (fraud protection, limits).
func newEnv(tb testing.TB, configure ...func(*verify.Config)) *env {
	tb.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(tb.TempDir(), "phoneverify.db"), store.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	secret := bytes.Repeat([]byte("k"), 32)
	hasher, _ := otp.NewHasher(secret)
	keys, err := token.NewKeyring(ctx, st, secret, time.Now(), token.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	sealer, _ := otp.NewSealer(secret)
	cfg := verify.Config{Store: st, Sealer: sealer, Hasher: hasher, Keys: keys}
	for _, f := range configure {
		f(&cfg)
	}
	e, err := verify.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	in := &inbox{codes: map[string]string{}}
	d, err := outbox.New(outbox.Config{Store: st, Sender: in, Sealer: sealer, Failer: e})
	if err != nil {
		tb.Fatal(err)
	}
	in.drain = func() {
		if _, err := d.Drain(context.Background()); err != nil {
			tb.Errorf("Drain: %v", err)
		}
	}
	if _, err := e.EnsureDefaultService(ctx, pv.NewService("Default")); err != nil {
		tb.Fatal(err)
	}
	h := twilioapi.New(twilioapi.Config{Engine: e, AccountSID: accountSID, AuthToken: authToken})
	return &env{h: h, engine: e, store: st, inbox: in}
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r response) str(name string) string { s, _ := r.body[name].(string); return s }
func (r response) code() float64          { n, _ := r.body["code"].(float64); return n }

// do sends a request with the bootstrap credentials unless headers set
// Authorization ("" removes it).
func (e *env) do(tb testing.TB, method, path, body string, headers ...string) response {
	tb.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.SetBasicAuth(accountSID, authToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	res := response{status: w.Code, header: w.Header(), raw: w.Body.String()}
	if w.Code == http.StatusNoContent {
		return res
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		tb.Fatalf("%s %s: Content-Type %q, want JSON; body %q", method, path, ct, res.raw)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &res.body); err != nil {
		tb.Fatalf("%s %s: body is not a JSON object: %q", method, path, res.raw)
	}
	return res
}

func TestAuth(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	creds, key, err := e.engine.CreateCompatKey(ctx, e.engine.DefaultServiceID(), "app")
	if err != nil {
		t.Fatal(err)
	}
	revoked, rkey, err := e.engine.CreateCompatKey(ctx, e.engine.DefaultServiceID(), "old")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.engine.RevokeAPIKey(ctx, rkey.ID); err != nil {
		t.Fatal(err)
	}
	nativeRaw, _, err := e.engine.CreateAPIKey(ctx, e.engine.DefaultServiceID(), "send only", []string{verify.ScopeSend})
	if err != nil {
		t.Fatal(err)
	}
	basic := func(user, pass string) string {
		r, _ := http.NewRequest("GET", "/", nil)
		r.SetBasicAuth(user, pass)
		return r.Header.Get("Authorization")
	}
	sid := e.engine.DefaultServiceID()
	tests := []struct {
		name   string
		auth   string
		status int
	}{
		{"bootstrap", basic(accountSID, authToken), 200},
		{"issued, as account", basic(creds.AccountSID, creds.Secret), 200},
		{"issued, as API key", basic(creds.APIKeySID, creds.Secret), 200},
		{"issued secret, other SID", basic("SK"+strings.Repeat("0", 32), creds.Secret), 401},
		{"revoked", basic(revoked.APIKeySID, revoked.Secret), 401},
		{"wrong token", basic(accountSID, "nope"), 401},
		{"no credentials", "", 401},
		{"bearer", "Bearer " + authToken, 401},
		{"native key as basic password", basic("SK"+key.ID[2:], nativeRaw), 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, "GET", "/v2/Services/"+sid, "", "Authorization", tt.auth)
			if r.status != tt.status {
				t.Fatalf("got %d %s, want %d", r.status, r.raw, tt.status)
			}
			if tt.status == 401 {
				if r.code() != twilioapi.CodeUnauthorized || r.header.Get("WWW-Authenticate") == "" {
					t.Errorf("got code %v, WWW-Authenticate %q", r.code(), r.header.Get("WWW-Authenticate"))
				}
			}
		})
	}
}

// TestWireFormat checks what twilio-go does not: exact field names, date
// and SID formats, headers, and that every answer is JSON.
func TestWireFormat(t *testing.T) {
	e := newEnv(t)
	sidRe := regexp.MustCompile(`^(VA|VE|VL|AC|RK|BL|GN)[0-9a-f]{32}$`)
	dateRe := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

	r := e.do(t, "POST", "/v2/Services", "FriendlyName=Wire&Totp.TimeStep=30&Push.IncludeDate=false", "X-Forwarded-Proto", "https")
	if r.status != 201 {
		t.Fatalf("create service: %d %s", r.status, r.raw)
	}
	for _, f := range []string{"sid", "account_sid", "friendly_name", "code_length", "lookup_enabled", "psd2_enabled",
		"skip_sms_to_landlines", "dtmf_input_required", "tts_name", "do_not_share_warning_enabled", "custom_code_enabled",
		"push", "totp", "default_template_sid", "whatsapp", "passkeys", "verify_event_subscription_enabled",
		"date_created", "date_updated", "url", "links"} {
		if _, ok := r.body[f]; !ok {
			t.Errorf("service lacks %q", f)
		}
	}
	sid := r.str("sid")
	if !sidRe.MatchString(sid) || !dateRe.MatchString(r.str("date_created")) {
		t.Errorf("sid %q date %q", sid, r.str("date_created"))
	}
	if got, want := r.str("url"), "https://example.com/v2/Services/"+sid; got != want {
		t.Errorf("url %q, want %q", got, want)
	}
	if totp, _ := r.body["totp"].(map[string]any); totp["time_step"] != float64(30) {
		t.Errorf("totp %v, want time_step 30", r.body["totp"])
	}
	if push, _ := r.body["push"].(map[string]any); push["include_date"] != false {
		t.Errorf("push %v", r.body["push"])
	}
	if passkeys, _ := r.body["passkeys"].(map[string]any); passkeys["relying_party"] == nil {
		t.Errorf("passkeys %v, want a relying_party object", r.body["passkeys"])
	}
	if r.header.Get("Twilio-Request-Id") == "" {
		t.Error("no Twilio-Request-Id header")
	}

	r = e.do(t, "POST", "/v2/Services/"+sid+"/Verifications", "To=%2B9779812345678&Channel=sms")
	if r.status != 201 {
		t.Fatalf("create verification: %d %s", r.status, r.raw)
	}
	for _, f := range []string{"sid", "service_sid", "account_sid", "to", "channel", "status", "valid", "lookup", "amount",
		"payee", "send_code_attempts", "date_created", "date_updated", "sna", "url"} {
		if _, ok := r.body[f]; !ok {
			t.Errorf("verification lacks %q", f)
		}
	}
	if strings.Contains(r.raw, e.inbox.code("+9779812345678")) {
		t.Errorf("the verification shows the code: %s", r.raw)
	}
	attempts, _ := r.body["send_code_attempts"].([]any)
	if len(attempts) != 1 {
		t.Fatalf("send_code_attempts %v", r.body["send_code_attempts"])
	}
	a, _ := attempts[0].(map[string]any)
	if s, _ := a["attempt_sid"].(string); !sidRe.MatchString(s) || !strings.HasPrefix(s, "VL") || a["channel"] != "sms" {
		t.Errorf("attempt %v", a)
	}
	if tm, _ := a["time"].(string); !dateRe.MatchString(tm) {
		t.Errorf("attempt time %v", a["time"])
	}
	if r.body["amount"] != nil || r.body["sna"] != nil {
		t.Errorf("amount %v sna %v, want null", r.body["amount"], r.body["sna"])
	}

	// twilio-go sends Content-Type on GET and DELETE too.
	r = e.do(t, "GET", "/v2/Services/"+sid+"/Verifications/%2B9779812345678", "")
	if r.status != 200 || r.str("to") != "+9779812345678" {
		t.Errorf("fetch by number: %d %s", r.status, r.raw)
	}

	// Every refusal is Twilio's JSON error body.
	for _, tt := range []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		code                     float64
	}{
		{"unknown path", "GET", "/v2/Nope", "", nil, 404, 20404},
		{"wrong method", "PUT", "/v2/Services", "", nil, 405, 20004},
		{"JSON body", "POST", "/v2/Services", `{"FriendlyName":"x"}`, []string{"Content-Type", "application/json"}, 415, 20415},
		{"bad form", "POST", "/v2/Services", "FriendlyName=%zz", nil, 400, 60200},
		{"too large", "POST", "/v2/Services", "FriendlyName=" + strings.Repeat("x", twilioapi.MaxBodyBytes), nil, 413, 20413},
		{"bad page size", "GET", "/v2/Services?PageSize=0", "", nil, 400, 60200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, tt.method, tt.path, tt.body, tt.headers...)
			if r.status != tt.status || r.code() != tt.code || r.body["status"] != float64(tt.status) {
				t.Fatalf("got %d %s, want %d code %v", r.status, r.raw, tt.status, tt.code)
			}
			if mi, _ := r.body["more_info"].(string); !strings.HasPrefix(mi, "https://www.twilio.com/docs/errors/") {
				t.Errorf("more_info %q", mi)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	e := newEnv(t)
	sid := e.engine.DefaultServiceID()
	var r response
	for i := 0; i < 6; i++ {
		r = e.do(t, "POST", "/v2/Services/"+sid+"/Verifications", "To=%2B9779812345678&Channel=sms")
	}
	if r.status != 429 || r.code() != twilioapi.CodeMaxSendAttempts || r.header.Get("Retry-After") == "" {
		t.Fatalf("sixth start: %d %s, Retry-After %q", r.status, r.raw, r.header.Get("Retry-After"))
	}
}

func TestPagingMeta(t *testing.T) {
	e := newEnv(t)
	for _, name := range []string{"A", "B"} {
		if r := e.do(t, "POST", "/v2/Services", "FriendlyName="+name); r.status != 201 {
			t.Fatal(r.raw)
		}
	}
	r := e.do(t, "GET", "/v2/Services?PageSize=2&Page=1", "")
	m, _ := r.body["meta"].(map[string]any)
	list, _ := r.body["services"].([]any)
	if r.status != 200 || len(list) != 1 || m["page"] != float64(1) || m["page_size"] != float64(2) || m["next_page_url"] != nil || m["key"] != "services" {
		t.Fatalf("page 1: %s", r.raw)
	}
	if p, _ := m["previous_page_url"].(string); !strings.Contains(p, "Page=0") || !strings.HasPrefix(p, "http://example.com/v2/Services?PageSize=2") {
		t.Errorf("previous_page_url %q", p)
	}
	r = e.do(t, "GET", "/v2/Services?PageSize=2", "")
	m, _ = r.body["meta"].(map[string]any)
	if n, _ := m["next_page_url"].(string); !strings.Contains(n, "Page=1") || !strings.Contains(n, "PageToken=") {
		t.Errorf("next_page_url %v", m["next_page_url"])
	}
}

// TestScopes: credentials without the admin scope reach only their own
// service.
func TestScopes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	other := pv.NewService("Other")
	if err := e.engine.CreateService(ctx, other, &pv.ServiceFeatures{}); err != nil {
		t.Fatal(err)
	}
	// Keys made with --twilio hold every scope; store by hand one that
	// holds only send and check.
	secret := strings.Repeat("ab", 16)
	lim := &pv.APIKey{ID: "SK" + strings.Repeat("1", 32), ServiceID: e.engine.DefaultServiceID(), Name: "limited", Hash: verify.HashAPIKey(secret),
		Scopes: []string{verify.ScopeSend, verify.ScopeCheck}, CreatedAt: time.Now()}
	if err := e.store.CreateAPIKey(ctx, lim); err != nil {
		t.Fatal(err)
	}
	r := func(method, path, body string) response {
		req := httptest.NewRequest("GET", "/", nil)
		req.SetBasicAuth(lim.ID, secret)
		return e.do(t, method, path, body, "Authorization", req.Header.Get("Authorization"))
	}
	if got := r("GET", "/v2/Services/"+other.ID, ""); got.status != 404 {
		t.Errorf("other service: %d %s", got.status, got.raw)
	}
	if got := r("POST", "/v2/Services", "FriendlyName=x"); got.status != 403 || got.code() != twilioapi.CodeForbidden {
		t.Errorf("create service without admin: %d %s", got.status, got.raw)
	}
	if got := r("GET", "/v2/Services", ""); len(got.body["services"].([]any)) != 1 {
		t.Errorf("list shows other services: %s", got.raw)
	}
	if got := r("POST", "/v2/Services/"+lim.ServiceID+"/Verifications", "To=%2B9779812345678&Channel=sms"); got.status != 201 {
		t.Errorf("start in own service: %d %s", got.status, got.raw)
	}
	if got := r("GET", "/v2/Attempts", ""); len(got.body["attempts"].([]any)) != 1 {
		t.Errorf("own attempts: %s", got.raw)
	}
	if got := r("GET", "/v2/Attempts?VerifyServiceSid="+other.ID, ""); got.status != 200 || len(got.body["attempts"].([]any)) != 0 {
		t.Errorf("another service's attempts: %d %s", got.status, got.raw)
	}
	if got := r("GET", "/v2/Attempts/Summary?VerifyServiceSid="+other.ID, ""); got.body["total_attempts"] != float64(0) {
		t.Errorf("another service's summary: %s", got.raw)
	}
}
