package outbox_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/gateway/router"
	"github.com/phoneverify/phoneverify/internal/testenv"
	"github.com/phoneverify/phoneverify/outbox"
	"github.com/phoneverify/phoneverify/store"
	"github.com/phoneverify/phoneverify/verify"
)

// wait is how long a test waits on a channel before it gives up; nothing
// waits for luck, this only bounds a hang.
const wait = 10 * time.Second

var errKilled = errors.New("node killed")

// killable is a store that stops answering once killed, as if its node had
// died: nothing more is claimed or recorded.
type killable struct {
	pv.Outbox
	killed atomic.Bool
}

func (k *killable) ClaimMessages(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*pv.OutboxMessage, error) {
	if k.killed.Load() {
		return nil, errKilled
	}
	return k.Outbox.ClaimMessages(ctx, now, lease, limit)
}

func (k *killable) FinishMessage(ctx context.Context, m *pv.OutboxMessage, o pv.MessageOutcome) error {
	if k.killed.Load() {
		return errKilled
	}
	return k.Outbox.FinishMessage(ctx, m, o)
}

// blocking is a gateway that takes a message and never answers until the
// send is canceled.
type blocking struct {
	started chan pv.Message
}

func (b *blocking) Send(ctx context.Context, m *pv.Message) (*pv.SendResult, error) {
	b.started <- *m
	<-ctx.Done()
	return nil, &pv.DeliveryError{Gateway: "blocking", Reason: "canceled", Err: ctx.Err()}
}

// TestCrashBetweenClaimAndFinish kills a worker while its send is in
// flight: after the lease, another worker sends the message exactly once
// more, and it is recorded sent and wiped.
func TestCrashBetweenClaimAndFinish(t *testing.T) {
	testenv.ForEachDatabase(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		v := e.start(t, e.number())

		gw := &blocking{started: make(chan pv.Message, 1)}
		dead := &killable{Outbox: e.store}
		d1 := e.dispatcher(t, gw, func(c *outbox.Config) { c.Store = dead })
		ctx, kill := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = d1.Drain(ctx)
		}()
		var first pv.Message
		select {
		case first = <-gw.started:
		case <-time.After(wait):
			t.Fatal("the first worker never sent")
		}
		dead.killed.Store(true)
		kill()
		<-done

		rec := &recorder{}
		d2 := e.dispatcher(t, rec, nil)
		if n := e.drain(t, d2); n != 0 {
			t.Fatalf("a second worker claimed %d messages while the lease ran", n)
		}
		e.clock.Advance(time.Minute + time.Second)
		if n := e.drain(t, d2); n != 1 {
			t.Fatalf("after the lease: claimed %d messages, want 1", n)
		}
		if n := e.drain(t, d2); n != 0 {
			t.Fatalf("claimed %d more messages, want none", n)
		}
		sent := rec.sent()
		if got, want := len(sent), 1; got != want {
			t.Fatalf("sent %d times after the crash, want %d", got, want)
		}
		if sent[0].Code != first.Code || sent[0].VerificationID != v.ID {
			t.Errorf("resent message %s/%s, want the one the crashed worker held", sent[0].VerificationID, sent[0].Code)
		}
		msgs := e.messages(t, v.ID)
		if len(msgs) != 1 || msgs[0].Status != pv.MessageSent || msgs[0].Attempts != 2 {
			t.Fatalf("history %+v, want one message sent on its second claim", msgs[0])
		}
		if !e.sealedIsNull(t, msgs[0].ID) {
			t.Error("the sent message still holds its sealed text")
		}
		if _, err := e.engine.Check(context.Background(), verify.CheckRequest{ServiceID: e.svc.ID, ID: v.ID, Code: sent[0].Code}); err != nil {
			t.Errorf("the resent code does not check: %v", err)
		}
	})
}

