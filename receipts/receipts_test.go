package receipts_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
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

func dialects(t *testing.T, fn func(t *testing.T, url string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, "sqlite:"+filepath.Join(t.TempDir(), "pv.db")) })
	t.Run("postgres", func(t *testing.T) { fn(t, testenv.NewPostgresDatabase(t)) })
}

// twilioSign signs form as Twilio does: HMAC-SHA1 of the URL and the
// sorted parameters, base64.
func twilioSign(token, u string, form url.Values) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := u
	for _, k := range keys {
		s += k + form.Get(k)
	}
	m := hmac.New(sha1.New, []byte(token))
	m.Write([]byte(s))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
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
	}{
		{"bad signature", url.Values{"MessageSid": {"PID1"}, "MessageStatus": {"delivered"}},
			func(url.Values) string { return "bm90IGEgc2lnbmF0dXJl" }, 403, pv.EForbidden, pv.MessageSent, ""},
		{"signed by another token", url.Values{"MessageSid": {"PID1"}, "MessageStatus": {"delivered"}},
			func(f url.Values) string { return twilioSign("other", callbackURL, f) }, 403, pv.EForbidden, pv.MessageSent, ""},
		{"no signature", url.Values{"MessageSid": {"PID1"}, "MessageStatus": {"delivered"}},
			func(url.Values) string { return "" }, 403, pv.EForbidden, pv.MessageSent, ""},
		{"delivered", url.Values{"MessageSid": {"PID1"}, "MessageStatus": {"delivered"}, "AccountSid": {"AC1"}},
			func(f url.Values) string { return twilioSign(twilioToken, callbackURL, f) }, 200, "", pv.MessageDelivered, ""},
		{"undelivered with a code", url.Values{"MessageSid": {"PID1"}, "MessageStatus": {"undelivered"}, "ErrorCode": {"30003"}},
			func(f url.Values) string { return twilioSign(twilioToken, callbackURL, f) }, 200, "", pv.MessageUndelivered, "twilio error 30003"},
		{"sent changes nothing", url.Values{"MessageSid": {"PID1"}, "MessageStatus": {"sent"}},
			func(f url.Values) string { return twilioSign(twilioToken, callbackURL, f) }, 200, "", pv.MessageSent, ""},
		{"unknown message", url.Values{"MessageSid": {"SMother"}, "MessageStatus": {"delivered"}},
			func(f url.Values) string { return twilioSign(twilioToken, callbackURL, f) }, 200, "", pv.MessageSent, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dialects(t, func(t *testing.T, url string) {
				api, status := setup(t, url, "twilio", receipts.Config{TwilioAuthToken: twilioToken, TwilioURL: callbackURL})
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
	}{
		{"unsigned, no secret configured", "", "GET", receipt, false, 200, "", pv.MessageDelivered},
		{"unsigned, secret configured", vonageSecret, "GET", receipt, false, 403, pv.EForbidden, pv.MessageSent},
		{"bad signature", vonageSecret, "POST", func() url.Values {
			q := sign(receipt)
			q.Set("status", "failed") // altered after signing
			return q
		}(), false, 403, pv.EForbidden, pv.MessageSent},
		{"signed GET", vonageSecret, "GET", sign(receipt), false, 200, "", pv.MessageDelivered},
		{"signed POST JSON", vonageSecret, "POST", sign(receipt), true, 200, "", pv.MessageDelivered},
		{"expired", "", "POST", url.Values{"messageId": {"PID1"}, "status": {"expired"}, "err-code": {"5"}}, false, 200, "", pv.MessageUndelivered},
		{"not a receipt", "", "GET", url.Values{"foo": {"bar"}}, false, 400, pv.EInvalidRequest, pv.MessageSent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dialects(t, func(t *testing.T, dbURL string) {
				api, status := setup(t, dbURL, "vonage", receipts.Config{Vonage: true,
					VonageSignatureSecret: tt.secret, VonageSignatureMethod: vonage.SHA256HMAC})
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
			})
		})
	}
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
