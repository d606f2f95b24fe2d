package twilio_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/gateway/gwenv"
	"github.com/phoneverify/phoneverify/gateway/twilio"
)

const (
	testSID   = "AC0123456789abcdef0123456789abcdef"
	testToken = "tok-0123456789abcdef0123456789ab"
	testMG    = "MG0123456789abcdef0123456789abcdef"
)

func testMessage() *phoneverify.Message {
	return &phoneverify.Message{
		VerificationID: "ver_1",
		To:             "+15005550006",
		Body:           "Your code is 482913",
		Code:           "482913",
		Locale:         "en",
	}
}

// fakeTwilio is a loopback stand-in for api.twilio.com that checks each
// request the way the Messages endpoint does and answers with reply.
type fakeTwilio struct {
	t        *testing.T
	srv      *httptest.Server
	wantFrom url.Values // the sender fields and StatusCallback expected
	reply    func(w http.ResponseWriter, r *http.Request)
	requests atomic.Int32
	conns    atomic.Int32
}

func newFakeTwilio(t *testing.T, wantFrom url.Values, reply func(http.ResponseWriter, *http.Request)) *fakeTwilio {
	t.Helper()
	f := &fakeTwilio{t: t, wantFrom: wantFrom, reply: reply}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.conns.Add(1)
		}
	}
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeTwilio) serve(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	t := f.t
	if r.Method != http.MethodPost {
		t.Errorf("method = %s, want POST", r.Method)
	}
	if want := "/2010-04-01/Accounts/" + testSID + "/Messages.json"; r.URL.Path != want {
		t.Errorf("path = %s, want %s", r.URL.Path, want)
	}
	if user, pass, ok := r.BasicAuth(); !ok || user != testSID || pass != testToken {
		t.Errorf("basic auth = %q/%q/%v, want the account SID and auth token", user, pass, ok)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type = %q", ct)
	}
	body, _ := io.ReadAll(r.Body)
	form, err := url.ParseQuery(string(body))
	if err != nil {
		t.Errorf("body is not form-encoded: %v", err)
	}
	want := url.Values{"To": {"+15005550006"}, "Body": {"Your code is 482913"}}
	for k, v := range f.wantFrom {
		want[k] = v
	}
	if !reflect.DeepEqual(form, want) {
		t.Errorf("form = %v, want exactly %v", form, want)
	}
	f.reply(w, r)
}

