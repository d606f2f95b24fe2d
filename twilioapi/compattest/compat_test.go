package compattest

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twilio/twilio-go"
	"github.com/twilio/twilio-go/client"
	verifyv2 "github.com/twilio/twilio-go/rest/verify/v2"

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

// inbox is the test gateway: it keeps every message sent to each number.
type inbox struct {
	drain func() // delivers what the outbox holds, as a node's workers would
	mu    sync.Mutex
	msgs  map[string][]*pv.Message
}

func (i *inbox) Send(_ context.Context, m *pv.Message) (*pv.SendResult, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.msgs[m.To] = append(i.msgs[m.To], m)
	return &pv.SendResult{Gateway: "inbox"}, nil
}

// last returns the last message sent to a number.
func (i *inbox) last(tb testing.TB, to string) *pv.Message {
	tb.Helper()
	i.drain()
	i.mu.Lock()
	defer i.mu.Unlock()
	ms := i.msgs[to]
	if len(ms) == 0 {
		tb.Fatalf("no message was sent to %s", to)
	}
	return ms[len(ms)-1]
}

// rewrite sends requests for Twilio's hosts to the test server: twilio-go
// has no base-URL setting, so this is how an application is pointed at
// phoneverify in a test.
type rewrite struct {
	target *url.URL
	next   http.RoundTripper
}

func (rw rewrite) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.URL.Host, ".twilio.com") {
		req = req.Clone(req.Context())
		req.URL.Scheme, req.URL.Host, req.Host = rw.target.Scheme, rw.target.Host, ""
	}
	return rw.next.RoundTrip(req)
}

type env struct {
	inbox  *inbox
	client *twilio.RestClient
	srv    *httptest.Server
	engine *verify.Engine
}

