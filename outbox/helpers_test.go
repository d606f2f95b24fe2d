package outbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/gateway/webhook"
	"github.com/phoneverify/phoneverify/internal/testenv"
	"github.com/phoneverify/phoneverify/otp"
	"github.com/phoneverify/phoneverify/outbox"
	"github.com/phoneverify/phoneverify/store"
	"github.com/phoneverify/phoneverify/token"
	"github.com/phoneverify/phoneverify/verify"
)

// env is an engine on a real store with the sealer its workers need.
type env struct {
	store  *store.Store
	engine *verify.Engine
	sealer *otp.Sealer
	clock  *testenv.Clock
	svc    *pv.Service
	n      atomic.Int32
}

func newEnv(t testing.TB, url string, tweak func(*pv.Service)) *env {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, url, store.Options{MaxOpenConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	secret := bytes.Repeat([]byte("o"), 32)
	c := testenv.NewClock(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	hasher, _ := otp.NewHasher(secret)
	sealer, _ := otp.NewSealer(secret)
	keys, err := token.NewKeyring(ctx, st, secret, c.Now(), token.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := verify.New(verify.Config{Store: st, Sealer: sealer, Hasher: hasher, Keys: keys, Now: c.Now,
		DefaultRegion: "NP", ServiceCacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	seed := pv.NewService("Example")
	seed.MaxSends = 1000
	if tweak != nil {
		tweak(seed)
	}
	svc, err := e.EnsureDefaultService(ctx, seed)
	if err != nil {
		t.Fatal(err)
	}
	return &env{store: st, engine: e, sealer: sealer, clock: c, svc: svc}
}

// number returns a new valid Nepali mobile number.
func (e *env) number() string { return fmt.Sprintf("+97798%08d", e.n.Add(1)) }

func (e *env) start(t testing.TB, to string) *pv.Verification {
	t.Helper()
	v, err := e.engine.Start(context.Background(), verify.StartRequest{ServiceID: e.svc.ID, To: to})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return v
}

// dispatcher returns a Dispatcher on the env's clock, with no jitter.
func (e *env) dispatcher(t testing.TB, sender pv.Sender, tweak func(*outbox.Config)) *outbox.Dispatcher {
	t.Helper()
	cfg := outbox.Config{Store: e.store, Sender: sender, Sealer: e.sealer, Failer: e.engine, Now: e.clock.Now,
		Rand: func() float64 { return 0 }, SendTimeout: 5 * time.Second, Lease: time.Minute}
	if tweak != nil {
		tweak(&cfg)
	}
	d, err := outbox.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (e *env) drain(t testing.TB, d *outbox.Dispatcher) int {
	t.Helper()
	n, err := d.Drain(context.Background())
	if err != nil {
		t.Fatalf("Drain: %v", err)
	}
	return n
}

func (e *env) status(t testing.TB, id string) pv.Status {
	t.Helper()
	v, err := e.store.Verification(context.Background(), e.svc.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	return v.Status
}

func (e *env) messages(t testing.TB, id string) []*pv.OutboxMessage {
	t.Helper()
	msgs, err := e.store.Messages(context.Background(), e.svc.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// sealedIsNull reads the message's row itself: is its sealed text gone?
func (e *env) sealedIsNull(t testing.TB, messageID string) bool {
	t.Helper()
	var sealed []byte
	if err := e.store.DB().QueryRow(`SELECT sealed FROM outbox WHERE id = $1`, messageID).Scan(&sealed); err != nil {
		t.Fatal(err)
	}
	return sealed == nil
}

// recorder is a Sender that keeps every message and can be told to fail.
type recorder struct {
	mu   sync.Mutex
	msgs []pv.Message
	fail error
}

func (r *recorder) Send(_ context.Context, m *pv.Message) (*pv.SendResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return nil, r.fail
	}
	r.msgs = append(r.msgs, *m)
	return &pv.SendResult{Gateway: "rec", ProviderID: fmt.Sprintf("rec-%d", len(r.msgs))}, nil
}

func (r *recorder) setFail(err error) { r.mu.Lock(); r.fail = err; r.mu.Unlock() }

func (r *recorder) sent() []pv.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]pv.Message(nil), r.msgs...)
}

// fakeGateway is a loopback webhook endpoint standing in for a provider:
// it answers with status() and counts requests and accepted messages.
type fakeGateway struct {
	srv      *httptest.Server
	status   atomic.Int32
	requests atomic.Int32
	mu       sync.Mutex
	accepted map[string]int // verification id → messages accepted
}

func newFakeGateway(t testing.TB) *fakeGateway {
	t.Helper()
	f := &fakeGateway{accepted: map[string]int{}}
	f.status.Store(http.StatusOK)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		var p struct {
			VerificationID string `json:"verification_id"`
		}
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		status := int(f.status.Load())
		if status == http.StatusOK {
			f.mu.Lock()
			f.accepted[p.VerificationID]++
			f.mu.Unlock()
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// sender returns a webhook gateway posting to the fake.
func (f *fakeGateway) sender(t testing.TB) pv.Sender {
	t.Helper()
	s, err := webhook.New(webhook.Config{URL: f.srv.URL, Secret: strings.Repeat("w", 32)}, f.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fakeGateway) acceptedFor(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.accepted[id]
}

func (f *fakeGateway) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.accepted {
		n += c
	}
	return n
}