// TestGatewayOutage takes gateways down and up behind the router: nothing
// is lost, traffic fails over while the primary is down and returns when it
// recovers; counts are taken at the fake gateways.
func TestGatewayOutage(t *testing.T) {
	testenv.ForEachDatabase(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		primary, secondary := newFakeGateway(t), newFakeGateway(t)
		r, err := router.New(router.Config{
			Gateways:  []router.Gateway{{Name: "primary", Sender: primary.sender(t)}, {Name: "secondary", Sender: secondary.sender(t)}},
			Threshold: 2, Cooldown: 30 * time.Second, Now: e.clock.Now,
		})
		if err != nil {
			t.Fatal(err)
		}
		// One worker, so that the breakers see the failures in a known order.
		d := e.dispatcher(t, r, func(c *outbox.Config) { c.Workers = 1 })
		var ids []string
		startN := func(n int) {
			for range n {
				ids = append(ids, e.start(t, e.number()).ID)
			}
		}

		// Both down: every message stays queued, to be retried.
		primary.status.Store(http.StatusServiceUnavailable)
		secondary.status.Store(http.StatusServiceUnavailable)
		startN(3)
		e.drain(t, d)
		for _, id := range ids {
			msgs := e.messages(t, id)
			if e.status(t, id) != pv.StatusPending || msgs[0].Status != pv.MessageQueued || msgs[0].Error == "" {
				t.Fatalf("during the outage: %s with message %+v, want pending and queued with the error", e.status(t, id), msgs[0])
			}
		}

		// The secondary recovers: retries fail over to it; new messages skip
		// the primary while its breaker is open.
		secondary.status.Store(http.StatusOK)
		e.clock.Advance(31 * time.Second)
		e.drain(t, d)
		startN(5)
		e.drain(t, d)
		if got, want := secondary.total(), 8; got != want {
			t.Fatalf("secondary accepted %d messages, want %d", got, want)
		}
		// 2 failures opened the breaker, 1 half-open probe failed.
		if got, want := int(primary.requests.Load()), 3; got != want {
			t.Errorf("primary was tried %d times while down, want %d", got, want)
		}

		// The primary recovers: after the cooldown a probe succeeds and
		// traffic returns to it.
		primary.status.Store(http.StatusOK)
		e.clock.Advance(31 * time.Second)
		startN(4)
		e.drain(t, d)
		if got, want := primary.total(), 4; got != want {
			t.Errorf("primary accepted %d messages after recovering, want %d", got, want)
		}
		for _, id := range ids {
			if got := primary.acceptedFor(id) + secondary.acceptedFor(id); got != 1 {
				t.Errorf("verification %s: %d messages accepted, want exactly 1", id, got)
			}
			msgs := e.messages(t, id)
			if len(msgs) != 1 || msgs[0].Status != pv.MessageSent || !e.sealedIsNull(t, msgs[0].ID) {
				t.Errorf("verification %s: history %+v, want one sent message, wiped", id, msgs[0])
			}
		}
	})
}

// TestRefusals: a refusal about the number fails the verification without
// failover; one about the gateway's account fails over.
func TestRefusals(t *testing.T) {
	tests := []struct {
		name          string
		primaryStatus int
		wantStatus    pv.Status
		wantMessage   pv.MessageStatus
		wantSecondary int
	}{
		{"bad number", http.StatusBadRequest, pv.StatusFailed, pv.MessageFailed, 0},
		{"bad credentials", http.StatusUnauthorized, pv.StatusPending, pv.MessageSent, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testenv.ForEachDatabase(t, func(t *testing.T, url string) {
				e := newEnv(t, url, nil)
				primary, secondary := newFakeGateway(t), newFakeGateway(t)
				primary.status.Store(int32(tt.primaryStatus))
				r, err := router.New(router.Config{Gateways: []router.Gateway{
					{Name: "primary", Sender: primary.sender(t)}, {Name: "secondary", Sender: secondary.sender(t)}}})
				if err != nil {
					t.Fatal(err)
				}
				d := e.dispatcher(t, r, nil)
				v := e.start(t, e.number())
				e.drain(t, d)
				if got, want := e.status(t, v.ID), tt.wantStatus; got != want {
					t.Errorf("verification status = %s, want %s", got, want)
				}
				msgs := e.messages(t, v.ID)
				if got, want := msgs[0].Status, tt.wantMessage; got != want {
					t.Errorf("message status = %s (%s), want %s", got, msgs[0].Error, want)
				}
				if !e.sealedIsNull(t, msgs[0].ID) {
					t.Error("the message still holds its sealed text")
				}
				if got, want := secondary.total(), tt.wantSecondary; got != want {
					t.Errorf("secondary accepted %d, want %d", got, want)
				}
			})
		})
	}
}