func newEnv(tb testing.TB) *env {
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
	secret := bytes.Repeat([]byte("s"), 32)
	hasher, err := otp.NewHasher(secret)
	if err != nil {
		tb.Fatal(err)
	}
	keys, err := token.NewKeyring(ctx, st, secret, time.Now(), token.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	sealer, err := otp.NewSealer(secret)
	if err != nil {
		tb.Fatal(err)
	}
	e, err := verify.New(verify.Config{Store: st, Sealer: sealer, Hasher: hasher, Keys: keys})
	if err != nil {
		tb.Fatal(err)
	}
	in := &inbox{msgs: map[string][]*pv.Message{}}
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
	srv := httptest.NewServer(twilioapi.New(twilioapi.Config{Engine: e, AccountSID: accountSID, AuthToken: authToken}))
	tb.Cleanup(srv.Close)
	return &env{inbox: in, srv: srv, engine: e, client: newClient(tb, srv, accountSID, authToken)}
}

func newClient(tb testing.TB, srv *httptest.Server, user, pass string) *twilio.RestClient {
	tb.Helper()
	target, err := url.Parse(srv.URL)
	if err != nil {
		tb.Fatal(err)
	}
	c := &client.Client{
		Credentials: client.NewCredentials(user, pass),
		HTTPClient:  &http.Client{Transport: rewrite{target: target, next: http.DefaultTransport}, Timeout: 10 * time.Second},
	}
	c.SetAccountSid(accountSID)
	return twilio.NewRestClientWithParams(twilio.ClientParams{Client: c})
}

// restError returns err as Twilio's error type, failing if it is not one.
func restError(tb testing.TB, err error) *client.TwilioRestError {
	tb.Helper()
	var e *client.TwilioRestError
	if !errors.As(err, &e) {
		tb.Fatalf("got error %v (%T), want *client.TwilioRestError", err, err)
	}
	return e
}

func wantCode(tb testing.TB, err error, status, code int, contains string) {
	tb.Helper()
	e := restError(tb, err)
	if e.Status != status || e.Code != code {
		tb.Fatalf("got status %d code %d (%q), want status %d code %d", e.Status, e.Code, e.Message, status, code)
	}
	if !strings.Contains(e.Message, contains) {
		tb.Errorf("message %q does not say %q", e.Message, contains)
	}
	if want := "https://www.twilio.com/docs/errors/"; !strings.HasPrefix(e.MoreInfo, want) {
		tb.Errorf("more_info %q, want a link under %s", e.MoreInfo, want)
	}
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func boolean(p *bool) bool { return p != nil && *p }

func createService(tb testing.TB, api *verifyv2.ApiService, name string, tweak func(*verifyv2.CreateServiceParams)) *verifyv2.VerifyV2Service {
	tb.Helper()
	p := (&verifyv2.CreateServiceParams{}).SetFriendlyName(name)
	if tweak != nil {
		tweak(p)
	}
	svc, err := api.CreateService(p)
	if err != nil {
		tb.Fatalf("create service %q: %v", name, err)
	}
	return svc
}

func start(api *verifyv2.ApiService, svc, to string, tweak func(*verifyv2.CreateVerificationParams)) (*verifyv2.VerifyV2Verification, error) {
	p := (&verifyv2.CreateVerificationParams{}).SetTo(to).SetChannel("sms")
	if tweak != nil {
		tweak(p)
	}
	return api.CreateVerification(svc, p)
}

func check(api *verifyv2.ApiService, svc string, p *verifyv2.CreateVerificationCheckParams) (*verifyv2.VerifyV2VerificationCheck, error) {
	return api.CreateVerificationCheck(svc, p)
}

func wrongCode(code string) string {
	if code == "000000" {
		return "111111"
	}
	return "000000"
}

// TestVerifyLifecycle drives services, verifications and checks the way an
// application written for Twilio Verify does.
func TestVerifyLifecycle(t *testing.T) {
	e := newEnv(t)
	api := e.client.VerifyV2
	svc := createService(t, api, "Acme", func(p *verifyv2.CreateServiceParams) {
		p.SetCodeLength(6).SetDoNotShareWarningEnabled(true).SetLookupEnabled(true).SetTtsName("alice").SetPushIncludeDate(false)
	})
	sid := str(svc.Sid)
	if !strings.HasPrefix(sid, "VA") || len(sid) != 34 || str(svc.AccountSid) != accountSID {
		t.Fatalf("service sid %q account %q", sid, str(svc.AccountSid))
	}
	if str(svc.FriendlyName) != "Acme" || svc.CodeLength != 6 || !boolean(svc.DoNotShareWarningEnabled) || str(svc.TtsName) != "alice" {
		t.Errorf("service settings not echoed: %+v", svc)
	}
	if svc.DateCreated == nil || svc.DateCreated.IsZero() || !strings.HasSuffix(str(svc.Url), "/v2/Services/"+sid) {
		t.Errorf("service date %v url %q", svc.DateCreated, str(svc.Url))
	}

	const to = "+9779812345678"
	v, err := start(api, sid, to, nil)
	if err != nil {
		t.Fatalf("create verification: %v", err)
	}
	if !strings.HasPrefix(str(v.Sid), "VE") || str(v.Status) != "pending" || boolean(v.Valid) || str(v.To) != to || str(v.Channel) != "sms" {
		t.Fatalf("verification %+v", v)
	}
	if v.SendCodeAttempts == nil || len(*v.SendCodeAttempts) != 1 {
		t.Fatalf("send_code_attempts %v, want one", v.SendCodeAttempts)
	}
	if lookup, _ := (*v.Lookup).(map[string]any); lookup["carrier"] == nil {
		t.Errorf("lookup %v, want a carrier (LookupEnabled)", *v.Lookup)
	}
	msg := e.inbox.last(t, to)
	if !strings.Contains(msg.Body, "Acme") || !strings.Contains(msg.Body, "Don't share this code") {
		t.Errorf("message does not name the service or warn: %q", msg.Body)
	}
	code := msg.Code

	// Resending within the lifetime keeps the verification (same SID) and
	// adds a send attempt; phoneverify sends a fresh code.
	again, err := start(api, sid, to, nil)
	if err != nil {
		t.Fatalf("resend: %v", err)
	}
	if str(again.Sid) != str(v.Sid) || len(*again.SendCodeAttempts) != 2 {
		t.Fatalf("resend: sid %s (want %s), %d attempts", str(again.Sid), str(v.Sid), len(*again.SendCodeAttempts))
	}
	code = e.inbox.last(t, to).Code

	c, err := check(api, sid, (&verifyv2.CreateVerificationCheckParams{}).SetTo(to).SetCode(wrongCode(code)))
	if err != nil {
		t.Fatalf("wrong code: %v", err)
	}
	if str(c.Status) != "pending" || boolean(c.Valid) {
		t.Fatalf("wrong code: status %q valid %v, want pending false", str(c.Status), boolean(c.Valid))
	}
	c, err = check(api, sid, (&verifyv2.CreateVerificationCheckParams{}).SetVerificationSid(str(v.Sid)).SetCode(code))
	if err != nil {
		t.Fatalf("right code: %v", err)
	}
	if str(c.Status) != "approved" || !boolean(c.Valid) || str(c.Sid) != str(v.Sid) {
		t.Fatalf("right code: %+v", c)
	}
	_, err = check(api, sid, (&verifyv2.CreateVerificationCheckParams{}).SetTo(to).SetCode(code))
	wantCode(t, err, 404, twilioapi.CodeNotFound, "approved")

	got, err := api.FetchVerification(sid, str(v.Sid))
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if str(got.Status) != "approved" || !boolean(got.Valid) {
		t.Errorf("fetched %q valid %v, want approved", str(got.Status), boolean(got.Valid))
	}

	// Cancel, by the number in the path.
	const to2 = "+9779812345679"
	v2, err := start(api, sid, to2, nil)
	if err != nil {
		t.Fatal(err)
	}
	code2 := e.inbox.last(t, to2).Code // read before the cancel: a canceled code is never sent
	byNumber, err := api.FetchVerification(sid, to2)
	if err != nil || str(byNumber.Sid) != str(v2.Sid) {
		t.Fatalf("fetch by number: %v %v", byNumber, err)
	}
	canceled, err := api.UpdateVerification(sid, to2, (&verifyv2.UpdateVerificationParams{}).SetStatus("canceled"))
	if err != nil || str(canceled.Status) != "canceled" {
		t.Fatalf("cancel: %v %v", canceled, err)
	}
	_, err = check(api, sid, (&verifyv2.CreateVerificationCheckParams{}).SetTo(to2).SetCode(code2))
	wantCode(t, err, 404, twilioapi.CodeNotFound, "canceled")

	_, err = api.FetchVerification(sid, "VE00000000000000000000000000000000")
	wantCode(t, err, 404, twilioapi.CodeNotFound, "/Services/"+sid+"/Verifications/VE00000000000000000000000000000000")
}

// TestAttemptLimits: exhausted check attempts and send limits answer as
// Twilio does.
func TestAttemptLimits(t *testing.T) {
	e := newEnv(t)
	api := e.client.VerifyV2
	sid := str(createService(t, api, "Limits", nil).Sid)

	const to = "+9779812345670"
	if _, err := start(api, sid, to, nil); err != nil {
		t.Fatal(err)
	}
	code := e.inbox.last(t, to).Code
	p := (&verifyv2.CreateVerificationCheckParams{}).SetTo(to).SetCode(wrongCode(code))
	for i := 1; i < 5; i++ {
		c, err := check(api, sid, p)
		if err != nil || str(c.Status) != "pending" {
			t.Fatalf("wrong code %d: %v %v", i, c, err)
		}
	}
	_, err := check(api, sid, p)
	wantCode(t, err, 429, twilioapi.CodeMaxCheckAttempts, "Max check attempts")
	_, err = check(api, sid, (&verifyv2.CreateVerificationCheckParams{}).SetTo(to).SetCode(code))
	wantCode(t, err, 404, twilioapi.CodeNotFound, "no check attempts left")

	const to2 = "+9779812345671"
	for i := 0; i < 5; i++ {
		if _, err := start(api, sid, to2, nil); err != nil {
			t.Fatalf("start %d: %v", i+1, err)
		}
	}
	_, err = start(api, sid, to2, nil)
	wantCode(t, err, 429, twilioapi.CodeMaxSendAttempts, "Max send attempts")
}

// TestErrors: refused requests decode into *client.TwilioRestError with
// Twilio's codes.
func TestErrors(t *testing.T) {
	e := newEnv(t)
	api := e.client.VerifyV2
	sid := str(createService(t, api, "Errors", nil).Sid)
	tests := []struct {
		name         string
		call         func() error
		status, code int
		messageSays  string
	}{
		{"bad credentials", func() error {
			_, err := newClient(t, e.srv, accountSID, "wrongwrongwrongwrong").VerifyV2.FetchService(sid)
			return err
		}, 401, twilioapi.CodeUnauthorized, "Authentication"},
		{"unknown service", func() error { _, err := api.FetchService("VA00000000000000000000000000000000"); return err }, 404, twilioapi.CodeNotFound, "was not found"},
		{"no To", func() error {
			_, err := api.CreateVerification(sid, (&verifyv2.CreateVerificationParams{}).SetChannel("sms"))
			return err
		}, 400, twilioapi.CodeNoTarget, "To"},
		{"invalid number", func() error { _, err := start(api, sid, "+977123", nil); return err }, 400, twilioapi.CodeInvalidParameter, "`To`"},
		{"landline", func() error { _, err := start(api, sid, "+442079460958", nil); return err }, 400, twilioapi.CodeLandline, "landline"},
		{"call channel", func() error {
			_, err := start(api, sid, "+9779812345672", func(p *verifyv2.CreateVerificationParams) { p.SetChannel("call") })
			return err
		}, 400, twilioapi.CodeChannelDisabled, "call"},
		{"whatsapp channel", func() error {
			_, err := start(api, sid, "+9779812345672", func(p *verifyv2.CreateVerificationParams) { p.SetChannel("whatsapp") })
			return err
		}, 400, twilioapi.CodeChannelDisabled, "whatsapp"},
		{"custom code not enabled", func() error {
			_, err := start(api, sid, "+9779812345672", func(p *verifyv2.CreateVerificationParams) { p.SetCustomCode("123456") })
			return err
		}, 400, twilioapi.CodeInvalidParameter, "`CustomCode`"},
		{"amount without PSD2", func() error {
			_, err := start(api, sid, "+9779812345672", func(p *verifyv2.CreateVerificationParams) { p.SetAmount("€10") })
			return err
		}, 400, twilioapi.CodeInvalidParameter, "`Amount`"},
		{"check without target", func() error {
			_, err := check(api, sid, (&verifyv2.CreateVerificationCheckParams{}).SetCode("123456"))
			return err
		}, 400, twilioapi.CodeNoTarget, "VerificationSid"},
		{"code length", func() error {
			_, err := check(api, sid, (&verifyv2.CreateVerificationCheckParams{}).SetTo("+9779812345672").SetCode("12"))
			return err
		}, 400, twilioapi.CodeInvalidParameter, "`Code`"},
		{"check never started", func() error {
			_, err := check(api, sid, (&verifyv2.CreateVerificationCheckParams{}).SetTo("+9779812345673").SetCode("123456"))
			return err
		}, 404, twilioapi.CodeNotFound, "No verification"},
		{"bad code length setting", func() error {
			_, err := api.CreateService((&verifyv2.CreateServiceParams{}).SetFriendlyName("x").SetCodeLength(3))
			return err
		}, 400, twilioapi.CodeInvalidParameter, "`CodeLength`"},
		{"bad status", func() error {
			_, err := api.UpdateVerification(sid, "+9779812345672", (&verifyv2.UpdateVerificationParams{}).SetStatus("pending"))
			return err
		}, 400, twilioapi.CodeInvalidParameter, "`Status`"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, tt.call(), tt.status, tt.code, tt.messageSays)
		})
	}
}

