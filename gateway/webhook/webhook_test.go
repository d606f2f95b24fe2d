package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/gateway/webhook"
)

// testSecret is the secret of the Standard Webhooks reference tests.
const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// clock is the fixed time the senders under test read.
func clock() time.Time { return time.Unix(1700000000, 0) }

func testMessage() *phoneverify.Message {
	return &phoneverify.Message{VerificationID: "ver_01H", ServiceID: "svc_1", To: "+9779812345678",
		Body: "Your code is 482913", Code: "482913", Locale: "ne"}
}

// receiver is an operator endpoint that checks requests as a Standard
// Webhooks consumer would.
type receiver struct {
	t     *testing.T
	reply func(http.ResponseWriter)
	mu    sync.Mutex
	ids   []string
	n     atomic.Int32
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.n.Add(1)
	t := rc.t
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost || r.URL.Path != "/hooks/sms" {
		t.Errorf("request = %s %s", r.Method, r.URL.Path)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if err := webhook.Verify(testSecret, r.Header, body, clock(), time.Minute); err != nil {
		t.Errorf("Verify = %v", err)
	}
	if got := r.Header.Get("webhook-timestamp"); got != strconv.FormatInt(clock().Unix(), 10) {
		t.Errorf("webhook-timestamp = %q", got)
	}
	id := r.Header.Get("webhook-id")
	if !strings.HasPrefix(id, "msg_") || strings.Contains(id, ".") || strings.Contains(id, "482913") {
		t.Errorf("webhook-id = %q", id)
	}
	var fields map[string]any
	if err := json.Unmarshal(body, &fields); err != nil {
		t.Errorf("body: %v", err)
	}
	want := map[string]any{"to": "+9779812345678", "body": "Your code is 482913", "code": "482913",
		"verification_id": "ver_01H", "locale": "ne"}
	if !reflect.DeepEqual(fields, want) {
		t.Errorf("body = %v, want exactly %v", fields, want)
	}
	rc.mu.Lock()
	rc.ids = append(rc.ids, id)
	rc.mu.Unlock()
	rc.reply(w)
}

func status(code int, headers ...string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(code)
	}
}

func newSender(t *testing.T, url string) *webhook.Sender {
	t.Helper()
	s, err := webhook.New(webhook.Config{URL: url, Secret: testSecret}, &http.Client{},
		webhook.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSend(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		reply         func(http.ResponseWriter)
		wantOK        bool
		wantPermanent bool
		wantCode      string
		wantRetry     time.Duration
	}{
		{name: "200", reply: status(200), wantOK: true},
		{name: "204", reply: status(204), wantOK: true},
		{name: "400 is permanent", reply: status(400), wantPermanent: true, wantCode: "400"},
		{name: "404 is permanent", reply: status(404), wantPermanent: true, wantCode: "404"},
		{name: "410 is permanent", reply: status(410), wantPermanent: true, wantCode: "410"},
		{name: "408 is temporary", reply: status(408), wantCode: "408"},
		{name: "429 with Retry-After", reply: status(429, "Retry-After", "9"), wantCode: "429", wantRetry: 9 * time.Second},
		{name: "500 is temporary", reply: status(500), wantCode: "500"},
		{name: "503 with date Retry-After", reply: status(503, "Retry-After", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)), wantCode: "503"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rc := &receiver{t: t, reply: tt.reply}
			srv := httptest.NewServer(rc)
			defer srv.Close()
			m := testMessage()
			res, err := newSender(t, srv.URL+"/hooks/sms").Send(context.Background(), m)
			if rc.n.Load() != 1 {
				t.Fatalf("requests = %d, want 1", rc.n.Load())
			}
			if tt.wantOK {
				if err != nil {
					t.Fatal(err)
				}
				if res.Gateway != "webhook" || res.ProviderID != rc.ids[0] {
					t.Fatalf("result = %+v, want the webhook-id %s", res, rc.ids[0])
				}
				return
			}
			var de *phoneverify.DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want *DeliveryError", err)
			}
			if de.Permanent != tt.wantPermanent || de.Code != tt.wantCode {
				t.Fatalf("got permanent=%v code=%q, want %v %q (%v)", de.Permanent, de.Code, tt.wantPermanent, tt.wantCode, err)
			}
			if tt.wantRetry != 0 && de.RetryAfter != tt.wantRetry {
				t.Fatalf("RetryAfter = %v, want %v", de.RetryAfter, tt.wantRetry)
			}
			if tt.name == "503 with date Retry-After" && (de.RetryAfter < 59*time.Minute || de.RetryAfter > time.Hour) {
				t.Fatalf("RetryAfter = %v, want about an hour", de.RetryAfter)
			}
			if strings.Contains(err.Error(), m.Code) || strings.Contains(err.Error(), "9812345678") {
				t.Fatalf("error %q leaks the code or number", err)
			}
		})
	}
}

