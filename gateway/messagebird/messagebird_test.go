package messagebird_test

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
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/gateway/messagebird"
)

const testKey = "test_gshuPaZoeEG6ovbc8M79w0QyM"

func testMessage(body string) *phoneverify.Message {
	return &phoneverify.Message{VerificationID: "ver_1", To: "+31612345678", Body: body, Code: "482913"}
}

// fakeMessageBird checks requests the way rest.messagebird.com/messages
// does: access key header, JSON body with exactly the expected fields.
func fakeMessageBird(t *testing.T, wantBody string, wantCoding string, reply func(http.ResponseWriter)) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if r.Method != http.MethodPost || r.URL.Path != "/messages" {
			t.Errorf("request = %s %s, want POST /messages", r.Method, r.URL.Path)
		}
		if got := r.Header.Get("Authorization"); got != "AccessKey "+testKey {
			t.Errorf("Authorization = %q", got)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q", ct)
		}
		var fields map[string]json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&fields); err != nil {
			t.Errorf("body is not a JSON object: %v", err)
		}
		keys := make([]string, 0, len(fields))
		for k := range fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		wantKeys := []string{"body", "originator", "recipients"}
		if wantCoding != "" {
			wantKeys = []string{"body", "datacoding", "originator", "recipients"}
		}
		if !reflect.DeepEqual(keys, wantKeys) {
			t.Errorf("fields = %v, want exactly %v", keys, wantKeys)
		}
		var body struct {
			Originator string            `json:"originator"`
			Recipients []json.RawMessage `json:"recipients"`
			Body       string            `json:"body"`
			DataCoding string            `json:"datacoding"`
		}
		raw, _ := json.Marshal(fields)
		_ = json.Unmarshal(raw, &body)
		if body.Originator != "Verify" || body.Body != wantBody || body.DataCoding != wantCoding {
			t.Errorf("body = %+v", body)
		}
		if len(body.Recipients) != 1 || string(body.Recipients[0]) != "31612345678" {
			t.Errorf("recipients = %s, want [31612345678]", fields["recipients"])
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

// created follows the Message object of MessageBird's docs.
const created = `{"id":"e8077d803532c0b5937c639b60216938","href":"https://rest.messagebird.com/messages/e8077d803532c0b5937c639b60216938",` +
	`"direction":"mt","type":"sms","originator":"Verify","body":"Your code is 482913","reference":null,"validity":null,` +
	`"gateway":10,"typeDetails":{},"datacoding":"plain","mclass":1,"scheduledDatetime":null,"createdDatetime":"2016-05-03T14:26:57+00:00",` +
	`"recipients":{"totalCount":1,"totalSentCount":1,"totalDeliveredCount":0,"totalDeliveryFailedCount":0,` +
	`"items":[{"recipient":31612345678,"status":"sent","statusDatetime":"2016-05-03T14:26:57+00:00"}]}}`

func mbError(code int, description, parameter string) string {
	b, _ := json.Marshal(map[string]any{"errors": []map[string]any{{"code": code, "description": description, "parameter": parameter}}})
	return string(b)
}

func newSender(t *testing.T, base string) *messagebird.Sender {
	t.Helper()
	s, err := messagebird.New(messagebird.Config{AccessKey: testKey, Originator: "Verify", BaseURL: base}, &http.Client{})
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
		wantCoding    string
		reply         func(http.ResponseWriter)
		wantID        string
		wantPermanent bool
		wantCode      string
		wantRetry     time.Duration
	}{
		{name: "created", reply: answer(201, created), wantID: "e8077d803532c0b5937c639b60216938"},
		{name: "unicode body", body: "Ваш код 482913", wantCoding: "unicode", reply: answer(201, created), wantID: "e8077d803532c0b5937c639b60216938"},
		{name: "bad access key", reply: answer(401, mbError(2, "Request not allowed (incorrect access_key)", "access_key")), wantPermanent: true, wantCode: "2"},
		{name: "no correct recipients", reply: answer(422, mbError(9, "no (correct) recipients found", "recipients")), wantPermanent: true, wantCode: "9"},
		{name: "invalid originator", reply: answer(422, mbError(10, "originator is invalid", "originator")), wantPermanent: true, wantCode: "10"},
		{name: "not enough balance is temporary", reply: answer(422, mbError(25, "Not enough balance", "")), wantCode: "25"},
		{name: "internal error", reply: answer(500, mbError(99, "Internal error", "")), wantCode: "99"},
		{name: "429 with Retry-After", reply: answer(429, ``, "Retry-After", "4"), wantCode: "429", wantRetry: 4 * time.Second},
		{name: "503 HTML", reply: answer(503, `<html></html>`, "Retry-After", "60"), wantCode: "503", wantRetry: time.Minute},
		{name: "unknown code on 422 is permanent", reply: answer(422, mbError(77, "new thing", "")), wantPermanent: true, wantCode: "77"},
		{name: "201 without id", reply: answer(201, `{}`), wantCode: "201"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := tt.body
			if body == "" {
				body = "Your code is 482913"
			}
			srv, n := fakeMessageBird(t, body, tt.wantCoding, tt.reply)
			m := testMessage(body)
			res, err := newSender(t, srv.URL).Send(context.Background(), m)
			if n.Load() != 1 {
				t.Fatalf("requests = %d, want 1", n.Load())
			}
			if tt.wantID != "" {
				if err != nil {
					t.Fatal(err)
				}
				if res.Gateway != "messagebird" || res.ProviderID != tt.wantID {
					t.Fatalf("result = %+v", res)
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
			for _, secret := range []string{m.Code, "31612345678", testKey} {
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
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(testKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		env         map[string]string
		wantEnabled bool
		wantCfg     messagebird.Config
		wantErr     string
	}{
		{name: "nothing set", env: map[string]string{}},
		{
			name:        "all set",
			env:         map[string]string{messagebird.EnvAccessKey: testKey, messagebird.EnvOriginator: "Verify"},
			wantEnabled: true,
			wantCfg:     messagebird.Config{AccessKey: testKey, Originator: "Verify", BaseURL: messagebird.DefaultBaseURL},
		},
		{
			name:        "key from file",
			env:         map[string]string{messagebird.EnvAccessKey + "_FILE": keyFile, messagebird.EnvOriginator: "+31612345678"},
			wantEnabled: true,
			wantCfg:     messagebird.Config{AccessKey: testKey, Originator: "+31612345678", BaseURL: messagebird.DefaultBaseURL},
		},
		{name: "missing originator", env: map[string]string{messagebird.EnvAccessKey: testKey}, wantErr: messagebird.EnvOriginator + " is not set"},
		{name: "missing key", env: map[string]string{messagebird.EnvOriginator: "Verify", messagebird.EnvBaseURL: "http://x"}, wantErr: messagebird.EnvAccessKey + " (or " + messagebird.EnvAccessKey + "_FILE) is not set"},
		{name: "originator too long", env: map[string]string{messagebird.EnvAccessKey: testKey, messagebird.EnvOriginator: "PhoneVerifyCo"}, wantErr: "at most 11"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, enabled, err := messagebird.ConfigFromEnv(func(k string) string { return tt.env[k] })
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
