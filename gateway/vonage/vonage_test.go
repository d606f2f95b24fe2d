package vonage_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/gateway/vonage"
)

const (
	testKey    = "abcd1234"
	testSecret = "abcdef0123456789"
)

func testMessage(body string) *phoneverify.Message {
	return &phoneverify.Message{VerificationID: "ver_1", To: "+447700900000", Body: body, Code: "482913"}
}

// fakeVonage checks requests the way rest.nexmo.com/sms/json does and
// answers with reply.
func fakeVonage(t *testing.T, wantType string, reply func(http.ResponseWriter)) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if r.Method != http.MethodPost || r.URL.Path != "/sms/json" {
			t.Errorf("request = %s %s, want POST /sms/json", r.Method, r.URL.Path)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("Content-Type = %q", ct)
		}
		if r.URL.RawQuery != "" {
			t.Errorf("credentials or fields leaked into the query string: %q", r.URL.RawQuery)
		}
		raw, _ := io.ReadAll(r.Body)
		form, err := url.ParseQuery(string(raw))
		if err != nil {
			t.Errorf("body is not form-encoded: %v", err)
		}
		want := url.Values{
			"api_key":    {testKey},
			"api_secret": {testSecret},
			"from":       {"AcmeInc"},
			"to":         {"447700900000"},
			"text":       {form.Get("text")},
		}
		if wantType != "" {
			want.Set("type", wantType)
		}
		if form.Get("text") == "" {
			t.Error("text is empty")
		}
		if !reflect.DeepEqual(form, want) {
			t.Errorf("form = %v, want exactly %v", form, want)
		}
		reply(w)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func answer(status int, body string, headers ...string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func perMessage(status, text string) string {
	return `{"message-count":"1","messages":[{"status":"` + status + `","error-text":"` + text + `"}]}`
}

// ok follows the success example of "Troubleshooting SMS".
const ok = `{"message-count":"1","messages":[{"to":"447700900000","message-id":"0C000000217B7F02",` +
	`"status":"0","remaining-balance":"15.53590000","message-price":"0.03330000","network":"23410"}]}`

func newSender(t *testing.T, base string) *vonage.Sender {
	t.Helper()
	s, err := vonage.New(vonage.Config{APIKey: testKey, APISecret: testSecret, From: "AcmeInc", BaseURL: base}, &http.Client{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSend(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		body          string
		wantType      string
		reply         func(http.ResponseWriter)
		wantID        string
		wantPermanent bool
		wantCode      string
		wantRetry     time.Duration
	}{
		{name: "accepted", reply: answer(200, ok), wantID: "0C000000217B7F02"},
		{name: "unicode text", body: "आपको कोड 482913 है", wantType: "unicode", reply: answer(200, ok), wantID: "0C000000217B7F02"},
		{name: "extension characters stay text", body: "Code [482913] €", reply: answer(200, ok), wantID: "0C000000217B7F02"},
		{
			name: "two parts, first id kept",
			reply: answer(200, `{"message-count":"2","messages":[`+
				`{"to":"447700900000","message-id":"0C0000001","status":"0"},`+
				`{"to":"447700900000","message-id":"0C0000002","status":"0"}]}`),
			wantID: "0C0000001",
		},
		{name: "throttled is temporary", reply: answer(200, perMessage("1", "Throughput Rate Exceeded - please wait [ 10 ] and retry")), wantCode: "1"},
		{name: "invalid to is permanent", reply: answer(200, perMessage("3", "Invalid to address")), wantPermanent: true, wantCode: "3"},
		{name: "bad credentials are permanent", reply: answer(200, perMessage("4", "Bad Credentials")), wantPermanent: true, wantCode: "4"},
		{name: "internal error is temporary", reply: answer(200, perMessage("5", "Internal Error")), wantCode: "5"},
		{name: "unknown prefix is permanent", reply: answer(200, perMessage("6", "Unroutable message - rejected")), wantPermanent: true, wantCode: "6"},
		{name: "barred number is permanent", reply: answer(200, perMessage("7", "Number barred")), wantPermanent: true, wantCode: "7"},
		{name: "partner quota is temporary", reply: answer(200, perMessage("9", "Quota Exceeded - rejected")), wantCode: "9"},
		{name: "bad sender is permanent", reply: answer(200, perMessage("15", "Illegal Sender Address - rejected")), wantPermanent: true, wantCode: "15"},
		{name: "deactivated number is permanent", reply: answer(200, perMessage("33", "Number de-activated")), wantPermanent: true, wantCode: "33"},
		{name: "undocumented status is temporary", reply: answer(200, perMessage("99", "Something new")), wantCode: "99"},
		{
			name: "second part refused",
			reply: answer(200, `{"message-count":"2","messages":[{"message-id":"0C0000001","status":"0"},`+
				`{"status":"7","error-text":"Number barred"}]}`),
			wantPermanent: true, wantCode: "7",
		},
		{name: "429 with Retry-After", reply: answer(429, `{}`, "Retry-After", "3"), wantCode: "429", wantRetry: 3 * time.Second},
		{name: "503", reply: answer(503, `<html></html>`), wantCode: "503"},
		{name: "401 is permanent", reply: answer(401, `{"type":"https://developer.nexmo.com/api-errors#unauthorized","title":"Invalid credentials supplied"}`), wantPermanent: true, wantCode: "401"},
		{name: "200 without messages is temporary", reply: answer(200, `{}`), wantCode: "200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, n := fakeVonage(t, tt.wantType, tt.reply)
			body := tt.body
			if body == "" {
				body = "Your code is 482913"
			}
			m := testMessage(body)
			res, err := newSender(t, srv.URL).Send(context.Background(), m)
			if n.Load() != 1 {
				t.Fatalf("requests = %d, want 1", n.Load())
			}
			if tt.wantID != "" {
				if err != nil {
					t.Fatal(err)
				}
				if res.Gateway != "vonage" || res.ProviderID != tt.wantID {
					t.Fatalf("result = %+v, want %s", res, tt.wantID)
				}
				return
			}
			var de *phoneverify.DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want *DeliveryError", err)
			}
			if de.Permanent != tt.wantPermanent || de.Code != tt.wantCode || de.RetryAfter != tt.wantRetry {
				t.Fatalf("got permanent=%v code=%q retry=%v, want %v %q %v (%v)",
					de.Permanent, de.Code, de.RetryAfter, tt.wantPermanent, tt.wantCode, tt.wantRetry, err)
			}
			for _, secret := range []string{m.Code, "447700900000", testSecret} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains %q", err, secret)
				}
			}
		})
	}
}

func TestSendTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Reading the body lets the server notice the client hanging up.
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
	_, err := newSender(t, srv.URL).Send(ctx, testMessage("Your code is 482913"))
	var de *phoneverify.DeliveryError
	if !errors.As(err, &de) || de.Permanent || de.Reason != "timeout" || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a temporary timeout", err)
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
		wantCfg     vonage.Config
		wantErr     string
	}{
		{name: "nothing set", env: map[string]string{}},
		{
			name:        "all set",
			env:         map[string]string{vonage.EnvAPIKey: testKey, vonage.EnvAPISecret: testSecret, vonage.EnvFrom: "AcmeInc"},
			wantEnabled: true,
			wantCfg:     vonage.Config{APIKey: testKey, APISecret: testSecret, From: "AcmeInc", BaseURL: vonage.DefaultBaseURL},
		},
		{
			name:        "secret from file",
			env:         map[string]string{vonage.EnvAPIKey: testKey, vonage.EnvAPISecret + "_FILE": secretFile, vonage.EnvFrom: "AcmeInc", vonage.EnvBaseURL: "http://127.0.0.1:9"},
			wantEnabled: true,
			wantCfg:     vonage.Config{APIKey: testKey, APISecret: testSecret, From: "AcmeInc", BaseURL: "http://127.0.0.1:9"},
		},
		{name: "missing secret", env: map[string]string{vonage.EnvAPIKey: testKey, vonage.EnvFrom: "AcmeInc"}, wantErr: vonage.EnvAPISecret + " (or " + vonage.EnvAPISecret + "_FILE) is not set"},
		{name: "missing key", env: map[string]string{vonage.EnvAPISecret: testSecret, vonage.EnvFrom: "AcmeInc"}, wantErr: vonage.EnvAPIKey + " is not set"},
		{name: "bad base URL", env: map[string]string{vonage.EnvAPIKey: testKey, vonage.EnvAPISecret: testSecret, vonage.EnvFrom: "AcmeInc", vonage.EnvBaseURL: "rest.nexmo.com"}, wantErr: "base URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, enabled, err := vonage.ConfigFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
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

// The vectors are those of Vonage's Ruby library
// (vonage-ruby test/vonage/signature_test.rb).
func TestSignature(t *testing.T) {
	t.Parallel()
	params := url.Values{
		"message-timestamp": {"2013-11-21 15:27:30"},
		"messageId":         {"020000001B0FE827"},
		"msisdn":            {"14843472194"},
		"text":              {"Test again"},
		"timestamp":         {"1385047698"},
		"to":                {"13239877404"},
		"type":              {"text"},
	}
	const secret = "my_secret_key_for_testing"
	tests := []struct {
		method vonage.SignatureMethod
		want   string
	}{
		{vonage.MD5Hash, "d2e7b1dc968737c5998ad624e02f90b7"},
		{vonage.MD5HMAC, "DDEBD46008C2D4E93CCE578A332A52D5"},
		{vonage.SHA1HMAC, "27D0D05C2876C7CB1720DBCDBA4D492E1E55C09A"},
		{vonage.SHA256HMAC, "DDB8397C2B90AAC7F3882D306475C9A5058C92322EEF43C92B298B6E0FC0D330"},
		{vonage.SHA512HMAC, "E0D3C650F8C9D1A5C174D10DDDBFB003E561F59B265616208B0487C5D819481CD3C311D59CF6165ECD1139622D5BA3A256C0D763AC4A9AD9144B5A426B94FE82"},
	}
	signedAt := time.Unix(1385047698, 0)
	for _, tt := range tests {
		t.Run(string(tt.method), func(t *testing.T) {
			t.Parallel()
			got, err := vonage.Signature(params, secret, tt.method)
			if err != nil || got != tt.want {
				t.Fatalf("Signature = %q, %v; want %q", got, err, tt.want)
			}
			signed := url.Values{"sig": {strings.ToLower(tt.want)}}
			for k, v := range params {
				signed[k] = v
			}
			if err := vonage.CheckSignature(signed, secret, tt.method, signedAt.Add(time.Minute), 5*time.Minute); err != nil {
				t.Fatalf("CheckSignature(lowercase hex) = %v", err)
			}
			if err := vonage.CheckSignature(signed, secret, tt.method, signedAt.Add(time.Hour), 5*time.Minute); !errors.Is(err, vonage.ErrStaleSignature) {
				t.Fatalf("stale: err = %v", err)
			}
			if err := vonage.CheckSignature(signed, "other", tt.method, signedAt, 0); !errors.Is(err, vonage.ErrBadSignature) {
				t.Fatalf("wrong secret: err = %v", err)
			}
			signed.Set("text", "Test agaim")
			if err := vonage.CheckSignature(signed, secret, tt.method, signedAt, 0); !errors.Is(err, vonage.ErrBadSignature) {
				t.Fatalf("tampered: err = %v", err)
			}
		})
	}
	if err := vonage.CheckSignature(params, secret, vonage.MD5Hash, signedAt, 0); !errors.Is(err, vonage.ErrMissingSignature) {
		t.Fatalf("unsigned: err = %v", err)
	}
	if _, err := vonage.Signature(params, secret, "crc32"); !errors.Is(err, vonage.ErrUnknownMethod) {
		t.Fatalf("unknown method: err = %v", err)
	}
}

func TestSignatureReplacesSeparators(t *testing.T) {
	t.Parallel()
	// Same library's vector: "&" and "=" in values are signed as "_".
	for _, v := range []string{"_", "&", "="} {
		got, err := vonage.Signature(url.Values{"k": {v}}, "my_secret_key_for_testing", vonage.MD5Hash)
		if err != nil || got != "c3d6a686ab9c7e7408bb1c0506e9629a" {
			t.Errorf("k=%q: Signature = %q, %v", v, got, err)
		}
	}
}

// dlrQuery follows the DeliveryReceipt example of the SMS API definition.
const dlrQuery = "msisdn=447700900000&to=AcmeInc&network-code=12345&messageId=0A0000001234567B&price=0.03330000" +
	"&status=delivered&scts=2001011400&err-code=0&api-key=abcd1234&message-timestamp=2020-01-01+12%3A00%3A00"

func TestDeliveryReceipt(t *testing.T) {
	t.Parallel()
	want := &vonage.DeliveryReceipt{
		MessageID: "0A0000001234567B", MSISDN: "447700900000", To: "AcmeInc", Status: "delivered", ErrCode: "0",
		NetworkCode: "12345", Price: "0.03330000", SCTS: "2001011400", MessageTimestamp: "2020-01-01 12:00:00",
	}
	jsonBody := `{"msisdn":"447700900000","to":"AcmeInc","network-code":"12345","messageId":"0A0000001234567B",` +
		`"price":"0.03330000","status":"delivered","scts":"2001011400","err-code":"0","api-key":"abcd1234",` +
		`"message-timestamp":"2020-01-01 12:00:00"}`
	tests := []struct {
		name    string
		req     *http.Request
		want    *vonage.DeliveryReceipt
		wantErr bool
	}{
		{name: "GET", req: httptest.NewRequest(http.MethodGet, "/dlr?"+dlrQuery, nil), want: want},
		{name: "POST form", req: formRequest(dlrQuery), want: want},
		{name: "POST JSON", req: jsonRequest(jsonBody), want: want},
		{name: "JSON with nested object", req: jsonRequest(`{"messageId":"1","status":"delivered","x":{}}`), wantErr: true},
		{name: "missing status", req: httptest.NewRequest(http.MethodGet, "/dlr?messageId=1", nil), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			params, err := vonage.DeliveryReceiptParams(tt.req)
			var d *vonage.DeliveryReceipt
			if err == nil {
				d, err = vonage.ParseDeliveryReceipt(params)
			}
			if tt.wantErr {
				if !errors.Is(err, vonage.ErrMalformedReceipt) {
					t.Fatalf("err = %v, want ErrMalformedReceipt", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(d, tt.want) {
				t.Fatalf("got %+v, want %+v", d, tt.want)
			}
			if !d.Final() || !d.Delivered() {
				t.Fatal("delivered receipt must be final and delivered")
			}
		})
	}
}

func TestDeliveryReceiptSigned(t *testing.T) {
	t.Parallel()
	params, _ := url.ParseQuery(dlrQuery)
	params.Set("timestamp", "1582650446")
	params.Set("nonce", "ec11dd3e-1e7f-4db5-9467-82b02cd223b9")
	sig, err := vonage.Signature(params, "sig-secret", vonage.SHA256HMAC)
	if err != nil {
		t.Fatal(err)
	}
	params.Set("sig", strings.ToUpper(sig))
	got, err := vonage.DeliveryReceiptParams(formRequest(params.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	if err := vonage.CheckSignature(got, "sig-secret", vonage.SHA256HMAC, time.Unix(1582650446, 0), 5*time.Minute); err != nil {
		t.Fatalf("CheckSignature = %v", err)
	}
}

func TestDeliveryReceiptStatuses(t *testing.T) {
	t.Parallel()
	for status, final := range map[string]bool{"delivered": true, "expired": true, "failed": true, "rejected": true, "accepted": false, "buffered": false, "unknown": false} {
		d := &vonage.DeliveryReceipt{Status: status}
		if d.Final() != final {
			t.Errorf("%s: Final() = %v, want %v", status, d.Final(), final)
		}
	}
}

func formRequest(body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/dlr", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

func jsonRequest(body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/dlr", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}