func TestSendIDStableAcrossRetries(t *testing.T) {
	t.Parallel()
	rc := &receiver{t: t, reply: status(503)}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	s := newSender(t, srv.URL+"/hooks/sms")
	m := testMessage()
	for i := 0; i < 2; i++ {
		if _, err := s.Send(context.Background(), m); err == nil {
			t.Fatal("want an error from a 503")
		}
	}
	if len(rc.ids) != 2 || rc.ids[0] != rc.ids[1] || rc.ids[0] != s.MessageID(m) {
		t.Fatalf("ids = %v, want the same id twice, equal to MessageID", rc.ids)
	}
	resend := testMessage()
	resend.Code, resend.Body = "771204", "Your code is 771204"
	if s.MessageID(resend) == s.MessageID(m) {
		t.Fatal("a resend with a new code must get a new webhook-id")
	}
	other := newSender(t, srv.URL)
	if o, _ := webhook.New(webhook.Config{URL: srv.URL, Secret: "whsec_" + strings.Repeat("QUFB", 8)}, nil); o.MessageID(m) == other.MessageID(m) {
		t.Fatal("the id must depend on the secret")
	}
}

func TestSendDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	var followed atomic.Bool
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { followed.Store(true) }))
	defer target.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	client := &http.Client{}
	_, err := newSenderWithClient(t, redirect.URL, client).Send(context.Background(), testMessage())
	if !phoneverify.IsPermanent(err) || followed.Load() {
		t.Fatalf("err = %v, followed = %v; want a permanent error and no request to the target", err, followed.Load())
	}
	if client.CheckRedirect != nil {
		t.Fatal("New must not change the caller's client")
	}
}

