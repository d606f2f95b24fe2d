package web_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/httpapi"
	"github.com/phoneverify/phoneverify/internal/testenv"
	"github.com/phoneverify/phoneverify/otp"
	"github.com/phoneverify/phoneverify/outbox"
	"github.com/phoneverify/phoneverify/store"
	"github.com/phoneverify/phoneverify/token"
	"github.com/phoneverify/phoneverify/verify"
	"github.com/phoneverify/phoneverify/web"
)

const (
	bootstrapKey  = "web-test-key-0123456789"
	adminPassword = "correct horse battery"
)

// phones stands in for the phones: it keeps the codes sent to each number.
type phones struct {
	drain func() // delivers what the outbox holds
	mu    sync.Mutex
	codes map[string]string
}

func (p *phones) Send(_ context.Context, m *pv.Message) (*pv.SendResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.codes[m.To] = m.Code
	return &pv.SendResult{Gateway: "test"}, nil
}

func (p *phones) code(to string) string {
	p.drain()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.codes[to]
}

type env struct {
	store  *store.Store
	engine *verify.Engine
	phones *phones
	clock  *testenv.Clock
	srv    *httptest.Server
	client *http.Client
	// csrf is the token of the last page read.
	csrf string
}

// options choose what newEnv serves.
type options struct {
	demo bool
	// inbox wires the development inbox in front of the phones.
	inbox bool
	// tweak may change the pages' configuration.
	tweak func(*web.Config)
	// fraud turns fraud protection on (block mode).
	fraud bool
}

// newEnv serves the API and the pages of a node on SQLite in a temporary
// directory.
func newEnv(t *testing.T, o options) *env {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "pv.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	secret := bytes.Repeat([]byte("s"), 32)
	hasher, _ := otp.NewHasher(secret)
	clk := testenv.NewClock(time.Date(2026, 11, 22, 12, 30, 0, 0, time.UTC))
	keys, err := token.NewKeyring(ctx, st, secret, clk.Now(), token.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ph := &phones{codes: map[string]string{}}
	var sender pv.Sender = ph
	var inbox *web.Inbox
	if o.inbox {
		inbox = web.NewInbox(ph, clk.Now)
		sender = inbox
	}
	sealer, _ := otp.NewSealer(secret)
	var d *outbox.Dispatcher
	vcfg := verify.Config{Store: st, Sealer: sealer, Hasher: hasher, Keys: keys, BootstrapKey: bootstrapKey, Now: clk.Now,
		Notify: func() { d.Notify() }}
	if o.fraud {
		vcfg.Fraud = &verify.FraudConfig{DefaultMode: pv.FraudBlock}
	}
	e, err := verify.New(vcfg)
	if err != nil {
		t.Fatal(err)
	}
	// Workers deliver as on a running node (the demo's inbox waits for
	// them); reading a code drains first, so tests need not wait.
	if d, err = outbox.New(outbox.Config{Store: st, Sender: sender, Sealer: sealer, Failer: e, Now: clk.Now}); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	ph.drain = func() {
		if _, err := d.Drain(context.Background()); err != nil {
			t.Errorf("Drain: %v", err)
		}
	}
	if _, err := e.EnsureDefaultService(ctx, pv.NewService("Test")); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	mux.Handle("/", httpapi.New(httpapi.Config{Engine: e, JWKS: func() ([]byte, error) { return keys.JWKS(clk.Now()) }}))
	cfg := web.Config{Engine: e, Store: st, Secret: secret, AdminPassword: adminPassword, APIURL: srv.URL,
		Gateways: []web.Gateway{{Name: "test", Description: "keeps codes in memory"}}, Now: clk.Now,
		Demo: o.demo, Inbox: inbox}
	if o.tweak != nil {
		o.tweak(&cfg)
	}
	h, err := web.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.Mount(mux)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &env{store: st, engine: e, phones: ph, clock: clk, srv: srv, client: client}
}

type page struct {
	status int
	header http.Header
	body   string
}

var csrfInput = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func (e *env) do(t *testing.T, req *http.Request) page {
	t.Helper()
	res, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if m := csrfInput.FindStringSubmatch(string(b)); m != nil {
		e.csrf = m[1]
	}
	return page{status: res.StatusCode, header: res.Header, body: string(b)}
}

func (e *env) get(t *testing.T, path string) page {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	return e.do(t, req)
}

// post submits a form with the token of the last page read, unless form
// sets csrf_token itself.
func (e *env) post(t *testing.T, path string, form url.Values, headers ...string) page {
	t.Helper()
	if _, ok := form["csrf_token"]; !ok {
		form.Set("csrf_token", e.csrf)
	}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return e.do(t, req)
}

func (e *env) signIn(t *testing.T, secret string) page {
	t.Helper()
	e.get(t, "/admin/login")
	return e.post(t, "/admin/login", url.Values{"secret": {secret}})
}

func TestAdminRequiresSignIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	e.get(t, "/admin/login") // a CSRF cookie and token, so only the session is missing
	tests := []struct {
		method, path string
		wantLocation string
	}{
		{"GET", "/admin/", "/admin/login"},
		{"GET", "/admin/verifications", "/admin/login?next=/admin/verifications"},
		{"GET", "/admin/verifications/VE00000000000000000000000000000000", "/admin/login?next=/admin/verifications/VE00000000000000000000000000000000"},
		{"GET", "/admin/keys", "/admin/login?next=/admin/keys"},
		{"POST", "/admin/keys", "/admin/login"},
		{"POST", "/admin/keys/KY0/revoke", "/admin/login"},
		{"POST", "/admin/logout", "/admin/login"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			var p page
			if tt.method == "GET" {
				p = e.get(t, tt.path)
			} else {
				p = e.post(t, tt.path, url.Values{"name": {"sneaky"}, "scope": {"admin"}})
			}
			if got, want := p.status, http.StatusSeeOther; got != want {
				t.Errorf("status = %d, want %d", got, want)
			}
			if got := p.header.Get("Location"); got != tt.wantLocation {
				t.Errorf("Location = %q, want %q", got, tt.wantLocation)
			}
		})
	}
	keys, err := e.store.APIKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("%d keys exist after posts without a session, want 0", len(keys))
	}
}

