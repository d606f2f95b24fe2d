package router_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/gateway/router"
)

// fake is a gateway whose answer the test sets.
type fake struct {
	name string
	mu   sync.Mutex
	err  error
	sent int
	seen int
}

func (f *fake) Send(context.Context, *pv.Message) (*pv.SendResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen++
	if f.err != nil {
		return nil, f.err
	}
	f.sent++
	return &pv.SendResult{Gateway: f.name, ProviderID: "id"}, nil
}

func (f *fake) set(err error) { f.mu.Lock(); f.err = err; f.mu.Unlock() }
func (f *fake) tries() int    { f.mu.Lock(); defer f.mu.Unlock(); return f.seen }

func TestParseRoutes(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr string
	}{
		{"", 0, ""},
		{"+977=sparrow;NP=sparrow;*=twilio,vonage", 3, ""},
		{" np = sparrow ; * = twilio ", 2, ""},
		{"+977", 0, "want KEY=gateway"},
		{"XX=twilio", 0, "not a calling-code prefix"},
		{"+0=twilio", 0, "a prefix is"},
		{"*=", 0, "names no gateway"},
		{"*=twilio;*=vonage", 0, "given twice"},
		{"NP=twilio,twilio", 0, "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := router.ParseRoutes(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseRoutes(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || len(got) != tt.want {
				t.Fatalf("ParseRoutes(%q) = %d routes, %v; want %d", tt.in, len(got), err, tt.want)
			}
		})
	}
}

func TestRoute(t *testing.T) {
	gws := []router.Gateway{{Name: "twilio", Sender: &fake{}}, {Name: "vonage", Sender: &fake{}}, {Name: "sparrow", Sender: &fake{}}}
	tests := []struct {
		name, routes, to, region, want string
	}{
		{"no routes: every gateway", "", "+14155552671", "US", "twilio,vonage,sparrow"},
		{"prefix", "+977=sparrow;*=twilio", "+9779812345678", "", "sparrow"},
		{"longest prefix first", "+97798=vonage;+977=sparrow", "+9779812345678", "NP", "vonage"},
		{"region", "NP=sparrow;*=twilio,vonage", "+9779812345678", "NP", "sparrow"},
		{"region parsed from the number", "NP=sparrow;*=twilio", "+9779812345678", "", "sparrow"},
		{"default", "NP=sparrow;*=twilio,vonage", "+447700900123", "GB", "twilio,vonage"},
		{"no default: every gateway", "NP=sparrow", "+447700900123", "GB", "twilio,vonage,sparrow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			routes, err := router.ParseRoutes(tt.routes)
			if err != nil {
				t.Fatal(err)
			}
			r, err := router.New(router.Config{Gateways: gws, Routes: routes})
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(r.Route(tt.to, tt.region), ","); got != tt.want {
				t.Errorf("Route(%s, %s) = %s, want %s", tt.to, tt.region, got, tt.want)
			}
		})
	}
}

func TestUnknownGatewayInRoute(t *testing.T) {
	routes, _ := router.ParseRoutes("NP=sparrow;*=twilio")
	_, err := router.New(router.Config{Gateways: []router.Gateway{{Name: "twilio", Sender: &fake{}}}, Routes: routes})
	if err == nil || !strings.Contains(err.Error(), `"sparrow", which is not enabled (enabled: twilio)`) {
		t.Fatalf("New error = %v, want one naming the gateway that is not enabled", err)
	}
}