// TestServicesPaging: services are listed with Twilio's paging envelope,
// which twilio-go follows.
func TestServicesPaging(t *testing.T) {
	e := newEnv(t)
	api := e.client.VerifyV2
	for _, name := range []string{"One", "Two", "Three", "Four"} {
		createService(t, api, name, nil)
	}
	all, err := api.ListService((&verifyv2.ListServiceParams{}).SetPageSize(2))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(all), 5; got != want { // four and the default service
		t.Fatalf("listed %d services, want %d", got, want)
	}
	page, err := api.PageService((&verifyv2.ListServiceParams{}).SetPageSize(2), "", "")
	if err != nil {
		t.Fatal(err)
	}
	if page.Meta.PageSize != 2 || page.Meta.NextPageUrl == nil || page.Meta.PreviousPageUrl != nil || page.Meta.Key != "services" {
		t.Errorf("meta %+v", page.Meta)
	}
	limited, err := api.ListService((&verifyv2.ListServiceParams{}).SetPageSize(2).SetLimit(3))
	if err != nil || len(limited) != 3 {
		t.Fatalf("limit 3: %d services, %v", len(limited), err)
	}

	sid := str(all[1].Sid)
	updated, err := api.UpdateService(sid, (&verifyv2.UpdateServiceParams{}).SetFriendlyName("Renamed").SetCodeLength(8).SetPsd2Enabled(true))
	if err != nil || str(updated.FriendlyName) != "Renamed" || updated.CodeLength != 8 || !boolean(updated.Psd2Enabled) {
		t.Fatalf("update: %+v %v", updated, err)
	}
	fetched, err := api.FetchService(sid)
	if err != nil || str(fetched.FriendlyName) != "Renamed" || fetched.CodeLength != 8 {
		t.Fatalf("fetch after update: %+v %v", fetched, err)
	}
	if err := api.DeleteService(sid); err != nil {
		t.Fatalf("delete: %v", err)
	}
	_, err = api.FetchService(sid)
	wantCode(t, err, 404, twilioapi.CodeNotFound, "deleted")
}