func TestAdminSignIn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		secret     func(t *testing.T, e *env) string
		wantStatus int
		wantText   string
	}{
		{"admin password", func(*testing.T, *env) string { return adminPassword }, http.StatusSeeOther, ""},
		{"bootstrap key", func(*testing.T, *env) string { return bootstrapKey }, http.StatusSeeOther, ""},
		{"admin-scoped key", func(t *testing.T, e *env) string {
			raw, _, err := e.engine.CreateAPIKey(context.Background(), e.engine.DefaultServiceID(), "ops", []string{verify.ScopeAdmin})
			if err != nil {
				t.Fatal(err)
			}
			return raw
		}, http.StatusSeeOther, ""},
		{"key without the admin scope", func(t *testing.T, e *env) string {
			raw, _, err := e.engine.CreateAPIKey(context.Background(), e.engine.DefaultServiceID(), "app", []string{verify.ScopeSend})
			if err != nil {
				t.Fatal(err)
			}
			return raw
		}, http.StatusUnauthorized, "This API key lacks the admin scope."},
		{"wrong password", func(*testing.T, *env) string { return "correct horse battery!" }, http.StatusUnauthorized, "The password or API key is not right."},
		{"empty", func(*testing.T, *env) string { return "" }, http.StatusUnauthorized, "Enter the admin password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, options{})
			p := e.signIn(t, tt.secret(t, e))
			if p.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body:\n%s", p.status, tt.wantStatus, p.body)
			}
			if tt.wantText != "" {
				// The message sits next to the field it is about.
				if !regexp.MustCompile(`(?s)id="secret".*?<p class="error" id="secret-error"><strong>Error:</strong> ` + regexp.QuoteMeta(tt.wantText)).MatchString(p.body) {
					t.Errorf("no error %q next to the field in:\n%s", tt.wantText, p.body)
				}
				return
			}
			if got := e.get(t, "/admin/"); got.status != http.StatusOK || !strings.Contains(got.body, "Verifications per hour") {
				t.Errorf("overview after sign-in: %d", got.status)
			}
		})
	}
}

