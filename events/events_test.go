package events_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/events"
	"github.com/phoneverify/phoneverify/gateway/vonage"
	"github.com/phoneverify/phoneverify/gateway/webhook"
	"github.com/phoneverify/phoneverify/internal/testenv"
	"github.com/phoneverify/phoneverify/otp"
	"github.com/phoneverify/phoneverify/outbox"
	"github.com/phoneverify/phoneverify/receipts"
	"github.com/phoneverify/phoneverify/store"
	"github.com/phoneverify/phoneverify/token"
	"github.com/phoneverify/phoneverify/verify"
)

// verifyStandardWebhook checks a request as a receiver would, written from
// the Standard Webhooks specification alone (not from gateway/webhook): the
// signed content is "{webhook-id}.{webhook-timestamp}.{body}", the key is
// the base64 decoding of the secret after "whsec_", the signature is the
// base64 HMAC-SHA256 prefixed "v1,", and the header may list several
// space-delimited signatures.
func verifyStandardWebhook(secret string, h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing headers")
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("bad timestamp")
	}
	if d := now.Sub(time.Unix(unix, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return errors.New("timestamp out of tolerance")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "." + string(body)))
	want := base64.StdEncoding.EncodeToString(m.Sum(nil))
	for _, s := range strings.Split(sigs, " ") {
		if v, sig, ok := strings.Cut(s, ","); ok && v == "v1" && hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return errors.New("no matching signature")
}

