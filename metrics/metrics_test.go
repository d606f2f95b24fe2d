package metrics

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	pv "github.com/phoneverify/phoneverify"
)

func TestObserver(t *testing.T) {
	m := New()
	v := &pv.Verification{ServiceID: "VA1", Country: "NP", Status: pv.StatusPending}
	m.Started(v, false)
	m.Started(v, true)
	m.Checked(v, false)
	m.Checked(&pv.Verification{ServiceID: "VA1", Country: "NP", Status: pv.StatusApproved}, true)
	m.Checked(&pv.Verification{ServiceID: "VA1", Country: "NP", Status: pv.StatusMaxAttemptsReached}, false)
	m.Finished(&pv.Verification{ServiceID: "VA1", Country: "+977", Status: pv.StatusExpired})
	m.Refused("VA1", "per_ip")
	m.Alert("VA1", "budget")
	tests := []struct {
		name string
		got  float64
		want float64
	}{
		{"started", testutil.ToFloat64(m.started.WithLabelValues("VA1", "NP")), 1},
		{"resends", testutil.ToFloat64(m.resends.WithLabelValues("VA1", "NP")), 1},
		{"incorrect", testutil.ToFloat64(m.checks.WithLabelValues("VA1", "incorrect")), 1},
		{"approved", testutil.ToFloat64(m.completed.WithLabelValues("VA1", "NP", "approved")), 1},
		{"max attempts", testutil.ToFloat64(m.completed.WithLabelValues("VA1", "NP", "max_attempts_reached")), 1},
		{"country not ISO is unknown", testutil.ToFloat64(m.completed.WithLabelValues("VA1", "unknown", "expired")), 1},
		{"refused", testutil.ToFloat64(m.refusals.WithLabelValues("VA1", "per_ip")), 1},
		{"alert", testutil.ToFloat64(m.alerts.WithLabelValues("VA1", "budget")), 1},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

type senderFunc func() error

func (f senderFunc) Send(context.Context, *pv.Message) (*pv.SendResult, error) { return nil, f() }

func TestSenderAndOutcomes(t *testing.T) {
	m := New()
	for _, err := range []error{nil, &pv.DeliveryError{Permanent: true}, errors.New("boom")} {
		_, _ = m.Sender("twilio", senderFunc(func() error { return err })).Send(t.Context(), &pv.Message{})
	}
	if got := testutil.CollectAndCount(m.gatewayTime, "phoneverify_gateway_send_duration_seconds"); got != 3 {
		t.Fatalf("%d series, want one per result (ok, permanent_error, temporary_error)", got)
	}
	m.MessageOutcome(pv.MessageOutcome{Status: pv.MessageQueued, Gateway: "twilio"})
	m.MessageOutcome(pv.MessageOutcome{Status: pv.MessageSent, Gateway: "twilio"})
	m.MessageOutcome(pv.MessageOutcome{Status: pv.MessageFailed})
	for _, c := range []struct{ gw, status string }{{"twilio", "retry"}, {"twilio", "sent"}, {"unknown", "failed"}} {
		if got := testutil.ToFloat64(m.messages.WithLabelValues(c.gw, c.status)); got != 1 {
			t.Errorf("messages %s %s = %v", c.gw, c.status, got)
		}
	}
}

func TestMessageReceipt(t *testing.T) {
	m := New()
	m.MessageOutcome(pv.MessageOutcome{Status: pv.MessageSent, Gateway: "twilio"})
	m.MessageReceipt("twilio", pv.MessageDelivered)
	m.MessageReceipt("twilio", pv.MessageDelivered)
	m.MessageReceipt("vonage", pv.MessageUndelivered)
	m.MessageReceipt("vonage", pv.MessageFailed)
	m.MessageReceipt("", pv.MessageFailed)
	m.MessageReceipt("twilio", pv.MessageSent) // not a final status: bounded, never a new value
	tests := []struct {
		gateway, status string
		want            float64
	}{
		{"twilio", "delivered", 2},
		{"vonage", "undelivered", 1},
		{"vonage", "failed", 1},
		{"unknown", "failed", 1},
		{"twilio", "other", 1},
	}
	for _, tt := range tests {
		if got := testutil.ToFloat64(m.receipts.WithLabelValues(tt.gateway, tt.status)); got != tt.want {
			t.Errorf("receipts %s %s = %v, want %v", tt.gateway, tt.status, got, tt.want)
		}
	}
	// Receipts never add to the outbox's outcomes: a delivered message
	// stays one sent message there.
	if got := testutil.CollectAndCount(m.messages, "phoneverify_messages_total"); got != 1 {
		t.Errorf("%d series of messages_total, want 1 (twilio sent)", got)
	}
	if got := testutil.ToFloat64(m.messages.WithLabelValues("twilio", "sent")); got != 1 {
		t.Errorf("messages twilio sent = %v, want 1", got)
	}
	if !strings.Contains(strings.Join(m.Names(), " "), "phoneverify_message_receipts_total") {
		t.Errorf("Names() = %v, without the receipts counter", m.Names())
	}
}

type backlogFunc func() (int, time.Time, error)

func (f backlogFunc) OutboxBacklog(context.Context) (int, time.Time, error) { return f() }

func TestOutboxCollector(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		b    backlogFunc
		want string
	}{
		{"queued", func() (int, time.Time, error) { return 3, now.Add(-90 * time.Second), nil }, `
phoneverify_outbox_backlog_up 1
phoneverify_outbox_oldest_message_age_seconds 90
phoneverify_outbox_queued_messages 3
`},
		{"empty", func() (int, time.Time, error) { return 0, time.Time{}, nil }, `
phoneverify_outbox_backlog_up 1
phoneverify_outbox_oldest_message_age_seconds 0
phoneverify_outbox_queued_messages 0
`},
		{"database down", func() (int, time.Time, error) { return 0, time.Time{}, pv.Errorf(pv.EUnavailable, "down") }, `
phoneverify_outbox_backlog_up 0
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New()
			if err := m.RegisterOutbox(tt.b, func() time.Time { return now }); err != nil {
				t.Fatal(err)
			}
			got := gatherText(t, m)
			var lines []string
			for _, l := range strings.Split(got, "\n") {
				if strings.HasPrefix(l, "phoneverify_outbox_") {
					lines = append(lines, l)
				}
			}
			if g := "\n" + strings.Join(lines, "\n") + "\n"; g != tt.want {
				t.Errorf("got%swant%s", g, tt.want)
			}
		})
	}
}

func gatherText(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

func TestMiddlewareLabelsByPattern(t *testing.T) {
	m := New()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/things/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	mux.HandleFunc("POST /v1/things", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	h := m.Middleware(MuxRoute(mux), mux, nil)
	for _, req := range []*http.Request{
		httptest.NewRequest("GET", "/v1/things/42", nil),
		httptest.NewRequest("GET", "/v1/things/43", nil),
		httptest.NewRequest("POST", "/v1/things", nil),
		httptest.NewRequest("GET", "/v1/secret-path-abc", nil),
	} {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	text := gatherText(t, m)
	for _, want := range []string{
		`phoneverify_http_requests_total{code="418",route="GET /v1/things/{id}"} 2`,
		`phoneverify_http_requests_total{code="200",route="POST /v1/things"} 1`,
		`phoneverify_http_requests_total{code="404",route="unmatched"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %s in\n%s", want, text)
		}
	}
	for _, leak := range []string{"/v1/things/42", "secret-path-abc"} {
		if strings.Contains(text, leak) {
			t.Errorf("raw path %q in the metrics", leak)
		}
	}
}