// TestBreaker walks one gateway's breaker through closed, open, a failed
// probe, a successful probe and closed again, on an injected clock.
func TestBreaker(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a, b := &fake{name: "a"}, &fake{name: "b"}
	r, err := router.New(router.Config{
		Gateways:  []router.Gateway{{Name: "a", Sender: a}, {Name: "b", Sender: b}},
		Threshold: 2, Cooldown: 10 * time.Second, Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	send := func() string {
		t.Helper()
		res, err := r.Send(context.Background(), &pv.Message{To: "+9779812345678", Body: "x"})
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		return res.Gateway
	}
	a.set(&pv.DeliveryError{Gateway: "a", Reason: "503"})
	steps := []struct {
		name      string
		advance   time.Duration
		aUp       bool
		want      string
		wantTries int // of a, in total
	}{
		{"first failure fails over", 0, false, "b", 1},
		{"second failure opens", 0, false, "b", 2},
		{"open: a skipped", 0, false, "b", 2},
		{"after the cooldown one probe, which fails", 11 * time.Second, false, "b", 3},
		{"open again", 0, false, "b", 3},
		{"probe succeeds: traffic returns", 11 * time.Second, true, "a", 4},
		{"closed", 0, true, "a", 5},
	}
	for _, st := range steps {
		now = now.Add(st.advance)
		if st.aUp {
			a.set(nil)
		}
		if got := send(); got != st.want {
			t.Errorf("%s: sent through %s, want %s", st.name, got, st.want)
		}
		if got := a.tries(); got != st.wantTries {
			t.Errorf("%s: a tried %d times, want %d", st.name, got, st.wantTries)
		}
	}
}

func TestSendErrors(t *testing.T) {
	tests := []struct {
		name          string
		aErr          error
		bErr          error
		wantPermanent bool
		wantBTries    int
		wantGateway   string
	}{
		{"bad number: no failover", &pv.DeliveryError{Gateway: "a", Permanent: true, Reason: "invalid number"}, nil, true, 0, "a"},
		{"bad credentials: failover", &pv.DeliveryError{Gateway: "a", Permanent: true, Account: true, Reason: "401"}, nil, false, 1, ""},
		{"all down: temporary", &pv.DeliveryError{Gateway: "a", Reason: "503"}, &pv.DeliveryError{Gateway: "b", Reason: "503"}, false, 1, router.Name},
		{"all refuse credentials: temporary", &pv.DeliveryError{Gateway: "a", Permanent: true, Account: true}, &pv.DeliveryError{Gateway: "b", Permanent: true, Account: true}, false, 1, router.Name},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := &fake{name: "a", err: tt.aErr}, &fake{name: "b", err: tt.bErr}
			r, _ := router.New(router.Config{Gateways: []router.Gateway{{Name: "a", Sender: a}, {Name: "b", Sender: b}}})
			_, err := r.Send(context.Background(), &pv.Message{To: "+9779812345678", Body: "x"})
			if got := b.tries(); got != tt.wantBTries {
				t.Errorf("b tried %d times, want %d", got, tt.wantBTries)
			}
			if tt.wantGateway == "" {
				if err != nil {
					t.Fatalf("Send = %v, want the failover to succeed", err)
				}
				return
			}
			var de *pv.DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("Send error = %v, want a *DeliveryError", err)
			}
			if de.Gateway != tt.wantGateway || pv.IsPermanent(err) != tt.wantPermanent {
				t.Errorf("error from %s permanent=%v, want %s permanent=%v", de.Gateway, pv.IsPermanent(err), tt.wantGateway, tt.wantPermanent)
			}
		})
	}
}

// hanging is a gateway that never answers: it returns only when the
// context it was given ends, as an HTTP gateway does on its deadline.
type hanging struct{ calls chan struct{} }

func (h *hanging) Send(ctx context.Context, _ *pv.Message) (*pv.SendResult, error) {
	h.calls <- struct{}{}
	<-ctx.Done()
	return nil, &pv.DeliveryError{Gateway: "hang", Reason: "timeout", Err: ctx.Err()}
}

// TestGatewayTimeoutFailsOver: a gateway that hangs is given up after
// GatewayTimeout and the next gateway of the route takes the message within
// the same Send, well inside the caller's own deadline.
func TestGatewayTimeoutFailsOver(t *testing.T) {
	t.Parallel()
	hang := &hanging{calls: make(chan struct{}, 1)}
	next := &fake{name: "next"}
	r, err := router.New(router.Config{
		Gateways:       []router.Gateway{{Name: "hang", Sender: hang}, {Name: "next", Sender: next}},
		GatewayTimeout: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	// The caller's deadline is far away: only the gateway's share can end
	// the hanging attempt.
	ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
	defer cancel()
	res, err := r.Send(ctx, &pv.Message{To: "+9779812345678", Country: "NP", Body: "x"})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if res.Gateway != "next" {
		t.Errorf("sent through %q, want next", res.Gateway)
	}
	if got := len(hang.calls); got != 1 {
		t.Errorf("the hanging gateway was tried %d times, want 1", got)
	}
}