// TestSpecVector checks the independent verifier and the signer against the
// specification's published test vector.
func TestSpecVector(t *testing.T) {
	const (
		secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		id     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		body   = `{"test": 2432232314}`
		want   = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	ts := time.Unix(1614265330, 0)
	got, err := webhook.Sign(secret, id, ts, []byte(body))
	if err != nil || got != want {
		t.Fatalf("Sign = %q, %v; want %q", got, err, want)
	}
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", "v1,bm9wZQ== "+want)
	if err := verifyStandardWebhook(secret, h, []byte(body), ts); err != nil {
		t.Fatalf("independent verifier refuses the vector: %v", err)
	}
}

// received is one request the receiver took.
type received struct {
	ID      string
	Type    string
	VID     string
	Status  string
	Body    string
	Headers http.Header
}

// receiver is a loopback subscriber that verifies every signature and
// answers with the status fail() gives for the nth request.
type receiver struct {
	t      testing.TB
	srv    *httptest.Server
	secret atomic.Value // string
	now    func() time.Time
	fail   atomic.Int32 // answer 500 to this many more requests
	mu     sync.Mutex
	got    []received // accepted (2xx) requests
	calls  int
	// arrived gets each accepted request too, for tests that wait on it.
	arrived chan received
}

func newReceiver(t testing.TB, now func() time.Time) *receiver {
	r := &receiver{t: t, now: now, arrived: make(chan received, 100)}
	r.secret.Store("")
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.calls++
		r.mu.Unlock()
		if err := verifyStandardWebhook(r.secret.Load().(string), req.Header, body, r.now()); err != nil {
			t.Errorf("bad signature on %s: %v", req.Header.Get("webhook-id"), err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.fail.Load() > 0 {
			r.fail.Add(-1)
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		var env struct {
			ID   string `json:"id"`
			Type string `json:"type"`
			Data struct {
				ID             string `json:"id"`
				VerificationID string `json:"verification_id"`
				Status         string `json:"status"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &env); err != nil {
			t.Errorf("payload is not JSON: %v", err)
		}
		vid := env.Data.VerificationID
		if strings.HasPrefix(env.Type, "verification.") {
			vid = env.Data.ID
		}
		if env.ID != req.Header.Get("webhook-id") {
			t.Errorf("payload id %q, webhook-id %q", env.ID, req.Header.Get("webhook-id"))
		}
		got := received{ID: env.ID, Type: env.Type, VID: vid, Status: env.Data.Status, Body: string(body), Headers: req.Header}
		r.mu.Lock()
		r.got = append(r.got, got)
		r.mu.Unlock()
		select {
		case r.arrived <- got:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) received() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// recorder is a Sender that keeps each message's code and can refuse.
type recorder struct {
	mu    sync.Mutex
	codes map[string]string // verification id → last code
	all   []string
	fail  error
	// gateway names the gateway it answers as; default "rec".
	gateway string
}

func (s *recorder) Send(_ context.Context, m *pv.Message) (*pv.SendResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return nil, s.fail
	}
	s.codes[m.VerificationID] = m.Code
	s.all = append(s.all, m.Code)
	gateway := s.gateway
	if gateway == "" {
		gateway = "rec"
	}
	return &pv.SendResult{Gateway: gateway, ProviderID: fmt.Sprintf("rec-%d", len(s.all))}, nil
}

func (s *recorder) code(id string) string { s.mu.Lock(); defer s.mu.Unlock(); return s.codes[id] }
func (s *recorder) setFail(err error)     { s.mu.Lock(); s.fail = err; s.mu.Unlock() }

type env struct {
	store  *store.Store
	engine *verify.Engine
	sealer *otp.Sealer
	clock  *testenv.Clock
	svc    *pv.Service
	sender *recorder
	outbox *outbox.Dispatcher
	n      int
	// wake is the dispatcher the engine and the outbox wake after they
	// record events, if any.
	wake atomic.Pointer[events.Dispatcher]
}

// notifyEvents wakes e.wake's dispatcher, as a node wakes its own.
func (e *env) notifyEvents() {
	if d := e.wake.Load(); d != nil {
		d.Notify()
	}
}

func newEnv(t testing.TB, url string) *env {
	t.Helper()
	en := &env{}
	ctx := context.Background()
	st, err := store.Open(ctx, url, store.Options{MaxOpenConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	secret := bytes.Repeat([]byte("e"), 32)
	c := testenv.NewClock(time.Now().UTC().Truncate(time.Second))
	hasher, _ := otp.NewHasher(secret)
	sealer, _ := otp.NewSealer(secret)
	keys, err := token.NewKeyring(ctx, st, secret, c.Now(), token.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := verify.New(verify.Config{Store: st, Sealer: sealer, Hasher: hasher, Keys: keys, Now: c.Now,
		DefaultRegion: "NP", ServiceCacheTTL: -1, EventsNotify: en.notifyEvents})
	if err != nil {
		t.Fatal(err)
	}
	seed := pv.NewService("Example")
	seed.MaxSends, seed.MaxAttempts, seed.CodeTTL = 1000, 2, time.Minute
	svc, err := e.EnsureDefaultService(ctx, seed)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{codes: map[string]string{}}
	ob, err := outbox.New(outbox.Config{Store: st, Sender: rec, Sealer: sealer, Failer: e, Now: c.Now,
		Rand: func() float64 { return 0 }, SendTimeout: 5 * time.Second, Lease: time.Minute, Subscribed: e.Subscribed,
		EventsNotify: en.notifyEvents})
	if err != nil {
		t.Fatal(err)
	}
	en.store, en.engine, en.sealer, en.clock, en.svc, en.sender, en.outbox = st, e, sealer, c, svc, rec, ob
	return en
}

func (e *env) subscribe(t testing.TB, r *receiver, types ...string) *pv.EventSubscription {
	t.Helper()
	sub, secret, err := e.engine.CreateEventSubscription(context.Background(), e.svc.ID, r.srv.URL, types)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("secret %q lacks whsec_", secret)
	}
	r.secret.Store(secret)
	return sub
}

func (e *env) dispatcher(t testing.TB) *events.Dispatcher {
	t.Helper()
	d, err := events.New(events.Config{Store: e.store, Sealer: e.sealer, Now: e.clock.Now,
		Rand: func() float64 { return 0 }, MinBackoff: time.Second, MaxBackoff: time.Minute, Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// deliverAll runs the dispatcher until nothing is due at the clock's time.
func deliverAll(t testing.TB, d *events.Dispatcher) {
	t.Helper()
	for range 100 {
		n, err := d.RunOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	t.Fatal("deliveries never ran out")
}

func (e *env) start(t testing.TB) *pv.Verification {
	t.Helper()
	e.n++
	v, err := e.engine.Start(context.Background(), verify.StartRequest{ServiceID: e.svc.ID, To: fmt.Sprintf("+97798%08d", e.n)})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (e *env) send(t testing.TB) {
	t.Helper()
	if _, err := e.outbox.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func (e *env) check(t testing.TB, id, code string) error {
	t.Helper()
	_, err := e.engine.Check(context.Background(), verify.CheckRequest{ServiceID: e.svc.ID, ID: id, Code: code})
	return err
}

// TestEveryEventFromRealFlows drives each flow through the engine, the
// outbox and the sweep, and checks that the receiver got every event type,
// signed, without a code in any payload.
func TestEveryEventFromRealFlows(t *testing.T) {
	testenv.ForEachDatabase(t, func(t *testing.T, url string) {
		e := newEnv(t, url)
		r := newReceiver(t, e.clock.Now)
		e.subscribe(t, r)
		ctx := context.Background()

		approved := e.start(t)
		maxed := e.start(t)
		canceled := e.start(t)
		e.send(t) // message.delivered ×3
		if err := e.check(t, approved.ID, e.sender.code(approved.ID)); err != nil {
			t.Fatalf("right code: %v", err)
		}
		wrong := "000000"
		if e.sender.code(maxed.ID) == wrong {
			wrong = "111111"
		}
		for range 2 {
			if err := e.check(t, maxed.ID, wrong); pv.ErrorCode(err) != pv.EIncorrectCode {
				t.Fatalf("wrong code: %v", err)
			}
		}
		if _, err := e.engine.Cancel(ctx, e.svc.ID, canceled.ID); err != nil {
			t.Fatal(err)
		}
		failed := e.start(t)
		e.sender.setFail(&pv.DeliveryError{Gateway: "rec", Permanent: true, Reason: "unreachable destination"})
		e.send(t) // message.failed, verification.failed
		e.sender.setFail(nil)
		expired := e.start(t)
		e.send(t)
		e.clock.Advance(2 * time.Minute)
		if n, err := e.engine.ExpireDue(ctx); err != nil || n == 0 {
			t.Fatalf("ExpireDue = %d, %v", n, err)
		}

		deliverAll(t, e.dispatcher(t))
		got := r.received()
		types := map[string]bool{}
		for _, g := range got {
			types[g.Type] = true
			for _, code := range e.sender.all {
				if strings.Contains(g.Body, `"`+code+`"`) || strings.Contains(g.Body, ":"+code) {
					t.Errorf("%s payload carries a code: %s", g.Type, g.Body)
				}
			}
			if strings.Contains(g.Body, `"code"`) || strings.Contains(g.Body, `"token"`) {
				t.Errorf("%s payload has a code or token field: %s", g.Type, g.Body)
			}
		}
		for _, typ := range pv.EventTypes {
			if !types[string(typ)] {
				t.Errorf("no %s event received", typ)
			}
		}
		want := map[string][]string{
			approved.ID: {"verification.pending", "message.delivered", "verification.approved"},
			maxed.ID:    {"verification.pending", "message.delivered", "verification.max_attempts_reached"},
			canceled.ID: {"verification.pending", "message.delivered", "verification.canceled"},
			failed.ID:   {"verification.pending", "verification.failed", "message.failed"},
			expired.ID:  {"verification.pending", "message.delivered", "verification.expired"},
		}
		for id, w := range want {
			var seq []string
			for _, g := range got {
				if g.VID == id {
					seq = append(seq, g.Type)
				}
			}
			if !slices.Equal(seq, w) {
				t.Errorf("events of %s = %v, want %v", id, seq, w)
			}
		}

		// The replay list has them all, newest first, filterable.
		list, err := e.engine.Events(ctx, pv.EventFilter{ServiceID: e.svc.ID, VerificationID: approved.ID})
		if err != nil || len(list) != 3 || list[0].Type != pv.EventVerificationApproved {
			t.Fatalf("Events(approved) = %d events, %v", len(list), err)
		}
		list, err = e.engine.Events(ctx, pv.EventFilter{ServiceID: e.svc.ID, Type: pv.EventMessageDelivered})
		if err != nil || len(list) != 4 {
			t.Fatalf("Events(message.delivered) = %d events, %v; want 4", len(list), err)
		}
	})
}

// TestRetriesKeepOrder makes the receiver fail, and checks that a
// verification's later event waits for the earlier one, which is retried
// with backoff until the receiver takes it.
func TestRetriesKeepOrder(t *testing.T) {
	testenv.ForEachDatabase(t, func(t *testing.T, url string) {
		e := newEnv(t, url)
		r := newReceiver(t, e.clock.Now)
		e.subscribe(t, r, "verification.pending", "verification.canceled")
		v := e.start(t)
		if _, err := e.engine.Cancel(context.Background(), e.svc.ID, v.ID); err != nil {
			t.Fatal(err)
		}
		d := e.dispatcher(t)
		r.fail.Store(3)
		deliverAll(t, d) // pending fails once; canceled must wait
		if got := r.received(); len(got) != 0 {
			t.Fatalf("received %v while the first event failed", got)
		}
		for i := range 5 {
			e.clock.Advance(time.Duration(1<<i) * time.Second)
			deliverAll(t, d)
		}
		got := r.received()
		if len(got) != 2 || got[0].Type != "verification.pending" || got[1].Type != "verification.canceled" {
			t.Fatalf("received %+v, want pending then canceled", got)
		}
		if r.calls != 5 {
			t.Errorf("receiver called %d times, want 3 failures + 2 deliveries", r.calls)
		}
	})
}

// TestAtLeastOnceAcrossRestart claims deliveries as a node that then dies,
// and checks that a new dispatcher delivers them once the lease ran out.
func TestAtLeastOnceAcrossRestart(t *testing.T) {
	testenv.ForEachDatabase(t, func(t *testing.T, url string) {
		e := newEnv(t, url)
		r := newReceiver(t, e.clock.Now)
		e.subscribe(t, r, "verification.pending")
		e.start(t)
		e.start(t)
		claimed, err := e.store.ClaimEventDeliveries(context.Background(), e.clock.Now(), time.Minute, 10)
		if err != nil || len(claimed) != 2 {
			t.Fatalf("claim = %d, %v", len(claimed), err)
		}
		// The node dies here. A new one sees nothing while the lease runs.
		d := e.dispatcher(t)
		deliverAll(t, d)
		if n := len(r.received()); n != 0 {
			t.Fatalf("delivered %d during the dead node's lease", n)
		}
		e.clock.Advance(time.Minute + time.Second)
		deliverAll(t, d)
		got := r.received()
		if len(got) != 2 {
			t.Fatalf("delivered %d after the lease, want 2", len(got))
		}
		if got[0].ID != claimed[0].Event.ID && got[1].ID != claimed[0].Event.ID {
			t.Errorf("webhook-id changed across tries: %v vs %s", got, claimed[0].Event.ID)
		}
		// The dead node's late outcome is fenced off.
		err = e.store.FinishEventDelivery(context.Background(), claimed[0], pv.DeliveryOutcome{Delivered: true, At: e.clock.Now()})
		if pv.ErrorCode(err) != pv.EConflict {
			t.Errorf("late outcome: %v, want conflict", err)
		}
	})
}

// TestNoSubscriptionNoEvents checks that a service without subscriptions
// records nothing.
func TestNoSubscriptionNoEvents(t *testing.T) {
	testenv.ForEachDatabase(t, func(t *testing.T, url string) {
		e := newEnv(t, url)
		v := e.start(t)
		e.send(t)
		if err := e.check(t, v.ID, e.sender.code(v.ID)); err != nil {
			t.Fatal(err)
		}
		list, err := e.engine.Events(context.Background(), pv.EventFilter{ServiceID: e.svc.ID})
		if err != nil || len(list) != 0 {
			t.Fatalf("Events = %d, %v; want none", len(list), err)
		}
	})
}

// TestReceiptsFireMessageEvents applies delivery receipts as the receipts
// handlers do and checks their events.
func TestReceiptsFireMessageEvents(t *testing.T) {
	testenv.ForEachDatabase(t, func(t *testing.T, url string) {
		e := newEnv(t, url)
		r := newReceiver(t, e.clock.Now)
		e.subscribe(t, r, "message.delivered", "message.failed")
		ctx := context.Background()
		a, b := e.start(t), e.start(t)
		e.send(t)
		provider := func(id string) string {
			msgs, err := e.store.Messages(ctx, e.svc.ID, id)
			if err != nil || len(msgs) != 1 {
				t.Fatalf("messages of %s: %d, %v", id, len(msgs), err)
			}
			return msgs[0].ProviderID
		}
		for _, rc := range []struct {
			id string
			st pv.MessageStatus
		}{{a.ID, pv.MessageDelivered}, {b.ID, pv.MessageUndelivered}} {
			changed, err := e.store.UpdateMessageStatus(ctx, "rec", provider(rc.id), rc.st, "", e.clock.Now())
			if err != nil || !changed {
				t.Fatalf("receipt %s: %v, %v", rc.st, changed, err)
			}
		}
		// A repeated receipt changes nothing and fires nothing.
		if changed, err := e.store.UpdateMessageStatus(ctx, "rec", provider(a.ID), pv.MessageDelivered, "", e.clock.Now()); err != nil || changed {
			t.Fatalf("repeat: %v, %v", changed, err)
		}
		deliverAll(t, e.dispatcher(t))
		var got []string
		for _, g := range r.received() {
			got = append(got, g.Type+" "+g.Status+" "+map[string]string{a.ID: "a", b.ID: "b"}[g.VID])
		}
		slices.Sort(got)
		want := []string{"message.delivered delivered a", "message.delivered sent a", "message.delivered sent b", "message.failed undelivered b"}
		if !slices.Equal(got, want) {
			t.Fatalf("events %v, want %v", got, want)
		}
	})
}

// TestConcurrentDispatchers runs two nodes' dispatchers at once on the
// same deliveries: every event arrives, each verification's in order.
func TestConcurrentDispatchers(t *testing.T) {
	testenv.ForEachDatabase(t, func(t *testing.T, url string) {
		e := newEnv(t, url)
		r := newReceiver(t, e.clock.Now)
		e.subscribe(t, r, "verification.pending", "verification.canceled")
		const n = 20
		for range n {
			v := e.start(t)
			if _, err := e.engine.Cancel(context.Background(), e.svc.ID, v.ID); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		for range 2 {
			d := e.dispatcher(t)
			wg.Go(func() { deliverAll(t, d) })
		}
		wg.Wait()
		deliverAll(t, e.dispatcher(t)) // what one saw blocked behind the other's claims
		seen := map[string][]string{}
		for _, g := range r.received() {
			seen[g.VID] = append(seen[g.VID], g.Type)
		}
		if len(seen) != n {
			t.Fatalf("events of %d verifications, want %d", len(seen), n)
		}
		for id, types := range seen {
			if len(types) < 2 || types[0] != "verification.pending" || types[len(types)-1] != "verification.canceled" {
				t.Errorf("%s: %v, want pending then canceled", id, types)
			}
		}
	})
}

// claimSignal is an event store that reports each finished claim.
type claimSignal struct {
	pv.EventStore
	claimed chan struct{}
}

func (s claimSignal) ClaimEventDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*pv.EventDelivery, error) {
	out, err := s.EventStore.ClaimEventDeliveries(ctx, now, lease, limit)
	select {
	case s.claimed <- struct{}{}:
	default:
	}
	return out, err
}

// TestNotifyWakesWorkers runs a dispatcher whose poll never fires (1h) and
// checks that what this node records reaches the subscriber at once,
// because the engine (start, check, cancel, the expiry sweep), the outbox
// workers and the receipt handler wake the dispatcher.
func TestNotifyWakesWorkers(t *testing.T) {
	testenv.ForEachDatabase(t, func(t *testing.T, url string) {
		e := newEnv(t, url)
		r := newReceiver(t, e.clock.Now)
		e.subscribe(t, r)
		claimed := make(chan struct{}, 1)
		d, err := events.New(events.Config{Store: claimSignal{e.store, claimed}, Sealer: e.sealer, Now: e.clock.Now,
			PollInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		e.wake.Store(d)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		// Run looks once as it starts; past that look, only a wake (or the
		// hour's poll) makes it look again.
		select {
		case <-claimed:
		case <-time.After(20 * time.Second):
			t.Fatal("the dispatcher never claimed")
		}
		expect := func(typ, status string) {
			t.Helper()
			select {
			case got := <-r.arrived:
				if got.Type != typ || got.Status != status {
					t.Fatalf("got %s (%s), want %s (%s)", got.Type, got.Status, typ, status)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("no %s (%s) within 20s: the dispatcher was not woken", typ, status)
			}
		}

		e.sender.mu.Lock()
		e.sender.gateway = vonage.Name
		e.sender.mu.Unlock()
		v := e.start(t)
		expect("verification.pending", "pending")
		e.send(t)
		expect("message.delivered", "sent")
		rh, err := receipts.New(receipts.Config{Store: e.store, Vonage: true, EventsNotify: e.notifyEvents, Now: e.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		if err := rh.Vonage(w, httptest.NewRequest("GET", receipts.VonagePath+"?messageId=rec-1&status=delivered", nil)); err != nil || !strings.Contains(w.Body.String(), "true") {
			t.Fatalf("receipt: %v %s", err, w.Body)
		}
		expect("message.delivered", "delivered")
		if err := e.check(t, v.ID, e.sender.code(v.ID)); err != nil {
			t.Fatal(err)
		}
		expect("verification.approved", "approved")
		canceled := e.start(t)
		expect("verification.pending", "pending")
		if _, err := e.engine.Cancel(context.Background(), e.svc.ID, canceled.ID); err != nil {
			t.Fatal(err)
		}
		expect("verification.canceled", "canceled")
		e.start(t)
		expect("verification.pending", "pending")
		e.clock.Advance(2 * time.Minute)
		if n, err := e.engine.ExpireDue(context.Background()); err != nil || n != 1 {
			t.Fatalf("ExpireDue = %d, %v; want 1", n, err)
		}
		expect("verification.expired", "expired")
	})
}

// TestHeldBackEventsNeedNoWake: an event held back behind an earlier one of
// its verification (deliveries are ordered) is posted as soon as that one
// is, without another wake or poll. Both events here are recorded before the
// workers start, so the one wake they would have had is spent on the first.
func TestHeldBackEventsNeedNoWake(t *testing.T) {
	testenv.ForEachDatabase(t, func(t *testing.T, url string) {
		e := newEnv(t, url)
		r := newReceiver(t, e.clock.Now)
		e.subscribe(t, r)
		e.start(t)
		e.send(t) // pending, then message.delivered, both recorded now
		d, err := events.New(events.Config{Store: e.store, Sealer: e.sealer, Now: e.clock.Now, PollInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		for _, want := range []string{"verification.pending", "message.delivered"} {
			select {
			case got := <-r.arrived:
				if got.Type != want {
					t.Fatalf("got %s, want %s", got.Type, want)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("no %s within 20s: held back, and the workers waited for a poll an hour away", want)
			}
		}
	})
}