// TestAbandonAfterLifetime: a message that cannot go out within its
// verification's lifetime is given up, wiped, and its verification failed.
func TestAbandonAfterLifetime(t *testing.T) {
	tests := []struct {
		name string
		// down keeps the gateway failing; otherwise the workers are away
		// for the whole lifetime.
		down bool
	}{
		{"retries run out", true},
		{"workers away", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testenv.ForEachDatabase(t, func(t *testing.T, url string) {
				e := newEnv(t, url, func(s *pv.Service) { s.CodeTTL = time.Minute })
				rec := &recorder{}
				d := e.dispatcher(t, rec, nil)
				v := e.start(t, e.number())
				if tt.down {
					rec.setFail(&pv.DeliveryError{Gateway: "rec", Reason: "503"})
					for i := 0; i < 100 && e.messages(t, v.ID)[0].Status == pv.MessageQueued; i++ {
						e.drain(t, d)
						e.clock.Advance(5 * time.Second)
					}
				} else {
					e.clock.Advance(time.Minute)
					e.drain(t, d)
				}
				if !e.clock.Now().Before(v.ExpiresAt.Add(10 * time.Second)) {
					t.Errorf("given up at %s, want by the end of the lifetime %s", e.clock.Now(), v.ExpiresAt)
				}
				msgs := e.messages(t, v.ID)
				if msgs[0].Status != pv.MessageFailed || !strings.Contains(msgs[0].Error, "lifetime") {
					t.Fatalf("message %+v, want failed for the lifetime", msgs[0])
				}
				if tt.down && msgs[0].Attempts < 3 {
					t.Errorf("given up after %d tries, want it retried", msgs[0].Attempts)
				}
				if got, want := e.status(t, v.ID), pv.StatusFailed; got != want {
					t.Errorf("verification status = %s, want %s", got, want)
				}
				if !e.sealedIsNull(t, msgs[0].ID) {
					t.Error("the abandoned message still holds its sealed text")
				}
				if len(rec.sent()) != 0 {
					t.Error("a message went out")
				}
			})
		})
	}
}

// TestMessageWipedAfterSend reads the row (and, on SQLite, the database
// files): the code is never there in clear, and the sealed text is gone
// once the message is sent.
func TestMessageWipedAfterSend(t *testing.T) {
	testenv.ForEachDatabase(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		v := e.start(t, e.number())
		msgs := e.messages(t, v.ID)
		if e.sealedIsNull(t, msgs[0].ID) {
			t.Fatal("a queued message holds no sealed text")
		}
		files := func() []byte {
			path, ok := store.SQLitePath(url)
			if !ok {
				return nil
			}
			var all []byte
			for _, p := range []string{path, path + "-wal"} {
				b, err := os.ReadFile(p)
				if err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
				all = append(all, b...)
			}
			return all
		}
		before := files()
		rec := &recorder{}
		e.drain(t, e.dispatcher(t, rec, nil))
		sent := rec.sent()
		if len(sent) != 1 {
			t.Fatalf("sent %d messages, want 1", len(sent))
		}
		for name, b := range map[string][]byte{"before sending": before, "after sending": files()} {
			if strings.Contains(string(b), sent[0].Body) {
				t.Errorf("the database files hold the message text in clear %s", name)
			}
		}
		if !e.sealedIsNull(t, msgs[0].ID) {
			t.Error("the sent message still holds its sealed text")
		}
	})
}