func TestAdminSessionCookie(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		tls        bool
		secure     bool
		wantSecure bool
	}{
		{"plain http", false, false, false},
		{"over TLS", true, false, true},
		{"public URL is https", false, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, options{tweak: func(c *web.Config) { c.SecureCookies = tt.secure }})
			e.get(t, "/admin/login")
			// Straight to the handler, to set r.TLS.
			mux := http.NewServeMux()
			h, err := web.New(context.Background(), web.Config{Engine: e.engine, Store: e.store, Secret: bytes.Repeat([]byte("s"), 32),
				AdminPassword: adminPassword, SecureCookies: tt.secure, Now: e.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			h.Mount(mux)
			u, _ := url.Parse(e.srv.URL)
			form := url.Values{"secret": {adminPassword}, "csrf_token": {e.csrf}}
			req := httptest.NewRequest(http.MethodPost, "/admin/login", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for _, c := range e.client.Jar.Cookies(&url.URL{Scheme: "http", Host: u.Host, Path: "/admin/"}) {
				req.AddCookie(c)
			}
			if tt.tls {
				req.TLS = &tls.ConnectionState{}
			}
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code != http.StatusSeeOther {
				t.Fatalf("status = %d, want 303; body:\n%s", rec.Code, rec.Body)
			}
			var session *http.Cookie
			for _, c := range rec.Result().Cookies() {
				if c.Name == "pv_admin_session" {
					session = c
				}
			}
			if session == nil {
				t.Fatal("no session cookie set")
			}
			if !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Path != "/admin/" {
				t.Errorf("cookie HttpOnly=%v SameSite=%v Path=%q, want HttpOnly, Strict, /admin/", session.HttpOnly, session.SameSite, session.Path)
			}
			if session.Secure != tt.wantSecure {
				t.Errorf("cookie Secure = %v, want %v", session.Secure, tt.wantSecure)
			}
		})
	}
}

func TestSessionEnds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// end does what should end the session.
		end func(t *testing.T, e *env, keyID string)
	}{
		{"expiry", func(t *testing.T, e *env, _ string) { e.clock.Advance(9 * time.Hour) }},
		{"revoked key", func(t *testing.T, e *env, id string) {
			if err := e.engine.RevokeAPIKey(context.Background(), id); err != nil {
				t.Fatal(err)
			}
		}},
		{"tampered cookie", func(t *testing.T, e *env, _ string) {
			u, _ := url.Parse(e.srv.URL + "/admin/")
			for _, c := range e.client.Jar.Cookies(u) {
				if c.Name == "pv_admin_session" {
					payload, sig, _ := strings.Cut(c.Value, ".")
					c.Value = payload + "x." + sig
					c.Path = "/admin/"
					e.client.Jar.SetCookies(u, []*http.Cookie{c})
				}
			}
		}},
		{"sign-out", func(t *testing.T, e *env, _ string) {
			e.get(t, "/admin/")
			if p := e.post(t, "/admin/logout", url.Values{}); p.status != http.StatusSeeOther {
				t.Fatalf("logout status = %d", p.status)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, options{})
			raw, k, err := e.engine.CreateAPIKey(context.Background(), e.engine.DefaultServiceID(), "ops", []string{verify.ScopeAdmin})
			if err != nil {
				t.Fatal(err)
			}
			if p := e.signIn(t, raw); p.status != http.StatusSeeOther {
				t.Fatalf("sign-in status = %d", p.status)
			}
			if p := e.get(t, "/admin/keys"); p.status != http.StatusOK {
				t.Fatalf("keys page before: %d", p.status)
			}
			tt.end(t, e, k.ID)
			if p := e.get(t, "/admin/keys"); p.status != http.StatusSeeOther {
				t.Errorf("keys page after: status %d, want 303 to the sign-in page", p.status)
			}
		})
	}
}

func TestAdminSignInRateLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	for i := range 5 {
		if p := e.signIn(t, "wrong password "); p.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: status %d, want 401", i+1, p.status)
		}
	}
	// Even the right password is refused now.
	p := e.signIn(t, adminPassword)
	if got, want := p.status, http.StatusTooManyRequests; got != want {
		t.Fatalf("status = %d, want %d", got, want)
	}
	if p.header.Get("Retry-After") == "" || !strings.Contains(p.body, "Too many failed sign-in attempts") {
		t.Errorf("429 without Retry-After or message: %v\n%s", p.header, p.body)
	}
	e.clock.Advance(16 * time.Minute)
	if p := e.signIn(t, adminPassword); p.status != http.StatusSeeOther {
		t.Errorf("after the window: status %d, want 303", p.status)
	}
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		form    url.Values
		headers []string
		want    int
	}{
		{"valid token", url.Values{}, nil, http.StatusCreated},
		{"no token", url.Values{"csrf_token": {""}}, nil, http.StatusForbidden},
		{"forged token", url.Values{"csrf_token": {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}, nil, http.StatusForbidden},
		{"cross-site post with a valid token", url.Values{}, []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"other origin with a valid token", url.Values{}, []string{"Origin", "https://evil.example"}, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, options{})
			if p := e.signIn(t, adminPassword); p.status != http.StatusSeeOther {
				t.Fatalf("sign-in: %d", p.status)
			}
			e.get(t, "/admin/keys")
			form := tt.form
			form.Set("name", "ci")
			form.Set("service", e.engine.DefaultServiceID())
			form.Add("scope", verify.ScopeSend)
			p := e.post(t, "/admin/keys", form, tt.headers...)
			if p.status != tt.want {
				t.Fatalf("status = %d, want %d; body:\n%s", p.status, tt.want, p.body)
			}
			keys, _ := e.store.APIKeys(context.Background())
			if created := len(keys) == 1; created != (tt.want == http.StatusCreated) {
				t.Errorf("%d keys after the post, want one only when it is accepted", len(keys))
			}
		})
	}

	t.Run("token of another browser", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, options{})
		other := newEnv(t, options{})
		other.get(t, "/admin/login")
		e.get(t, "/admin/login")
		p := e.post(t, "/admin/login", url.Values{"secret": {adminPassword}, "csrf_token": {other.csrf}})
		if p.status != http.StatusForbidden {
			t.Errorf("sign-in with another cookie's token: status %d, want 403", p.status)
		}
	})

	t.Run("demo form", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, options{demo: true})
		e.get(t, "/demo/signup")
		p := e.post(t, "/demo/signup", url.Values{"csrf_token": {""}, "username": {"mallory"}, "password": {"password1"}, "phone": {"+14155552671"}})
		if p.status != http.StatusForbidden || !strings.Contains(p.body, "This form has expired") {
			t.Errorf("demo post without token: status %d, want 403 saying the form expired", p.status)
		}
		if e.phones.code("+14155552671") != "" {
			t.Error("a code was sent for a forged post")
		}
	})
}

// TestAdminPagesMaskNumbers: the dashboard shows numbers masked and never a
// code (the store holds none) or its hash.
func TestAdminPagesMaskNumbers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	ctx := context.Background()
	svc := e.engine.DefaultServiceID()
	approved, err := e.engine.Start(ctx, verify.StartRequest{ServiceID: svc, To: "+9779812345678", Subject: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.engine.Check(ctx, verify.CheckRequest{ServiceID: svc, ID: approved.ID, Code: e.phones.code("+9779812345678"), Subject: "u1"}); err != nil {
		t.Fatal(err)
	}
	pending, err := e.engine.Start(ctx, verify.StartRequest{ServiceID: svc, To: "+14155552671", Amount: "EUR 10.00", Payee: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	codes := []string{e.phones.code("+9779812345678"), e.phones.code("+14155552671")}
	if p := e.signIn(t, adminPassword); p.status != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", p.status)
	}
	stored, err := e.store.VerificationByID(ctx, pending.ID)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want []string
	}{
		{"/admin/", []string{"Verifications per hour", `id="stat-started">2<`, `id="stat-conversion">50.0 %<`, "NP", "US",
			"not enabled", "does not record which gateway"}},
		{"/admin/?range=7d", []string{`id="stat-started">2<`}},
		{"/admin/verifications", []string{"+97798*****78", "+141*****71", "approved", "pending"}},
		{"/admin/verifications?status=approved", []string{"+97798*****78"}},
		{"/admin/verifications/" + approved.ID, []string{"+97798*****78", "Approved: the right code was checked", "Status history"}},
		{"/admin/verifications/" + pending.ID, []string{"+141*****71", "EUR 10.00", "Pending: the code expires then."}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			p := e.get(t, tt.path)
			if p.status != http.StatusOK {
				t.Fatalf("status = %d, want 200", p.status)
			}
			body := strings.ReplaceAll(p.body, "&#43;", "+")
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, leak := range append(codes, "9812345678", "4155552671", string(stored.CodeHash)) {
				if strings.Contains(body, leak) {
					t.Errorf("page shows %q: a code, a full number or a code hash", leak)
				}
			}
		})
	}
	if p := e.get(t, "/admin/verifications?status=approved"); strings.Contains(strings.ReplaceAll(p.body, "&#43;", "+"), "+141*****71") {
		t.Error("the status filter kept a pending verification")
	}
}

func TestAdminKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	if p := e.signIn(t, adminPassword); p.status != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", p.status)
	}
	e.get(t, "/admin/keys")
	tests := []struct {
		name      string
		form      url.Values
		wantField string
		wantText  string
	}{
		{"no name", url.Values{"scope": {"verify:send"}}, "name", "Name the key"},
		{"no scope", url.Values{"name": {"ci"}}, "scope", "Choose at least one scope."},
		{"unknown service", url.Values{"name": {"ci"}, "scope": {"verify:send"}, "service": {"VA0"}}, "service", "Choose a service."},
		{"bad address range", url.Values{"name": {"ci"}, "scope": {"verify:send"}, "allowed_ips": {"10.0.0.0/99"}}, "allowed_ips", "&#34;10.0.0.0/99&#34; is not an IP address or CIDR range"},
		{"unknown kind", url.Values{"name": {"ci"}, "scope": {"verify:send"}, "kind": {"aws"}}, "kind", "Choose a phoneverify API key or Twilio-compatible credentials."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := e.post(t, "/admin/keys", tt.form)
			if p.status != http.StatusUnprocessableEntity {
				t.Fatalf("status = %d, want 422", p.status)
			}
			if !strings.Contains(p.body, `id="`+tt.wantField+`-error"><strong>Error:</strong> `+tt.wantText) {
				t.Errorf("no error %q for field %s", tt.wantText, tt.wantField)
			}
		})
	}

	p := e.post(t, "/admin/keys", url.Values{"name": {"checkout"}, "service": {e.engine.DefaultServiceID()}, "scope": {"verify:send", "verify:check"}})
	raw := regexp.MustCompile(`id="new-key">(pvk_[0-9a-f]+)<`).FindStringSubmatch(p.body)
	if p.status != http.StatusCreated || raw == nil {
		t.Fatalf("create: status %d, no key shown:\n%s", p.status, p.body)
	}
	if _, err := e.engine.Authenticate(context.Background(), raw[1], ""); err != nil {
		t.Fatalf("the key shown does not authenticate: %v", err)
	}
	list := e.get(t, "/admin/keys")
	if strings.Contains(list.body, raw[1]) {
		t.Error("the key is shown again on the list")
	}
	id := regexp.MustCompile(`action="/admin/keys/(KY[0-9a-f]+)/revoke"`).FindStringSubmatch(list.body)
	if id == nil {
		t.Fatal("no revoke button")
	}
	p = e.post(t, "/admin/keys/"+id[1]+"/revoke", url.Values{})
	if p.status != http.StatusSeeOther {
		t.Fatalf("revoke: %d", p.status)
	}
	if p := e.get(t, p.header.Get("Location")); !strings.Contains(p.body, "The key “checkout” is revoked") {
		t.Errorf("no notice after revoking:\n%s", p.body)
	}
	if _, err := e.engine.Authenticate(context.Background(), raw[1], ""); pv.ErrorCode(err) != pv.EUnauthorized {
		t.Errorf("revoked key: Authenticate = %v, want unauthorized", err)
	}

	// A key restricted to a range: listed with it, refused from elsewhere.
	p = e.post(t, "/admin/keys", url.Values{"name": {"office"}, "service": {e.engine.DefaultServiceID()},
		"scope": {"verify:send"}, "allowed_ips": {"203.0.113.0/24"}})
	office := regexp.MustCompile(`id="new-key">(pvk_[0-9a-f]+)<`).FindStringSubmatch(p.body)
	if p.status != http.StatusCreated || office == nil {
		t.Fatalf("create restricted: status %d", p.status)
	}
	if _, err := e.engine.Authenticate(context.Background(), office[1], "198.51.100.1"); pv.ErrorCode(err) != pv.EForbidden {
		t.Errorf("restricted key from outside: %v, want forbidden", err)
	}
	if _, err := e.engine.Authenticate(context.Background(), office[1], "203.0.113.9"); err != nil {
		t.Errorf("restricted key from inside: %v", err)
	}
	if list := e.get(t, "/admin/keys"); !strings.Contains(list.body, "203.0.113.0/24") {
		t.Error("the list does not show the key's range")
	}

	// Twilio-compatible credentials, here for a trusted backend that may
	// send RiskCheck=disable: shown once, and they authenticate with the
	// chosen scopes.
	p = e.post(t, "/admin/keys", url.Values{"name": {"backend"}, "service": {e.engine.DefaultServiceID()}, "kind": {"twilio"},
		"scope": {"verify:send", "verify:check", "risk_check:override"}})
	sid := regexp.MustCompile(`id="new-account-sid">(AC[0-9a-f]{32})<`).FindStringSubmatch(p.body)
	keySID := regexp.MustCompile(`id="new-api-key-sid">(SK[0-9a-f]{32})<`).FindStringSubmatch(p.body)
	token := regexp.MustCompile(`id="new-auth-token">([0-9a-f]{32})<`).FindStringSubmatch(p.body)
	if p.status != http.StatusCreated || sid == nil || keySID == nil || token == nil {
		t.Fatalf("create Twilio credentials: status %d, credentials not all shown:\n%s", p.status, p.body)
	}
	for _, user := range []string{sid[1], keySID[1]} {
		k, _, err := e.engine.AuthenticateCompat(context.Background(), user, token[1], "")
		if err != nil {
			t.Fatalf("the Twilio credentials shown do not authenticate as %s: %v", user, err)
		}
		if !verify.HasScope(k, verify.ScopeRiskCheckOverride) || verify.HasScope(k, verify.ScopeAdmin) {
			t.Errorf("Twilio credentials' scopes = %v, want the three chosen", k.Scopes)
		}
	}
	if list := e.get(t, "/admin/keys"); strings.Contains(list.body, token[1]) {
		t.Error("the auth token is shown again on the list")
	}
}