// TestPSD2AndCustomCodes: the PSD2 and custom-code settings are honoured.
func TestPSD2AndCustomCodes(t *testing.T) {
	e := newEnv(t)
	api := e.client.VerifyV2
	psd2 := str(createService(t, api, "Bank", func(p *verifyv2.CreateServiceParams) { p.SetPsd2Enabled(true) }).Sid)
	const to = "+9779812345674"
	_, err := start(api, psd2, to, nil)
	wantCode(t, err, 400, twilioapi.CodeInvalidParameter, "`Amount`")
	v, err := start(api, psd2, to, func(p *verifyv2.CreateVerificationParams) { p.SetAmount("€39.99").SetPayee("Acme Inc.") })
	if err != nil {
		t.Fatal(err)
	}
	if str(v.Amount) != "€39.99" || str(v.Payee) != "Acme Inc." {
		t.Errorf("amount %q payee %q", str(v.Amount), str(v.Payee))
	}
	msg := e.inbox.last(t, to)
	if !strings.Contains(msg.Body, "€39.99") || !strings.Contains(msg.Body, "Acme Inc.") {
		t.Errorf("PSD2 message does not name amount and payee: %q", msg.Body)
	}
	c, err := check(api, psd2, (&verifyv2.CreateVerificationCheckParams{}).SetTo(to).SetCode(msg.Code).SetAmount("€39.99").SetPayee("Mallory"))
	if err != nil || str(c.Status) != "pending" || boolean(c.Valid) {
		t.Fatalf("other payee: %+v %v, want pending", c, err)
	}
	c, err = check(api, psd2, (&verifyv2.CreateVerificationCheckParams{}).SetTo(to).SetCode(msg.Code).SetAmount("€39.99").SetPayee("Acme Inc."))
	if err != nil || str(c.Status) != "approved" || str(c.Amount) != "€39.99" {
		t.Fatalf("right amount and payee: %+v %v", c, err)
	}

	custom := str(createService(t, api, "Custom", func(p *verifyv2.CreateServiceParams) { p.SetCustomCodeEnabled(true) }).Sid)
	const to2 = "+9779812345675"
	if _, err := start(api, custom, to2, func(p *verifyv2.CreateVerificationParams) { p.SetCustomCode("4242") }); err != nil {
		t.Fatal(err)
	}
	if got := e.inbox.last(t, to2).Code; got != "4242" {
		t.Errorf("sent code %q, want the custom code", got)
	}
	c, err = check(api, custom, (&verifyv2.CreateVerificationCheckParams{}).SetTo(to2).SetCode("4242"))
	if err != nil || str(c.Status) != "approved" {
		t.Fatalf("custom code: %+v %v", c, err)
	}
	const to3 = "+9779812345676"
	v3, err := start(api, custom, to3, func(p *verifyv2.CreateVerificationParams) { p.SetCustomCode("777777") })
	if err != nil {
		t.Fatal(err)
	}
	approved, err := api.UpdateVerification(custom, str(v3.Sid), (&verifyv2.UpdateVerificationParams{}).SetStatus("approved"))
	if err != nil || str(approved.Status) != "approved" || !boolean(approved.Valid) {
		t.Fatalf("approve: %+v %v", approved, err)
	}
}

