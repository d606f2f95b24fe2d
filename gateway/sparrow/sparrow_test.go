package sparrow_test

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
	"github.com/phoneverify/phoneverify/gateway/sparrow"
)

const testToken = "v2_r9Ql0vsJuCahz9jCY6L1u2U40uJ.test"

func testMessage(to string) *phoneverify.Message {
	return &phoneverify.Message{VerificationID: "ver_1", To: to, Body: "तपाईंको कोड 482913 हो", Code: "482913"}
}

// fakeSparrow checks requests the way api.sparrowsms.com/v2/sms/ does.
func fakeSparrow(t *testing.T, reply func(http.ResponseWriter)) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if r.Method != http.MethodPost || r.URL.Path != "/v2/sms/" {
			t.Errorf("request = %s %s, want POST /v2/sms/", r.Method, r.URL.Path)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("Content-Type = %q", ct)
		}
		if r.URL.RawQuery != "" {
			t.Errorf("the token must not travel in the query string: %q", r.URL.RawQuery)
		}
		raw, _ := io.ReadAll(r.Body)
		form, err := url.ParseQuery(string(raw))
		if err != nil {
			t.Errorf("body is not form-encoded: %v", err)
		}
		want := url.Values{
			"token": {testToken},
			"from":  {"TheAlert"},
			"to":    {"9812345678"},
			"text":  {"तपाईंको कोड 482913 हो"},
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

func newSender(t *testing.T, base string) *sparrow.Sender {
	t.Helper()
	s, err := sparrow.New(sparrow.Config{Token: testToken, From: "TheAlert", BaseURL: base}, &http.Client{})
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
		wantID        string
		wantOK        bool
		wantPermanent bool
		wantCode      string
		wantRetry     time.Duration
	}{
		{name: "queued", reply: answer(200, `{"count": 1, "response_code": 200, "response": "1 mesages has been queued for delivery"}`), wantOK: true},
		{name: "queued with message id", reply: answer(200, `{"count":1,"response_code":200,"response":"1 mesages has been queued for delivery","message_id":48213}`), wantOK: true, wantID: "48213"},
		{name: "missing field", reply: answer(403, `{"response_code":1000,"response":"A required field is missing"}`), wantPermanent: true, wantCode: "1000"},
		{name: "invalid IP", reply: answer(403, `{"response_code":1001,"response":"Invalid IP Address"}`), wantPermanent: true, wantCode: "1001"},
		{name: "invalid token", reply: answer(403, `{"response_code":1002,"response":"Invalid Token"}`), wantPermanent: true, wantCode: "1002"},
		{name: "account inactive", reply: answer(403, `{"response_code":1003,"response":"Account Inactive"}`), wantPermanent: true, wantCode: "1003"},
		{name: "account expired", reply: answer(403, `{"response_code":1005,"response":"Account has been expired"}`), wantPermanent: true, wantCode: "1005"},
		{name: "invalid receiver", reply: answer(403, `{"response_code":1007,"response":"Invalid Receiver"}`), wantPermanent: true, wantCode: "1007"},
		{name: "invalid sender", reply: answer(403, `{"response_code":1008,"response":"Invalid Sender"}`), wantPermanent: true, wantCode: "1008"},
		{name: "no valid receiver", reply: answer(403, `{"response_code":1011,"response":"No valid receiver"}`), wantPermanent: true, wantCode: "1011"},
		{name: "no credits is temporary", reply: answer(403, `{"response_code":1012,"response":"No Credits Available"}`), wantCode: "1012"},
		{name: "insufficient credits is temporary", reply: answer(403, `{"response_code":1013,"response":"Insufficient Credits"}`), wantCode: "1013"},
		{name: "unknown 403 code is permanent", reply: answer(403, `{"response_code":1099,"response":"Something"}`), wantPermanent: true, wantCode: "1099"},
		{name: "429 with Retry-After", reply: answer(429, `Too Many Requests`, "Retry-After", "12"), wantCode: "429", wantRetry: 12 * time.Second},
		{name: "503", reply: answer(503, `<html>maintenance</html>`), wantCode: "503"},
		{name: "200 not JSON", reply: answer(200, `<html>hi</html>`), wantCode: "200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, n := fakeSparrow(t, tt.reply)
			m := testMessage("+9779812345678")
			res, err := newSender(t, srv.URL).Send(context.Background(), m)
			if n.Load() != 1 {
				t.Fatalf("requests = %d, want 1", n.Load())
			}
			if tt.wantOK {
				if err != nil {
					t.Fatal(err)
				}
				if res.Gateway != "sparrow" || res.ProviderID != tt.wantID {
					t.Fatalf("result = %+v, want id %q", res, tt.wantID)
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
			for _, secret := range []string{m.Code, "9812345678", testToken} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains %q", err, secret)
				}
			}
		})
	}
}

func TestSendRefusesNonNepaliNumbers(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("no request expected, got %s %s", r.Method, r.URL)
	}))
	defer srv.Close()
	s := newSender(t, srv.URL)
	for _, to := range []string{"+919812345678", "+97714123456", "+9771234567890", "+97798123456789"} {
		_, err := s.Send(context.Background(), testMessage(to))
		if !phoneverify.IsPermanent(err) {
			t.Errorf("%s: err = %v, want permanent", to, err)
		}
	}
}

func TestNational(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"+9779812345678", "9812345678", true},
		{"+9779701234567", "9701234567", true},
		{"+97714123456", "", false},   // Kathmandu landline
		{"+919812345678", "", false},  // India
		{"9779812345678", "", false},  // not E.164
		{"+9778812345678", "", false}, // not a mobile prefix
	}
	for _, tt := range tests {
		got, ok := sparrow.National(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("National(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
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
	_, err := newSender(t, srv.URL).Send(ctx, testMessage("+9779812345678"))
	var de *phoneverify.DeliveryError
	if !errors.As(err, &de) || de.Permanent || de.Reason != "timeout" || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a temporary timeout", err)
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		env         map[string]string
		wantEnabled bool
		wantCfg     sparrow.Config
		wantErr     string
	}{
		{name: "nothing set", env: map[string]string{}},
		{
			name:        "all set",
			env:         map[string]string{sparrow.EnvToken: testToken, sparrow.EnvFrom: "TheAlert"},
			wantEnabled: true,
			wantCfg:     sparrow.Config{Token: testToken, From: "TheAlert", BaseURL: sparrow.DefaultBaseURL},
		},
		{
			name:        "token from file",
			env:         map[string]string{sparrow.EnvToken + "_FILE": tokenFile, sparrow.EnvFrom: "TheAlert", sparrow.EnvBaseURL: "http://127.0.0.1:9/"},
			wantEnabled: true,
			wantCfg:     sparrow.Config{Token: testToken, From: "TheAlert", BaseURL: "http://127.0.0.1:9/"},
		},
		{name: "missing from", env: map[string]string{sparrow.EnvToken: testToken}, wantErr: sparrow.EnvFrom + " is not set"},
		{name: "missing token", env: map[string]string{sparrow.EnvFrom: "TheAlert"}, wantErr: sparrow.EnvToken + " (or " + sparrow.EnvToken + "_FILE) is not set"},
		{name: "unreadable token file", env: map[string]string{sparrow.EnvToken + "_FILE": filepath.Join(t.TempDir(), "none"), sparrow.EnvFrom: "TheAlert"}, wantErr: "reading " + sparrow.EnvToken + "_FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, enabled, err := sparrow.ConfigFromEnv(func(k string) string { return tt.env[k] })
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
