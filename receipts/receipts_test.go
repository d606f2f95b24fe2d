package receipts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/gateway/twilio"
	"github.com/phoneverify/phoneverify/gateway/vonage"
	"github.com/phoneverify/phoneverify/httpapi"
	"github.com/phoneverify/phoneverify/internal/testenv"
	"github.com/phoneverify/phoneverify/otp"
	"github.com/phoneverify/phoneverify/outbox"
	"github.com/phoneverify/phoneverify/receipts"
	"github.com/phoneverify/phoneverify/store"
	"github.com/phoneverify/phoneverify/token"
	"github.com/phoneverify/phoneverify/verify"
)

const (
	twilioToken  = "twilio-auth-token"
	callbackURL  = "https://verify.example.com/v1/receipts/twilio"
	vonageSecret = "vonage-signature-secret"
)

// provider accepts every message as the named gateway, with a fixed id.
type provider struct{ gateway, id string }

func (p provider) Send(context.Context, *pv.Message) (*pv.SendResult, error) {
	return &pv.SendResult{Gateway: p.gateway, ProviderID: p.id}, nil
}

// setup sends one message through a gateway named gateway (provider id
// "PID1") and returns the API with the receipt routes, and a reader of the
// message's status and error.
func setup(t *testing.T, url, gateway string, cfg receipts.Config) (http.Handler, func() (pv.MessageStatus, string)) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, url, store.Options{MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	secret := bytes.Repeat([]byte("r"), 32)
	hasher, _ := otp.NewHasher(secret)
	sealer, _ := otp.NewSealer(secret)
	keys, err := token.NewKeyring(ctx, st, secret, time.Now(), token.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := verify.New(verify.Config{Store: st, Sealer: sealer, Hasher: hasher, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := e.EnsureDefaultService(ctx, pv.NewService("Example"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.Start(ctx, verify.StartRequest{ServiceID: svc.ID, To: "+9779812345678"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := outbox.New(outbox.Config{Store: st, Sender: provider{gateway, "PID1"}, Sealer: sealer, Failer: e})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	cfg.Store = st
	h, err := receipts.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]httpapi.RouteFunc{}
	for p, fn := range h.Routes() {
		routes[p] = fn
	}
	api := httpapi.New(httpapi.Config{Engine: e, Routes: routes})
	return api, func() (pv.MessageStatus, string) {
		msgs, err := st.Messages(ctx, svc.ID, v.ID)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("messages: %d, %v", len(msgs), err)
		}
		return msgs[0].Status, msgs[0].Error
	}
}

// observed records the calls of a receipts.Config.Observe hook.
type observed struct {
	mu    sync.Mutex
	calls []string
}

func (o *observed) observe(gateway string, status pv.MessageStatus) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, gateway+" "+string(status))
}

func (o *observed) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.calls, ";")
}

// errorCode returns the API error code of an answer, or "".
func errorCode(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var body struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	return body.Error.Code
}

func TestTwilioReceipts(t *testing.T) {
	tests := []struct {
		name       string
		form       url.Values
		signature  func(form url.Values) string
		wantHTTP   int
		wantCode   string
		wantStatus pv.MessageStatus
		wantError  string
		// wantSeen is what the Observe hook heard: only a change.
		wantSeen string
	}{
		{"bad signature", url.Values{"MessageSid": {"PID1"}, "MessageStatus": {"delivered"}},
			func(url.Values) string { return "bm90IGEgc2lnbmF0dXJl" }, 403, pv.EForbidden, pv.MessageSent, "", ""},
		{"signed by another token", url.Values{"MessageSid": {"PID1"}, "MessageStatus": {"delivered"}},
			func(f url.Values) string { return twilio.Sign("other", callbackURL, f) }, 403, pv.EForbidden, pv.MessageSent, "", ""},
		{"no signature", url.Values{"MessageSid": {"PID1"}, "MessageStatus": {"delivered"}},
			func(url.Values) string { return "" }, 403, pv.EForbidden, pv.MessageSent, "", ""},
		{"delivered", url.Values{"MessageSid": {"PID1"}, "MessageStatus": {"delivered"}, "AccountSid": {"AC1"}},
			func(f url.Values) string { return twilio.Sign(twilioToken, callbackURL, f) }, 200, "", pv.MessageDelivered, "", "twilio delivered"},
		{"undelivered with a code", url.Values{"MessageSid": {"PID1"}, "MessageStatus": {"undelivered"}, "ErrorCode": {"30003"}},
			func(f url.Values) string { return twilio.Sign(twilioToken, callbackURL, f) }, 200, "", pv.MessageUndelivered, "twilio error 30003", "twilio undelivered"},
		{"sent changes nothing", url.Values{"MessageSid": {"PID1"}, "MessageStatus": {"sent"}},
			func(f url.Values) string { return twilio.Sign(twilioToken, callbackURL, f) }, 200, "", pv.MessageSent, "", ""},
		{"unknown message", url.Values{"MessageSid": {"SMother"}, "MessageStatus": {"delivered"}},
			func(f url.Values) string { return twilio.Sign(twilioToken, callbackURL, f) }, 200, "", pv.MessageSent, "", ""},
		{"no status", url.Values{"MessageSid": {"PID1"}},
			func(f url.Values) string { return twilio.Sign(twilioToken, callbackURL, f) }, 400, pv.EInvalidRequest, pv.MessageSent, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testenv.ForEachDatabase(t, func(t *testing.T, url string) {
				var seen observed
				api, status := setup(t, url, "twilio", receipts.Config{TwilioAuthToken: twilioToken, TwilioURL: callbackURL,
					Observe: seen.observe})
				// The node sees an internal URL; the signature covers the public one.
				req := httptest.NewRequest("POST", "http://10.0.0.5:8080/v1/receipts/twilio", strings.NewReader(tt.form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if sig := tt.signature(tt.form); sig != "" {
					req.Header.Set("X-Twilio-Signature", sig)
				}
				w := httptest.NewRecorder()
				api.ServeHTTP(w, req)
				if w.Code != tt.wantHTTP || errorCode(t, w) != tt.wantCode {
					t.Fatalf("answer %d %s, want %d %q", w.Code, w.Body, tt.wantHTTP, tt.wantCode)
				}
				if got, gotErr := status(); got != tt.wantStatus || gotErr != tt.wantError {
					t.Errorf("message status %s %q, want %s %q", got, gotErr, tt.wantStatus, tt.wantError)
				}
				if got := seen.String(); got != tt.wantSeen {
					t.Errorf("observed %q, want %q", got, tt.wantSeen)
				}
			})
		})
	}
}

func TestVonageReceipts(t *testing.T) {
	sign := func(p url.Values) url.Values {
		sig, _ := vonage.Signature(p, vonageSecret, vonage.SHA256HMAC)
		q := url.Values{}
		for k, v := range p {
			q[k] = v
		}
		q.Set("sig", sig)
		return q
	}
	receipt := url.Values{"messageId": {"PID1"}, "status": {"delivered"}, "msisdn": {"9779812345678"}, "timestamp": {"1700000000"}}
	tests := []struct {
		name       string
		secret     string
		method     string
		params     url.Values
		json       bool
		wantHTTP   int
		wantCode   string
		wantStatus pv.MessageStatus
		wantSeen   string
	}{
		{"unsigned, no secret configured", "", "GET", receipt, false, 200, "", pv.MessageDelivered, "vonage delivered"},
		{"unsigned, secret configured", vonageSecret, "GET", receipt, false, 403, pv.EForbidden, pv.MessageSent, ""},
		{"bad signature", vonageSecret, "POST", func() url.Values {
			q := sign(receipt)
			q.Set("status", "failed") // altered after signing
			return q
		}(), false, 403, pv.EForbidden, pv.MessageSent, ""},
		{"signed GET", vonageSecret, "GET", sign(receipt), false, 200, "", pv.MessageDelivered, "vonage delivered"},
		{"signed POST JSON", vonageSecret, "POST", sign(receipt), true, 200, "", pv.MessageDelivered, "vonage delivered"},
		{"expired", "", "POST", url.Values{"messageId": {"PID1"}, "status": {"expired"}, "err-code": {"5"}}, false, 200, "", pv.MessageUndelivered, "vonage undelivered"},
		{"unknown status", "", "GET", url.Values{"messageId": {"PID1"}, "status": {"unknown"}}, false, 200, "", pv.MessageSent, ""},
		{"not a receipt", "", "GET", url.Values{"foo": {"bar"}}, false, 400, pv.EInvalidRequest, pv.MessageSent, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testenv.ForEachDatabase(t, func(t *testing.T, dbURL string) {
				var seen observed
				api, status := setup(t, dbURL, "vonage", receipts.Config{Vonage: true,
					VonageSignatureSecret: tt.secret, VonageSignatureMethod: vonage.SHA256HMAC, Observe: seen.observe})
				var req *http.Request
				switch {
				case tt.method == "GET":
					req = httptest.NewRequest("GET", "/v1/receipts/vonage?"+tt.params.Encode(), nil)
				case tt.json:
					m := map[string]string{}
					for k := range tt.params {
						m[k] = tt.params.Get(k)
					}
					b, _ := json.Marshal(m)
					req = httptest.NewRequest("POST", "/v1/receipts/vonage", bytes.NewReader(b))
					req.Header.Set("Content-Type", "application/json")
				default:
					req = httptest.NewRequest("POST", "/v1/receipts/vonage", strings.NewReader(tt.params.Encode()))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
				w := httptest.NewRecorder()
				api.ServeHTTP(w, req)
				if w.Code != tt.wantHTTP || errorCode(t, w) != tt.wantCode {
					t.Fatalf("answer %d %s, want %d %q", w.Code, w.Body, tt.wantHTTP, tt.wantCode)
				}
				if got, _ := status(); got != tt.wantStatus {
					t.Errorf("message status %s, want %s", got, tt.wantStatus)
				}
				if got := seen.String(); got != tt.wantSeen {
					t.Errorf("observed %q, want %q", got, tt.wantSeen)
				}
			})
		})
	}
}

// TestObserveOncePerMessage sends one message's receipts as a provider
// does, repeats and a later contradicting one included: the hook hears
// only the first final status, the one the message keeps.
func TestObserveOncePerMessage(t *testing.T) {
	testenv.ForEachDatabase(t, func(t *testing.T, dbURL string) {
		var seen observed
		api, status := setup(t, dbURL, "twilio", receipts.Config{TwilioAuthToken: twilioToken, TwilioURL: callbackURL,
			Observe: seen.observe})
		for _, st := range []string{"queued", "sent", "delivered", "delivered", "failed"} {
			form := url.Values{"MessageSid": {"PID1"}, "MessageStatus": {st}}
			req := httptest.NewRequest("POST", "/v1/receipts/twilio", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Twilio-Signature", twilio.Sign(twilioToken, callbackURL, form))
			w := httptest.NewRecorder()
			api.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				t.Fatalf("%s: answer %d %s", st, w.Code, w.Body)
			}
		}
		if got, _ := status(); got != pv.MessageDelivered {
			t.Errorf("message status %s, want delivered", got)
		}
		if got := seen.String(); got != "twilio delivered" {
			t.Errorf("observed %q, want one call: twilio delivered", got)
		}
	})
}

// TestObserveOnlyCommittedChanges: the hook follows what the store says
// it changed; a store error is no change.
func TestObserveOnlyCommittedChanges(t *testing.T) {
	tests := []struct {
		name     string
		store    fakeStore
		wantErr  bool
		wantSeen string
	}{
		{"changed", fakeStore{changed: true}, false, "vonage failed"},
		{"nothing changed", fakeStore{}, false, ""},
		{"store unavailable", fakeStore{err: pv.Errorf(pv.EUnavailable, "database down")}, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen observed
			h, err := receipts.New(receipts.Config{Store: tt.store, Vonage: true, Observe: seen.observe})
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest("GET", "/v1/receipts/vonage?messageId=PID1&status=rejected", nil)
			if err := h.Vonage(httptest.NewRecorder(), req); (err != nil) != tt.wantErr {
				t.Fatalf("Vonage: %v, want an error: %v", err, tt.wantErr)
			}
			if got := seen.String(); got != tt.wantSeen {
				t.Errorf("observed %q, want %q", got, tt.wantSeen)
			}
		})
	}
}

type fakeStore struct {
	changed bool
	err     error
}

func (f fakeStore) UpdateMessageStatus(context.Context, string, string, pv.MessageStatus, string, time.Time) (bool, error) {
	return f.changed, f.err
}

func TestRoutesOnlyForConfiguredProviders(t *testing.T) {
	tests := []struct {
		name string
		cfg  receipts.Config
		want []string
	}{
		{"none", receipts.Config{}, nil},
		{"twilio", receipts.Config{TwilioAuthToken: "t", TwilioURL: callbackURL}, []string{"POST /v1/receipts/twilio"}},
		{"vonage", receipts.Config{Vonage: true}, []string{"GET /v1/receipts/vonage", "POST /v1/receipts/vonage"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Store = nopStore{}
			h, err := receipts.New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for p := range h.Routes() {
				got = append(got, p)
			}
			sort.Strings(got)
			if strings.Join(got, ";") != strings.Join(tt.want, ";") {
				t.Errorf("routes %v, want %v", got, tt.want)
			}
		})
	}
}

type nopStore struct{}

func (nopStore) UpdateMessageStatus(context.Context, string, string, pv.MessageStatus, string, time.Time) (bool, error) {
	return false, nil
}