// TestRateLimits: rate limits and buckets are managed and enforced when a
// start names them.
func TestRateLimits(t *testing.T) {
	e := newEnv(t)
	api := e.client.VerifyV2
	sid := str(createService(t, api, "Limited", nil).Sid)
	rl, err := api.CreateRateLimit(sid, (&verifyv2.CreateRateLimitParams{}).SetUniqueName("end_user_ip_address").SetDescription("per IP"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(str(rl.Sid), "RK") || str(rl.UniqueName) != "end_user_ip_address" || str(rl.Description) != "per IP" {
		t.Fatalf("rate limit %+v", rl)
	}
	_, err = api.CreateRateLimit(sid, (&verifyv2.CreateRateLimitParams{}).SetUniqueName("end_user_ip_address"))
	wantCode(t, err, 400, twilioapi.CodeInvalidParameter, "`UniqueName`")

	b, err := api.CreateBucket(sid, str(rl.Sid), (&verifyv2.CreateBucketParams{}).SetMax(2).SetInterval(60))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(str(b.Sid), "BL") || b.Max != 2 || b.Interval != 60 || str(b.RateLimitSid) != str(rl.Sid) {
		t.Fatalf("bucket %+v", b)
	}
	ip := map[string]any{"end_user_ip_address": "203.0.113.7"}
	for i, to := range []string{"+9779812345681", "+9779812345682"} {
		if _, err := start(api, sid, to, func(p *verifyv2.CreateVerificationParams) { p.SetRateLimits(ip) }); err != nil {
			t.Fatalf("start %d: %v", i+1, err)
		}
	}
	_, err = start(api, sid, "+9779812345683", func(p *verifyv2.CreateVerificationParams) { p.SetRateLimits(ip) })
	wantCode(t, err, 429, twilioapi.CodeTooManyRequests, "end_user_ip_address")
	other := map[string]any{"end_user_ip_address": "198.51.100.1"}
	if _, err := start(api, sid, "+9779812345683", func(p *verifyv2.CreateVerificationParams) { p.SetRateLimits(other) }); err != nil {
		t.Fatalf("another IP: %v", err)
	}
	_, err = start(api, sid, "+9779812345684", func(p *verifyv2.CreateVerificationParams) {
		p.SetRateLimits(map[string]any{"nope": "x"})
	})
	wantCode(t, err, 400, twilioapi.CodeInvalidParameter, "`RateLimits`")

	limits, err := api.ListRateLimit(sid, nil)
	if err != nil || len(limits) != 1 {
		t.Fatalf("list rate limits: %d %v", len(limits), err)
	}
	upd, err := api.UpdateRateLimit(sid, str(rl.Sid), (&verifyv2.UpdateRateLimitParams{}).SetDescription("per end-user IP"))
	if err != nil || str(upd.Description) != "per end-user IP" {
		t.Fatalf("update rate limit: %+v %v", upd, err)
	}
	fetched, err := api.FetchRateLimit(sid, str(rl.Sid))
	if err != nil || str(fetched.Description) != "per end-user IP" {
		t.Fatalf("fetch rate limit: %+v %v", fetched, err)
	}
	ub, err := api.UpdateBucket(sid, str(rl.Sid), str(b.Sid), (&verifyv2.UpdateBucketParams{}).SetMax(10))
	if err != nil || ub.Max != 10 || ub.Interval != 60 {
		t.Fatalf("update bucket: %+v %v", ub, err)
	}
	buckets, err := api.ListBucket(sid, str(rl.Sid), nil)
	if err != nil || len(buckets) != 1 || buckets[0].Max != 10 {
		t.Fatalf("list buckets: %v %v", buckets, err)
	}
	if _, err := api.FetchBucket(sid, str(rl.Sid), str(b.Sid)); err != nil {
		t.Fatalf("fetch bucket: %v", err)
	}
	if err := api.DeleteBucket(sid, str(rl.Sid), str(b.Sid)); err != nil {
		t.Fatalf("delete bucket: %v", err)
	}
	_, err = api.FetchBucket(sid, str(rl.Sid), str(b.Sid))
	wantCode(t, err, 404, twilioapi.CodeNotFound, "bucket")
	if err := api.DeleteRateLimit(sid, str(rl.Sid)); err != nil {
		t.Fatalf("delete rate limit: %v", err)
	}
	_, err = api.FetchRateLimit(sid, str(rl.Sid))
	wantCode(t, err, 404, twilioapi.CodeNotFound, "rate limit")
}

// TestAttemptsAndSafeList: attempts come from the engine's records, with
// conversion; the safe list is kept.
func TestAttemptsAndSafeList(t *testing.T) {
	e := newEnv(t)
	api := e.client.VerifyV2
	sid := str(createService(t, api, "Reports", nil).Sid)
	var first *verifyv2.VerifyV2Verification
	for i, to := range []string{"+9779812345691", "+9779812345692", "+9779812345693", "+9779812345694"} {
		v, err := start(api, sid, to, nil)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = v
		}
		if i < 3 {
			if _, err := check(api, sid, (&verifyv2.CreateVerificationCheckParams{}).SetTo(to).SetCode(e.inbox.last(t, to).Code)); err != nil {
				t.Fatal(err)
			}
		}
	}
	attempts, err := api.ListVerificationAttempt((&verifyv2.ListVerificationAttemptParams{}).SetVerifyServiceSid(sid).SetPageSize(3))
	if err != nil || len(attempts) != 4 {
		t.Fatalf("list attempts: %d %v", len(attempts), err)
	}
	a := attempts[0]
	if str(a.VerificationSid) != str(first.Sid) || str(a.ConversionStatus) != "converted" || str(a.Channel) != "sms" {
		t.Errorf("attempt %+v", a)
	}
	converted, err := api.ListVerificationAttempt((&verifyv2.ListVerificationAttemptParams{}).SetVerifyServiceSid(sid).SetStatus("unconverted"))
	if err != nil || len(converted) != 1 {
		t.Fatalf("unconverted: %d %v", len(converted), err)
	}
	one, err := api.FetchVerificationAttempt(str(a.Sid))
	if err != nil || str(one.Sid) != str(a.Sid) {
		t.Fatalf("fetch attempt: %v %v", one, err)
	}
	sum, err := api.FetchVerificationAttemptsSummary((&verifyv2.FetchVerificationAttemptsSummaryParams{}).SetVerifyServiceSid(sid))
	if err != nil {
		t.Fatal(err)
	}
	if sum.TotalAttempts != 4 || sum.TotalConverted != 3 || sum.TotalUnconverted != 1 || str(sum.ConversionRatePercentage) != "75" {
		t.Errorf("summary %+v rate %q", sum, str(sum.ConversionRatePercentage))
	}

	n, err := api.CreateSafelist((&verifyv2.CreateSafelistParams{}).SetPhoneNumber("+9779812345699"))
	if err != nil || !strings.HasPrefix(str(n.Sid), "GN") || str(n.PhoneNumber) != "+9779812345699" {
		t.Fatalf("safe list add: %+v %v", n, err)
	}
	if got, err := api.FetchSafelist("+9779812345699"); err != nil || str(got.Sid) != str(n.Sid) {
		t.Fatalf("safe list fetch: %+v %v", got, err)
	}
	if err := api.DeleteSafelist("+9779812345699"); err != nil {
		t.Fatalf("safe list delete: %v", err)
	}
	_, err = api.FetchSafelist("+9779812345699")
	wantCode(t, err, 404, twilioapi.CodeNotFound, "safe list")
}

// TestIssuedCredentials: credentials made like "phoneverify apikey create
// --twilio" work as account SID or API key SID with the auth token.
func TestIssuedCredentials(t *testing.T) {
	e := newEnv(t)
	creds, _, err := e.engine.CreateCompatKey(context.Background(), e.engine.DefaultServiceID(), "app")
	if err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{creds.AccountSID, creds.APIKeySID} {
		c := newClient(t, e.srv, user, creds.Secret)
		svc, err := c.VerifyV2.FetchService(e.engine.DefaultServiceID())
		if err != nil {
			t.Fatalf("as %s: %v", user[:2], err)
		}
		if str(svc.AccountSid) != creds.AccountSID {
			t.Errorf("account_sid %q, want %q", str(svc.AccountSid), creds.AccountSID)
		}
	}
	_, err = newClient(t, e.srv, creds.APIKeySID, authToken).VerifyV2.FetchService(e.engine.DefaultServiceID())
	wantCode(t, err, 401, twilioapi.CodeUnauthorized, "Authentication")
}

// TestRiskCheck sends twilio-go's RiskCheck: "disable" is refused (403
// 20403) for credentials without the risk_check:override scope and taken
// from credentials that hold it; a value Twilio does not know is 400 60200.
func TestRiskCheck(t *testing.T) {
	e := newEnv(t)
	sid := e.engine.DefaultServiceID()
	creds, _, err := e.engine.CreateCompatKeyWithScopes(context.Background(), sid, "trusted backend",
		[]string{verify.ScopeSend, verify.ScopeRiskCheckOverride}, nil)
	if err != nil {
		t.Fatal(err)
	}
	trusted := newClient(t, e.srv, creds.AccountSID, creds.Secret).VerifyV2
	riskCheck := func(v string) func(*verifyv2.CreateVerificationParams) {
		return func(p *verifyv2.CreateVerificationParams) { p.SetRiskCheck(v) }
	}

	_, err = start(e.client.VerifyV2, sid, "+9779812345601", riskCheck("disable"))
	wantCode(t, err, 403, twilioapi.CodeForbidden, verify.ScopeRiskCheckOverride)
	_, err = start(trusted, sid, "+9779812345602", riskCheck("maybe"))
	wantCode(t, err, 400, twilioapi.CodeInvalidParameter, "RiskCheck")
	for _, tt := range []struct {
		name string
		api  *verifyv2.ApiService
		to   string
		v    string
	}{
		{"enable", e.client.VerifyV2, "+9779812345603", "enable"},
		{"enable, trusted", trusted, "+9779812345604", "enable"},
		{"disable, trusted", trusted, "+9779812345605", "disable"},
	} {
		got, err := start(tt.api, sid, tt.to, riskCheck(tt.v))
		if err != nil || str(got.Status) != "pending" {
			t.Errorf("%s: %+v, %v; want a pending verification", tt.name, got, err)
		}
	}
}