func reply(status int, body string, headers ...string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// The bodies below follow the examples in Twilio's docs.
const (
	created = `{"account_sid":"` + testSID + `","api_version":"2010-04-01","body":"Your code is 482913",` +
		`"date_created":"Thu, 24 Aug 2023 05:01:45 +0000","direction":"outbound-api","error_code":null,` +
		`"error_message":null,"from":"+15017122661","messaging_service_sid":null,"num_media":"0",` +
		`"num_segments":"1","price":null,"price_unit":null,"sid":"SM1234567890abcdef1234567890abcdef",` +
		`"status":"queued","to":"+15005550006","uri":"/2010-04-01/Accounts/` + testSID + `/Messages/SM1234567890abcdef1234567890abcdef.json"}`
	errInvalidTo = `{"code": 21211, "message": "The 'To' number +15005550006 is not a valid phone number.", ` +
		`"more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}`
)

func twilioError(code int, status int, message string) string {
	return `{"code": ` + strconv.Itoa(code) + `, "message": "` + message + `", "more_info": "https://www.twilio.com/docs/errors/` +
		strconv.Itoa(code) + `", "status": ` + strconv.Itoa(status) + `}`
}

func newSender(t *testing.T, base string, mutate func(*twilio.Config)) *twilio.Sender {
	t.Helper()
	cfg := twilio.Config{AccountSID: testSID, AuthToken: testToken, From: "+15017122661", BaseURL: base}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := twilio.New(cfg, &http.Client{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSend(t *testing.T) {
	t.Parallel()
	fromNumber := url.Values{"From": {"+15017122661"}}
	tests := []struct {
		name          string
		mutate        func(*twilio.Config)
		wantFrom      url.Values
		reply         func(http.ResponseWriter, *http.Request)
		wantID        string
		wantPermanent bool
		wantCode      string
		wantRetry     time.Duration
	}{
		{
			name:     "created",
			wantFrom: fromNumber,
			reply:    reply(http.StatusCreated, created),
			wantID:   "SM1234567890abcdef1234567890abcdef",
		},
		{
			name:     "messaging service sid",
			mutate:   func(c *twilio.Config) { c.From = testMG },
			wantFrom: url.Values{"MessagingServiceSid": {testMG}},
			reply:    reply(http.StatusCreated, created),
			wantID:   "SM1234567890abcdef1234567890abcdef",
		},
		{
			name:     "alphanumeric sender starting with MG",
			mutate:   func(c *twilio.Config) { c.From = "MGMResorts" },
			wantFrom: url.Values{"From": {"MGMResorts"}},
			reply:    reply(http.StatusCreated, created),
			wantID:   "SM1234567890abcdef1234567890abcdef",
		},
		{
			name:     "status callback",
			mutate:   func(c *twilio.Config) { c.StatusCallback = "https://verify.example.com/twilio/status" },
			wantFrom: url.Values{"From": {"+15017122661"}, "StatusCallback": {"https://verify.example.com/twilio/status"}},
			reply:    reply(http.StatusCreated, created),
			wantID:   "SM1234567890abcdef1234567890abcdef",
		},
		{
			name: "invalid To is permanent", wantFrom: fromNumber,
			reply:         reply(http.StatusBadRequest, errInvalidTo),
			wantPermanent: true, wantCode: "21211",
		},
		{
			name: "not a mobile number is permanent", wantFrom: fromNumber,
			reply:         reply(http.StatusBadRequest, twilioError(21614, 400, "'To' number is not a valid mobile number")),
			wantPermanent: true, wantCode: "21614",
		},
		{
			name: "region not enabled is permanent", wantFrom: fromNumber,
			reply:         reply(http.StatusBadRequest, twilioError(21408, 400, "Permission to send an SMS has not been enabled for the region indicated by the 'To' number")),
			wantPermanent: true, wantCode: "21408",
		},
		{
			name: "unsubscribed recipient is permanent", wantFrom: fromNumber,
			reply:         reply(http.StatusBadRequest, twilioError(21610, 400, "Attempt to send to unsubscribed recipient")),
			wantPermanent: true, wantCode: "21610",
		},
		{
			name: "bad credentials are permanent", wantFrom: fromNumber,
			reply:         reply(http.StatusUnauthorized, twilioError(20003, 401, "Authenticate")),
			wantPermanent: true, wantCode: "20003",
		},
		{
			name: "queue full is temporary despite 400", wantFrom: fromNumber,
			reply:    reply(http.StatusBadRequest, twilioError(21611, 400, "This 'From' number has exceeded the maximum number of queued messages")),
			wantCode: "21611",
		},
		{
			name: "429 with Retry-After", wantFrom: fromNumber,
			reply:    reply(http.StatusTooManyRequests, twilioError(20429, 429, "Too Many Requests"), "Retry-After", "7"),
			wantCode: "20429", wantRetry: 7 * time.Second,
		},
		{
			name: "503 with Retry-After", wantFrom: fromNumber,
			reply:    reply(http.StatusServiceUnavailable, `<html>unavailable</html>`, "Retry-After", "30"),
			wantCode: "503", wantRetry: 30 * time.Second,
		},
		{
			name: "500 without body", wantFrom: fromNumber,
			reply:    reply(http.StatusInternalServerError, ``),
			wantCode: "500",
		},
		{
			name: "2xx without sid is temporary", wantFrom: fromNumber,
			reply:    reply(http.StatusOK, `<html>captive portal</html>`),
			wantCode: "200",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeTwilio(t, tt.wantFrom, tt.reply)
			s := newSender(t, f.srv.URL, tt.mutate)
			m := testMessage()
			res, err := s.Send(context.Background(), m)
			if f.requests.Load() != 1 {
				t.Fatalf("requests = %d, want 1", f.requests.Load())
			}
			if tt.wantID != "" {
				if err != nil {
					t.Fatal(err)
				}
				if res.Gateway != "twilio" || res.ProviderID != tt.wantID {
					t.Fatalf("result = %+v, want twilio %s", res, tt.wantID)
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
			assertNoSecrets(t, err, m)
		})
	}
}

func assertNoSecrets(t *testing.T, err error, m *phoneverify.Message) {
	t.Helper()
	msg := err.Error()
	for _, secret := range []string{m.Code, m.To, strings.TrimPrefix(m.To, "+"), testToken} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q contains %q", msg, secret)
		}
	}
}

func TestSendTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	f := newFakeTwilio(t, url.Values{"From": {"+15017122661"}}, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	s := newSender(t, f.srv.URL, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := s.Send(ctx, testMessage())
	var de *phoneverify.DeliveryError
	if !errors.As(err, &de) || de.Permanent || de.Reason != "timeout" {
		t.Fatalf("err = %v, want a temporary timeout", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want it to wrap context.DeadlineExceeded", err)
	}
	if strings.Contains(err.Error(), testSID) {
		t.Fatalf("error %q contains the request URL", err)
	}
}

func TestSendConnectionRefused(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	s := newSender(t, base, nil)
	_, err := s.Send(context.Background(), testMessage())
	var de *phoneverify.DeliveryError
	if !errors.As(err, &de) || de.Permanent || de.Reason != "connection error" {
		t.Fatalf("err = %v, want a temporary connection error", err)
	}
}

func TestSendReusesConnection(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	f := newFakeTwilio(t, url.Values{"From": {"+15017122661"}}, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 1 {
			// A long error body the sender does not need in full.
			reply(http.StatusBadRequest, `{"code":21211,"message":"`+strings.Repeat("x", 64<<10)+`"}`)(w, r)
			return
		}
		reply(http.StatusCreated, created)(w, r)
	})
	// With one connection allowed, a body left unread would force the
	// transport to close it and dial again; a request would otherwise race
	// the connection's return to the pool and dial a spare one.
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	s, err := twilio.New(twilio.Config{AccountSID: testSID, AuthToken: testToken, From: "+15017122661", BaseURL: f.srv.URL}, client)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := s.Send(ctx, testMessage())
		cancel()
		if i%2 == 1 && err != nil {
			t.Fatal(err)
		}
	}
	if got := f.conns.Load(); got != 1 {
		t.Fatalf("connections = %d, want 1 (bodies must be drained and closed)", got)
	}
}

func TestSendRejectsBadMessage(t *testing.T) {
	t.Parallel()
	s := newSender(t, "http://127.0.0.1:1", nil)
	tests := []struct {
		name string
		m    *phoneverify.Message
	}{
		{name: "nil", m: nil},
		{name: "no plus", m: &phoneverify.Message{To: "15005550006", Body: "x"}},
		{name: "letters", m: &phoneverify.Message{To: "+1500555000a", Body: "x"}},
		{name: "empty body", m: &phoneverify.Message{To: "+15005550006"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Send(context.Background(), tt.m)
			if !phoneverify.IsPermanent(err) {
				t.Fatalf("err = %v, want permanent", err)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	good := twilio.Config{AccountSID: testSID, AuthToken: testToken, From: "+15017122661"}
	tests := []struct {
		name   string
		mutate func(*twilio.Config)
		want   string
	}{
		{name: "bad sid", mutate: func(c *twilio.Config) { c.AccountSID = "AC123" }, want: "account SID"},
		{name: "no token", mutate: func(c *twilio.Config) { c.AuthToken = "" }, want: "auth token"},
		{name: "no from", mutate: func(c *twilio.Config) { c.From = "" }, want: "From"},
		{name: "bad base", mutate: func(c *twilio.Config) { c.BaseURL = "api.twilio.com" }, want: "base URL"},
		{name: "bad callback", mutate: func(c *twilio.Config) { c.StatusCallback = "/status" }, want: "status callback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.mutate(&cfg)
			_, err := twilio.New(cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want containing %q", err, tt.want)
			}
		})
	}
	s, err := twilio.New(good, nil)
	if err != nil || s.Name() != "twilio" {
		t.Fatalf("New(good) = %v, %v", s, err)
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	full := map[string]string{
		twilio.EnvAccountSID: testSID,
		twilio.EnvAuthToken:  testToken,
		twilio.EnvFrom:       "+15017122661",
	}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range full {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	tests := []struct {
		name        string
		env         map[string]string
		wantEnabled bool
		wantCfg     twilio.Config
		wantErr     string
	}{
		{name: "nothing set", env: map[string]string{}},
		{
			name: "all set, default base URL", env: full, wantEnabled: true,
			wantCfg: twilio.Config{AccountSID: testSID, AuthToken: testToken, From: "+15017122661", BaseURL: twilio.DefaultBaseURL},
		},
		{
			name: "token from file, custom base and callback", wantEnabled: true,
			env: with(twilio.EnvAuthToken, "", twilio.EnvAuthToken+"_FILE", tokenFile,
				twilio.EnvBaseURL, "https://twilio.internal", twilio.EnvStatusCallback, "https://verify.example.com/cb"),
			wantCfg: twilio.Config{AccountSID: testSID, AuthToken: testToken, From: "+15017122661",
				BaseURL: "https://twilio.internal", StatusCallback: "https://verify.example.com/cb"},
		},
		{name: "missing token", env: with(twilio.EnvAuthToken, ""), wantErr: twilio.EnvAuthToken + " (or " + twilio.EnvAuthToken + "_FILE) is not set"},
		{name: "missing from", env: with(twilio.EnvFrom, ""), wantErr: twilio.EnvFrom + " is not set"},
		{name: "only base URL", env: map[string]string{twilio.EnvBaseURL: "https://x"}, wantErr: "are not set"},
		{name: "token twice", env: with(twilio.EnvAuthToken+"_FILE", tokenFile), wantErr: "not both"},
		{name: "invalid sid", env: with(twilio.EnvAccountSID, "ACnope"), wantErr: "account SID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, enabled, err := twilio.ConfigFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), testToken) {
					t.Fatalf("error leaks the token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if enabled != tt.wantEnabled || cfg != tt.wantCfg {
				t.Fatalf("got %+v, %v; want %+v, %v", cfg, enabled, tt.wantCfg, tt.wantEnabled)
			}
		})
	}
	_, _, err := twilio.ConfigFromEnv(func(k string) string { return with(twilio.EnvAuthToken, "")[k] })
	if !errors.Is(err, gwenv.ErrIncomplete) {
		t.Fatalf("err = %v, want gwenv.ErrIncomplete", err)
	}
}

// The vectors are those of Twilio's own helper library
// (twilio-go client/request_validator_test.go, from Twilio's docs example).
func TestValidateSignature(t *testing.T) {
	t.Parallel()
	const (
		token   = "12345"
		testURL = "https://mycompany.com/myapp.php?foo=1&bar=2"
	)
	params := url.Values{
		"Digits":  {"1234"},
		"CallSid": {"CA1234567890ABCDE"},
		"To":      {"+18005551212"},
		"Caller":  {"+14158675309"},
		"From":    {"+14158675309"},
	}
	tampered := url.Values{}
	for k, v := range params {
		tampered[k] = v
	}
	tampered.Set("Digits", "1235")
	extra := url.Values{}
	for k, v := range params {
		extra[k] = v
	}
	extra.Set("MessageStatus", "delivered")

	tests := []struct {
		name   string
		token  string
		url    string
		form   url.Values
		header string
		want   bool
	}{
		{name: "docs vector", token: token, url: testURL, form: params, header: "RSOYDt4T1cUTdK1PDd93/VVr8B8=", want: true},
		{name: "signed without port, sent with port", token: token, url: strings.Replace(testURL, ".com", ".com:1234", 1), form: params, header: "RSOYDt4T1cUTdK1PDd93/VVr8B8=", want: true},
		{name: "signed with default https port", token: token, url: testURL, form: params, header: "kvajT1Ptam85bY51eRf/AJRuM3w=", want: true},
		{name: "http signed without port", token: token, url: "http://mycompany.com/myapp.php?foo=1&bar=2", form: params, header: "0ZXoZLH/DfblKGATFgpif+LLRf4=", want: true},
		{name: "http signed with port", token: token, url: "http://mycompany.com:1234/myapp.php?foo=1&bar=2", form: params, header: "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=", want: true},
		{name: "wrong token", token: "54321", url: testURL, form: params, header: "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
		{name: "tampered parameter", token: token, url: testURL, form: tampered, header: "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
		{name: "added parameter", token: token, url: testURL, form: extra, header: "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
		{name: "other URL", token: token, url: "https://mycompany.com/other.php?foo=1&bar=2", form: params, header: "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
		{name: "empty header", token: token, url: testURL, form: params, header: ""},
		{name: "empty token", token: "", url: testURL, form: params, header: "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := twilio.ValidateSignature(tt.token, tt.url, tt.form, tt.header); got != tt.want {
				t.Fatalf("ValidateSignature = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSign checks Sign against Twilio's documented vector and against
// this file's own implementation of the scheme.
func TestSign(t *testing.T) {
	t.Parallel()
	params := url.Values{"Digits": {"1234"}, "CallSid": {"CA1234567890ABCDE"}, "To": {"+18005551212"},
		"Caller": {"+14158675309"}, "From": {"+14158675309"}}
	const testURL = "https://mycompany.com/myapp.php?foo=1&bar=2"
	if got, want := twilio.Sign("12345", testURL, params), "RSOYDt4T1cUTdK1PDd93/VVr8B8="; got != want {
		t.Errorf("Sign(docs vector) = %q, want %q", got, want)
	}
	form := url.Values{"MessageSid": {"SM1"}, "MessageStatus": {"delivered"}}
	if got, want := twilio.Sign(testToken, "https://x.example/cb", form), sign(testToken, "https://x.example/cb", form); got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
}

func TestParseStatusCallback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                string
		form                url.Values
		sid, status, errore string
	}{
		{
			name: "delivered",
			form: url.Values{"MessageSid": {"SM1"}, "MessageStatus": {"delivered"}, "SmsSid": {"SM1"}, "SmsStatus": {"delivered"}, "AccountSid": {testSID}},
			sid:  "SM1", status: "delivered",
		},
		{
			name: "undelivered with error",
			form: url.Values{"MessageSid": {"SM2"}, "MessageStatus": {"undelivered"}, "ErrorCode": {"30003"}},
			sid:  "SM2", status: "undelivered", errore: "30003",
		},
		{
			name: "legacy names",
			form: url.Values{"SmsSid": {"SM3"}, "SmsStatus": {"sent"}},
			sid:  "SM3", status: "sent",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sid, status, code := twilio.ParseStatusCallback(tt.form)
			if sid != tt.sid || status != tt.status || code != tt.errore {
				t.Fatalf("got %q %q %q, want %q %q %q", sid, status, code, tt.sid, tt.status, tt.errore)
			}
		})
	}
}

// A round trip through a real HTTP request: what a status-callback handler
// sees must validate.
func TestValidateSignatureOverHTTP(t *testing.T) {
	t.Parallel()
	form := url.Values{"MessageSid": {"SM1"}, "MessageStatus": {"delivered"}, "To": {"+15005550006"}}
	var fullURL string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		if !twilio.ValidateSignature(testToken, fullURL, r.PostForm, r.Header.Get("X-Twilio-Signature")) {
			t.Error("signature of a correctly signed request did not validate")
		}
	}))
	defer srv.Close()
	fullURL = srv.URL + "/cb?x=1"
	sig := sign(testToken, fullURL, form)
	req, _ := http.NewRequest(http.MethodPost, fullURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
}

// sign is an independent implementation of Twilio's scheme for the test.
func sign(token, u string, form url.Values) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := u
	for _, k := range keys {
		s += k + form.Get(k)
	}
	return hmacSHA1Base64(token, s)
}

func hmacSHA1Base64(key, data string) string {
	mac := hmac.New(sha1.New, []byte(key))
	mac.Write([]byte(data))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
