package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phoneverify/phoneverify/gateway/twilio"
	"github.com/phoneverify/phoneverify/internal/testenv"
)

const (
	receiptsTwilioSID   = "AC0123456789abcdef0123456789abcdef"
	receiptsTwilioToken = "twilio-auth-token-0123456789"
	receiptsPublicURL   = "https://verify.example.com"
)

// fakeProviders stands in for Twilio's and Vonage's REST APIs on loopback:
// each accepts every message and answers with an id of its own, which it
// keeps per gateway and destination for the receipts a test sends back.
type fakeProviders struct {
	srv *httptest.Server
	mu  sync.Mutex
	n   int
	ids map[string]string // "twilio +1415…" → provider id
}

func newFakeProviders(t *testing.T) *fakeProviders {
	p := &fakeProviders{ids: map[string]string{}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		p.n++
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/Messages.json"):
			sid := fmt.Sprintf("SM%032x", p.n)
			p.ids["twilio "+r.PostForm.Get("To")] = sid
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"sid":%q,"status":"queued"}`, sid)
		case r.URL.Path == "/sms/json":
			id := fmt.Sprintf("m-%d", p.n)
			to := r.PostForm.Get("to")
			p.ids["vonage +"+strings.TrimPrefix(to, "+")] = id
			fmt.Fprintf(w, `{"message-count":"1","messages":[{"to":%q,"message-id":%q,"status":"0"}]}`, to, id)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// id waits for a message of gateway to a number and returns its provider id.
func (p *fakeProviders) id(t *testing.T, gateway, to string) string {
	t.Helper()
	var id string
	waitFor(t, gateway+" message", 10*time.Second, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		id = p.ids[gateway+" "+to]
		return id != ""
	})
	return id
}

// TestReceiptMetrics runs a node that sends through Twilio and Vonage (fakes
// on loopback), posts delivery receipts to it as the providers do, and
// checks that /metrics counts each receipt that changed a message once, by
// gateway and final status, and none that was refused, repeated or about
// an unknown message; the outbox's own outcomes stay as they were.
func TestReceiptMetrics(t *testing.T) {
	p := newFakeProviders(t)
	m, _ := startNode(t, t.TempDir(), map[string]string{
		"PHONEVERIFY_PUBLIC_URL":                 receiptsPublicURL,
		"PHONEVERIFY_GATEWAY_TWILIO_ACCOUNT_SID": receiptsTwilioSID,
		"PHONEVERIFY_GATEWAY_TWILIO_AUTH_TOKEN":  receiptsTwilioToken,
		"PHONEVERIFY_GATEWAY_TWILIO_FROM":        "+15005550006",
		"PHONEVERIFY_GATEWAY_TWILIO_BASE_URL":    p.srv.URL,
		"PHONEVERIFY_GATEWAY_VONAGE_API_KEY":     "key",
		"PHONEVERIFY_GATEWAY_VONAGE_API_SECRET":  "secret",
		"PHONEVERIFY_GATEWAY_VONAGE_FROM":        "Example",
		"PHONEVERIFY_GATEWAY_VONAGE_BASE_URL":    p.srv.URL,
		"PHONEVERIFY_ROUTES":                     "+1=twilio;*=vonage",
		"PHONEVERIFY_RATE_LIMIT_IP":              "off",
		"PHONEVERIFY_FRAUD_MODE":                 "off",
	})
	const us, np = "+14155552691", "+9779812345678"
	for _, to := range []string{us, np} {
		if st, v := call(t, m, "POST", "/v1/verifications", `{"to":"`+to+`"}`); st != http.StatusCreated {
			t.Fatalf("start %s: %d %v", to, st, v)
		}
	}
	sid, vid := p.id(t, "twilio", us), p.id(t, "vonage", np)
	// A receipt for a message whose send is not recorded yet changes
	// nothing: wait until the outbox has recorded both sends.
	waitFor(t, "both sends recorded", 10*time.Second, func() bool {
		text := scrape(t, m.Addr())
		return sample(text, `phoneverify_messages_total{gateway="twilio",status="sent"}`) == "1" &&
			sample(text, `phoneverify_messages_total{gateway="vonage",status="sent"}`) == "1"
	})

	twilioReceipt := func(status, signature string) (int, string) {
		form := url.Values{"MessageSid": {sid}, "MessageStatus": {status}, "AccountSid": {receiptsTwilioSID}}
		if signature == "" {
			signature = twilio.Sign(receiptsTwilioToken, receiptsPublicURL+"/v1/receipts/twilio", form)
		}
		req, _ := http.NewRequest("POST", "http://"+m.Addr()+"/v1/receipts/twilio", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", signature)
		return do(t, req)
	}
	vonageReceipt := func(id, status string) (int, string) {
		q := url.Values{"messageId": {id}, "status": {status}, "msisdn": {strings.TrimPrefix(np, "+")}, "err-code": {"5"}}
		req, _ := http.NewRequest("GET", "http://"+m.Addr()+"/v1/receipts/vonage?"+q.Encode(), nil)
		return do(t, req)
	}
	steps := []struct {
		name     string
		send     func() (int, string)
		wantHTTP int
		wantBody string
	}{
		{"twilio sent changes nothing", func() (int, string) { return twilioReceipt("sent", "") }, 200, `{"updated":false}`},
		{"twilio delivered", func() (int, string) { return twilioReceipt("delivered", "") }, 200, `{"updated":true}`},
		{"twilio delivered again", func() (int, string) { return twilioReceipt("delivered", "") }, 200, `{"updated":false}`},
		{"twilio bad signature", func() (int, string) { return twilioReceipt("failed", "bm90IGEgc2lnbmF0dXJl") }, 403, ""},
		{"vonage unknown message", func() (int, string) { return vonageReceipt("m-unknown", "delivered") }, 200, `{"updated":false}`},
		{"vonage expired", func() (int, string) { return vonageReceipt(vid, "expired") }, 200, `{"updated":true}`},
	}
	for _, s := range steps {
		code, body := s.send()
		if code != s.wantHTTP || (s.wantBody != "" && strings.TrimSpace(body) != s.wantBody) {
			t.Fatalf("%s: answer %d %s, want %d %s", s.name, code, body, s.wantHTTP, s.wantBody)
		}
	}

	text := scrape(t, m.Addr())
	want := map[string]string{
		`phoneverify_message_receipts_total{gateway="twilio",status="delivered"}`:           "1",
		`phoneverify_message_receipts_total{gateway="vonage",status="undelivered"}`:         "1",
		`phoneverify_messages_total{gateway="twilio",status="sent"}`:                        "1",
		`phoneverify_messages_total{gateway="vonage",status="sent"}`:                        "1",
		`phoneverify_http_requests_total{code="200",route="POST /v1/receipts/twilio"}`:      "3",
		`phoneverify_http_requests_total{code="403",route="POST /v1/receipts/twilio"}`:      "1",
		`phoneverify_http_requests_total{code="200",route="GET /v1/receipts/vonage"}`:       "2",
		`phoneverify_http_request_duration_seconds_count{route="POST /v1/receipts/twilio"}`: "4",
		`phoneverify_http_request_duration_seconds_count{route="GET /v1/receipts/vonage"}`:  "2",
	}
	for series, v := range want {
		if got := sample(text, series); got != v {
			t.Errorf("%s = %q, want %q", series, got, v)
		}
	}
	if got := grepLines(text, "phoneverify_message_receipts_total{"); strings.Count(got, "\n") != 1 {
		t.Errorf("receipt series other than the two changes:\n%s", got)
	}
	if got := grepLines(text, "phoneverify_messages_total{"); strings.Count(got, "\n") != 1 {
		t.Errorf("receipts moved the outbox's outcomes:\n%s", got)
	}
	for _, leak := range []string{sid, vid, us, np, strings.TrimPrefix(np, "+")} {
		if strings.Contains(text, leak) {
			t.Errorf("the metrics carry %q: labels must stay bounded", leak)
		}
	}
	t.Run("promtool", func(t *testing.T) {
		cmd := exec.Command(testenv.Promtool(t), "check", "metrics")
		cmd.Stdin = strings.NewReader(text)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	})
}

// do sends req and returns the status and the body.
func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		if json.Unmarshal(b, &e) != nil || e.Error.Code == "" {
			t.Errorf("%s %s answered %d without an error code: %s", req.Method, req.URL.Path, res.StatusCode, b)
		}
	}
	return res.StatusCode, string(b)
}