// TestDemoShowsCodesOnlyInDevelopment: with an inbox (development) the code
// page shows the message; without one (production) it never does.
func TestDemoShowsCodesOnlyInDevelopment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		inbox   bool
		wantDev bool
	}{
		{"development", true, true},
		{"production", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, options{demo: true, inbox: tt.inbox})
			e.get(t, "/demo/signup")
			p := e.post(t, "/demo/signup", url.Values{"username": {"alice"}, "password": {"password1"}, "phone": {"+14155552671"}})
			if p.status != http.StatusSeeOther {
				t.Fatalf("sign-up: status %d\n%s", p.status, p.body)
			}
			code := e.phones.code("+14155552671")
			page := e.get(t, "/demo/signup/verify")
			if got := strings.Contains(page.body, "Development inbox"); got != tt.wantDev {
				t.Errorf("development panel shown = %v, want %v", got, tt.wantDev)
			}
			if got := strings.Contains(page.body, "code is "+code+"<"); got != tt.wantDev {
				t.Errorf("the code page shows the code = %v, want %v", got, tt.wantDev)
			}
		})
	}
}

func TestDemoSignUpErrorsNextToFields(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{demo: true})
	e.get(t, "/demo/signup")
	tests := []struct {
		name      string
		form      url.Values
		wantField string
		wantText  string
	}{
		{"no username", url.Values{"password": {"password1"}, "phone": {"+14155552671"}}, "username", "Choose a username."},
		{"bad username", url.Values{"username": {"A B"}, "password": {"password1"}, "phone": {"+14155552671"}}, "username", "lower-case letters"},
		{"short password", url.Values{"username": {"bob"}, "password": {"short"}, "phone": {"+14155552671"}}, "password", "8 to 128 characters"},
		{"no phone", url.Values{"username": {"bob"}, "password": {"password1"}}, "phone", "Enter your mobile phone number."},
		{"invalid phone", url.Values{"username": {"bob"}, "password": {"password1"}, "phone": {"+1 555"}}, "phone", "The phone number is too short"},
		{"fixed line", url.Values{"username": {"bob"}, "password": {"password1"}, "phone": {"+44 20 7946 0958"}}, "phone", "cannot receive text messages"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := e.post(t, "/demo/signup", tt.form)
			if p.status != http.StatusUnprocessableEntity {
				t.Fatalf("status = %d, want 422", p.status)
			}
			re := regexp.MustCompile(`(?s)id="` + tt.wantField + `".*?<p class="error" id="` + tt.wantField + `-error"><strong>Error:</strong> [^<]*` + regexp.QuoteMeta(tt.wantText))
			if !re.MatchString(p.body) {
				t.Errorf("no error %q next to %s in:\n%s", tt.wantText, tt.wantField, p.body)
			}
			if strings.Contains(p.body, "password1") {
				t.Error("the page echoes the password")
			}
		})
	}
}