func newSenderWithClient(t *testing.T, url string, c *http.Client) *webhook.Sender {
	t.Helper()
	s, err := webhook.New(webhook.Config{URL: url, Secret: testSecret}, c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSendTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := newSender(t, srv.URL).Send(ctx, testMessage())
	var de *phoneverify.DeliveryError
	if !errors.As(err, &de) || de.Permanent || de.Reason != "timeout" {
		t.Fatalf("err = %v, want a temporary timeout", err)
	}
}

// The vector is the Standard Webhooks reference test
// (libraries/go/webhook_test.go, TestWebhookSign).
func TestSignReferenceVector(t *testing.T) {
	t.Parallel()
	got, err := webhook.Sign(testSecret, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
}

func TestSignVerify(t *testing.T) {
	t.Parallel()
	const id = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	body := []byte(`{"test": 2432232314}`)
	ts := time.Unix(1614265330, 0)
	sig, err := webhook.Sign(testSecret, id, ts, body)
	if err != nil {
		t.Fatal(err)
	}
	headers := func(kv ...string) http.Header {
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
		h.Set("webhook-signature", sig)
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				h.Del(kv[i])
			} else {
				h.Set(kv[i], kv[i+1])
			}
		}
		return h
	}
	rawSig, _ := webhook.Sign("a raw secret of at least 24 bytes", id, ts, body)
	tests := []struct {
		name    string
		secret  string
		headers http.Header
		body    []byte
		now     time.Time
		want    error
	}{
		{name: "valid", secret: testSecret, headers: headers(), body: body, now: ts},
		{name: "valid within tolerance", secret: testSecret, headers: headers(), body: body, now: ts.Add(4 * time.Minute)},
		{name: "several signatures, one valid", secret: testSecret, body: body, now: ts,
			headers: headers("webhook-signature", "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v1a,aGk= "+sig)},
		{name: "raw secret", secret: "a raw secret of at least 24 bytes", headers: headers("webhook-signature", rawSig), body: body, now: ts},
		{name: "tampered body", secret: testSecret, headers: headers(), body: []byte(`{"test": 2432232315}`), now: ts, want: webhook.ErrNoMatchingSignature},
		{name: "reserialized body", secret: testSecret, headers: headers(), body: []byte(`{"test":2432232314}`), now: ts, want: webhook.ErrNoMatchingSignature},
		{name: "tampered id", secret: testSecret, headers: headers("webhook-id", "msg_other"), body: body, now: ts, want: webhook.ErrNoMatchingSignature},
		{name: "tampered timestamp", secret: testSecret, headers: headers("webhook-timestamp", "1614265331"), body: body, now: ts, want: webhook.ErrNoMatchingSignature},
		{name: "wrong secret", secret: "whsec_" + strings.Repeat("QUFB", 8), headers: headers(), body: body, now: ts, want: webhook.ErrNoMatchingSignature},
		{name: "other version only", secret: testSecret, headers: headers("webhook-signature", "v2"+strings.TrimPrefix(sig, "v1")), body: body, now: ts, want: webhook.ErrNoMatchingSignature},
		{name: "too old", secret: testSecret, headers: headers(), body: body, now: ts.Add(6 * time.Minute), want: webhook.ErrTimestampOutOfTolerance},
		{name: "too new", secret: testSecret, headers: headers(), body: body, now: ts.Add(-6 * time.Minute), want: webhook.ErrTimestampOutOfTolerance},
		{name: "bad timestamp", secret: testSecret, headers: headers("webhook-timestamp", "yesterday"), body: body, now: ts, want: webhook.ErrInvalidTimestamp},
		{name: "missing id", secret: testSecret, headers: headers("webhook-id", ""), body: body, now: ts, want: webhook.ErrMissingHeaders},
		{name: "missing signature", secret: testSecret, headers: headers("webhook-signature", ""), body: body, now: ts, want: webhook.ErrMissingHeaders},
		{name: "bad secret", secret: "whsec_***", headers: headers(), body: body, now: ts, want: webhook.ErrInvalidSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := webhook.Verify(tt.secret, tt.headers, tt.body, tt.now, 0)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestKey(t *testing.T) {
	t.Parallel()
	if _, err := webhook.Key(""); !errors.Is(err, webhook.ErrInvalidSecret) {
		t.Errorf("empty: %v", err)
	}
	if _, err := webhook.Key("whsec_"); !errors.Is(err, webhook.ErrInvalidSecret) {
		t.Errorf("empty after prefix: %v", err)
	}
	if k, err := webhook.Key("whsec_QUJD"); err != nil || string(k) != "ABC" {
		t.Errorf("prefixed: %q %v", k, err)
	}
	if k, err := webhook.Key("QUJD"); err != nil || string(k) != "QUJD" {
		t.Errorf("raw: %q %v", k, err)
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte(testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		env         map[string]string
		wantEnabled bool
		wantCfg     webhook.Config
		wantErr     string
	}{
		{name: "nothing set", env: map[string]string{}},
		{
			name:        "both set",
			env:         map[string]string{webhook.EnvURL: "https://hooks.example.com/sms", webhook.EnvSecret: testSecret},
			wantEnabled: true,
			wantCfg:     webhook.Config{URL: "https://hooks.example.com/sms", Secret: testSecret},
		},
		{
			name:        "secret from file",
			env:         map[string]string{webhook.EnvURL: "https://hooks.example.com/sms", webhook.EnvSecret + "_FILE": secretFile},
			wantEnabled: true,
			wantCfg:     webhook.Config{URL: "https://hooks.example.com/sms", Secret: testSecret},
		},
		{name: "missing secret", env: map[string]string{webhook.EnvURL: "https://hooks.example.com/sms"}, wantErr: webhook.EnvSecret + " (or " + webhook.EnvSecret + "_FILE) is not set"},
		{name: "missing URL", env: map[string]string{webhook.EnvSecret: testSecret}, wantErr: webhook.EnvURL + " is not set"},
		{name: "short secret", env: map[string]string{webhook.EnvURL: "https://h.example", webhook.EnvSecret: "short"}, wantErr: "at least 24 bytes"},
		{name: "bad base64", env: map[string]string{webhook.EnvURL: "https://h.example", webhook.EnvSecret: "whsec_%%%"}, wantErr: "not base64"},
		{name: "relative URL", env: map[string]string{webhook.EnvURL: "/hooks", webhook.EnvSecret: testSecret}, wantErr: "absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, enabled, err := webhook.ConfigFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "MfKQ9r8") {
					t.Fatalf("error leaks the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if enabled != tt.wantEnabled || cfg != tt.wantCfg {
				t.Fatalf("got %+v %v, want %+v %v", cfg, enabled, tt.wantCfg, tt.wantEnabled)
			}
		})
	}
}
