package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/phoneverify/phoneverify/gateway/webhook"
	"github.com/phoneverify/phoneverify/internal/testenv"
)

// eventSink is a loopback subscriber that keeps the types of the events it
// received with a valid signature.
type eventSink struct {
	srv    *httptest.Server
	secret string
	mu     sync.Mutex
	types  []string
	bad    int
}

func newEventSink(t *testing.T, secret string) *eventSink {
	s := &eventSink{secret: secret}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := webhook.Verify(s.secret, r.Header, body, time.Now(), 0); err != nil {
			s.bad++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var e struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal(body, &e)
		s.types = append(s.types, e.Type)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *eventSink) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.types)
}

// TestEventsEndToEnd runs a node with PHONEVERIFY_EVENTS_URL and checks
// that a start and a check reach the subscriber, signed, and that the
// subscription and replay API answer. The node's event workers poll only
// hourly: what reaches the subscriber within the test's deadlines does so
// because the engine and the outbox wake them.
func TestEventsEndToEnd(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8G"
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			sink := newEventSink(t, secret)
			env := map[string]string{"PHONEVERIFY_EVENTS_URL": sink.srv.URL, "PHONEVERIFY_EVENTS_SECRET": secret}
			if dialect == "postgres" {
				env["PHONEVERIFY_DATABASE_URL"] = testenv.NewPostgresDatabase(t)
				env["PHONEVERIFY_SECRET"] = testSecret
			}
			box := &inbox{codes: map[string]string{}}
			m, _ := startNode(t, t.TempDir(), env, func(m *Main) { m.Sender, m.eventsPoll = box, time.Hour })

			status, v := call(t, m, "POST", "/v1/verifications", `{"to":"+9779812345678"}`)
			if status != http.StatusCreated {
				t.Fatalf("start: %d %v", status, v)
			}
			code := box.code("+9779812345678")
			// The outbox records message.delivered after the gateway
			// answers, which can be after the code reached the inbox; wait
			// for it so that the order below is the order of the flow, not
			// of a race between the outbox worker and this check.
			waitFor(t, "pending and delivered at the subscriber", 20*time.Second, func() bool { return len(sink.got()) >= 2 })
			status, body := call(t, m, "POST", "/v1/verifications/check", `{"id":"`+v["id"].(string)+`","code":"`+code+`"}`)
			if status != http.StatusOK {
				t.Fatalf("check: %d %v", status, body)
			}
			waitFor(t, "events at the subscriber", 20*time.Second, func() bool { return len(sink.got()) >= 3 })
			got := sink.got()
			if want := []string{"verification.pending", "message.delivered", "verification.approved"}; !slices.Equal(got, want) {
				t.Errorf("subscriber got %v, want %v", got, want)
			}

			status, body = call(t, m, "GET", "/v1/events?verification_id="+v["id"].(string), "")
			if evs, _ := body["events"].([]any); status != http.StatusOK || len(evs) != 3 {
				t.Errorf("GET /v1/events: %d %v", status, body)
			}
			status, body = call(t, m, "GET", "/v1/events?type=nope", "")
			if status != http.StatusBadRequest {
				t.Errorf("GET /v1/events?type=nope: %d %v", status, body)
			}

			status, body = call(t, m, "POST", "/v1/event-subscriptions", `{"url":"https://example.com/hook","types":["verification.approved"]}`)
			if status != http.StatusCreated || len(body["secret"].(string)) < 40 {
				t.Fatalf("create subscription: %d %v", status, body)
			}
			id := body["id"].(string)
			status, body = call(t, m, "GET", "/v1/event-subscriptions", "")
			if subs, _ := body["event_subscriptions"].([]any); status != http.StatusOK || len(subs) != 2 {
				t.Fatalf("list subscriptions: %d %v", status, body)
			}
			if s := body["event_subscriptions"].([]any)[1].(map[string]any); s["secret"] != nil {
				t.Errorf("the list shows a secret: %v", s)
			}
			req, _ := http.NewRequest("DELETE", "http://"+m.Addr()+"/v1/event-subscriptions/"+id, nil)
			req.Header.Set("Authorization", "Bearer "+testKey)
			res, err := http.DefaultClient.Do(req)
			if err != nil || res.StatusCode != http.StatusNoContent {
				t.Fatalf("delete: %v %v", res, err)
			}
			res.Body.Close()
			status, body = call(t, m, "POST", "/v1/event-subscriptions", `{"url":"ftp://x","types":["verification.approved"]}`)
			if status != http.StatusBadRequest {
				t.Errorf("bad url: %d %v", status, body)
			}
			if sink.bad != 0 {
				t.Errorf("%d requests with a bad signature", sink.bad)
			}
		})
	}
}
