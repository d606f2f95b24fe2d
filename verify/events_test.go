package verify_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/internal/testenv"
	"github.com/phoneverify/phoneverify/verify"
)

// events counts the events recorded for the harness's service.
func (h *harness) events(t *testing.T) int {
	t.Helper()
	list, err := h.e.Events(context.Background(), pv.EventFilter{ServiceID: h.svc.ID})
	if err != nil {
		t.Fatal(err)
	}
	return len(list)
}

// TestSubscriptionCache: a subscription created or deleted through the
// engine takes effect on this node at once; one made on another node
// (straight in the store here) once this node's cache entry lapses.
func TestSubscriptionCache(t *testing.T) {
	h := newHarness(t, nil)
	ctx := context.Background()
	wall := testenv.NewClock(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	verify.SetCacheClock(h.e, wall.Now)
	subscribed := func(want bool, when string) {
		t.Helper()
		if got := h.e.Subscribed(ctx, h.svc.ID); got != want {
			t.Fatalf("%s: Subscribed = %v, want %v", when, got, want)
		}
	}

	subscribed(false, "no subscription")
	other := &pv.EventSubscription{ID: "ES00000000000000000000000000000001", ServiceID: h.svc.ID,
		URL: "https://other.example/hook", Types: pv.EventTypes, SealedSecret: []byte("sealed"), CreatedAt: h.clock.Now()}
	if err := h.store.CreateEventSubscription(ctx, other); err != nil {
		t.Fatal(err)
	}
	subscribed(false, "another node subscribed, cached answer")
	wall.Advance(verify.SubscriptionCacheTTL - time.Millisecond)
	subscribed(false, "another node subscribed, just before the TTL")
	wall.Advance(time.Millisecond)
	subscribed(true, "another node subscribed, TTL passed")

	if err := h.e.DeleteEventSubscription(ctx, h.svc.ID, other.ID); err != nil {
		t.Fatal(err)
	}
	subscribed(false, "deleted here")
	h.start(t, verify.StartRequest{To: nepal})
	if n := h.events(t); n != 0 {
		t.Fatalf("%d events recorded after the delete, want 0", n)
	}

	sub, _, err := h.e.CreateEventSubscription(ctx, h.svc.ID, "https://app.example/hook", nil)
	if err != nil {
		t.Fatal(err)
	}
	subscribed(true, "subscribed here")
	h.start(t, verify.StartRequest{To: nepal2})
	if n := h.events(t); n != 1 {
		t.Fatalf("%d events recorded after subscribing here, want 1 (pending)", n)
	}

	if err := h.e.DeleteEventSubscription(ctx, h.svc.ID, sub.ID); err != nil {
		t.Fatal(err)
	}
	subscribed(false, "deleted here again")
}

// pausingEvents holds one HasEventSubscriptions call, once armed, after it
// read the store and until released.
type pausingEvents struct {
	pv.EventStore
	armed   atomic.Bool
	read    chan bool
	release chan struct{}
}

func (p *pausingEvents) HasEventSubscriptions(ctx context.Context, serviceID string) (bool, error) {
	has, err := p.EventStore.HasEventSubscriptions(ctx, serviceID)
	if p.armed.CompareAndSwap(true, false) {
		p.read <- has
		<-p.release
	}
	return has, err
}

// TestSubscriptionDuringLookup: a subscription created here while a
// lookup was reading the store is not hidden by that lookup's stale
// answer.
func TestSubscriptionDuringLookup(t *testing.T) {
	p := &pausingEvents{read: make(chan bool), release: make(chan struct{})}
	h := newHarness(t, nil, func(cfg *verify.Config, _ *testenv.Clock) { p.EventStore = cfg.Store.(pv.EventStore); cfg.Events = p })
	ctx := context.Background()
	wall := testenv.NewClock(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	verify.SetCacheClock(h.e, wall.Now)

	p.armed.Store(true)
	done := make(chan bool)
	go func() { done <- h.e.Subscribed(ctx, h.svc.ID) }()
	if has := <-p.read; has {
		t.Fatal("the lookup found a subscription before any was made")
	}
	if _, _, err := h.e.CreateEventSubscription(ctx, h.svc.ID, "https://app.example/hook", nil); err != nil {
		t.Fatal(err)
	}
	close(p.release)
	<-done // false: it read the store before the subscription
	if !h.e.Subscribed(ctx, h.svc.ID) {
		t.Fatal("Subscribed = false after subscribing here: the stale lookup was cached")
	}
}