// TestDeadCodesNotSent: a message whose code a resend replaced, or whose
// verification was canceled, before it went out is given up unsent.
func TestDeadCodesNotSent(t *testing.T) {
	testenv.ForEachDatabase(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		to := e.number()
		v := e.start(t, to)
		e.start(t, to) // resend: a new code
		other := e.start(t, e.number())
		if _, err := e.engine.Cancel(context.Background(), e.svc.ID, other.ID); err != nil {
			t.Fatal(err)
		}
		rec := &recorder{}
		e.drain(t, e.dispatcher(t, rec, nil))
		sent := rec.sent()
		if len(sent) != 1 || sent[0].VerificationID != v.ID {
			t.Fatalf("sent %d messages, want only the resent code", len(sent))
		}
		msgs := e.messages(t, v.ID)
		if len(msgs) != 2 || msgs[0].Status != pv.MessageFailed || msgs[1].Status != pv.MessageSent {
			t.Errorf("history: %s then %s, want failed (superseded) then sent", msgs[0].Status, msgs[1].Status)
		}
		if got := e.messages(t, other.ID)[0]; got.Status != pv.MessageFailed || !strings.Contains(got.Error, "canceled") {
			t.Errorf("canceled verification's message: %s %q, want failed as canceled", got.Status, got.Error)
		}
		if got, want := e.status(t, v.ID), pv.StatusPending; got != want {
			t.Errorf("resent verification is %s, want %s", got, want)
		}
	})
}

// gate is a gateway that reports each message and holds it until released.
type gate struct {
	got     chan string
	release chan struct{}
}

func (g *gate) Send(_ context.Context, m *pv.Message) (*pv.SendResult, error) {
	g.got <- m.VerificationID
	<-g.release
	return &pv.SendResult{Gateway: "gate", ProviderID: "p-" + m.VerificationID}, nil
}

// TestRunWakesAndStopsGracefully: with polling far off, a notified worker
// sends at once; stopping lets the send in flight finish and be recorded.
func TestRunWakesAndStopsGracefully(t *testing.T) {
	testenv.ForEachDatabase(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		g := &gate{got: make(chan string), release: make(chan struct{})}
		d := e.dispatcher(t, g, func(c *outbox.Config) { c.PollInterval = time.Hour })
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx) }()

		receive := func(want string) {
			t.Helper()
			select {
			case got := <-g.got:
				if got != want {
					t.Fatalf("sent %s, want %s", got, want)
				}
			case <-time.After(wait):
				t.Fatalf("message for %s never sent", want)
			}
		}
		for range 2 {
			v := e.start(t, e.number())
			d.Notify()
			receive(v.ID)
			g.release <- struct{}{}
		}
		v := e.start(t, e.number())
		d.Notify()
		receive(v.ID)
		stop()
		select {
		case <-done:
			t.Fatal("Run returned with a send in flight")
		default:
		}
		close(g.release)
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run = %v", err)
			}
		case <-time.After(wait):
			t.Fatal("Run did not return after the send finished")
		}
		if msgs := e.messages(t, v.ID); msgs[0].Status != pv.MessageSent || msgs[0].ProviderID != "p-"+v.ID {
			t.Errorf("in-flight message recorded as %+v, want sent", msgs[0])
		}
	})
}

// TestConcurrentClaims runs two nodes' workers on one database: every
// message goes out exactly once.
func TestConcurrentClaims(t *testing.T) {
	testenv.ForEachDatabase(t, func(t *testing.T, url string) {
		e := newEnv(t, url, nil)
		other, err := store.Open(context.Background(), url, store.Options{MaxOpenConns: 8})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { other.Close() })
		const n = 60
		for range n {
			e.start(t, e.number())
		}
		rec := &recorder{}
		d1 := e.dispatcher(t, rec, func(c *outbox.Config) { c.Workers = 3 })
		d2 := e.dispatcher(t, rec, func(c *outbox.Config) { c.Workers = 3; c.Store = other })
		var wg sync.WaitGroup
		for _, d := range []*outbox.Dispatcher{d1, d2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := d.Drain(context.Background()); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		seen := map[string]int{}
		for _, m := range rec.sent() {
			seen[m.VerificationID]++
		}
		if len(seen) != n {
			t.Errorf("%d verifications got a message, want %d", len(seen), n)
		}
		for id, c := range seen {
			if c != 1 {
				t.Errorf("verification %s got %d messages, want 1", id, c)
			}
		}
	})
}
