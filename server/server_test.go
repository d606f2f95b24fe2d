package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/events"
	pvlog "github.com/phoneverify/phoneverify/gateway/log"
	"github.com/phoneverify/phoneverify/otp"
	"github.com/phoneverify/phoneverify/server"
	"github.com/phoneverify/phoneverify/store"
	"github.com/phoneverify/phoneverify/verify"
)

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

// TestEngineWakesEventWorkers: with event workers that poll only hourly,
// a start and a check reach a subscriber at once, because the server wires
// the engine to wake them.
func TestEngineWakesEventWorkers(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "verify.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	secret := []byte("a test secret of at least 32 bytes")
	srv, err := server.New(ctx, server.Config{Store: st, Secret: secret, Sender: pvlog.New(io.Discard),
		TestNumbers: map[string]string{"+15005550006": "123456"}})
	if err != nil {
		t.Fatal(err)
	}
	// The same workers, polling hourly and telling each claim.
	sealer, err := otp.NewSealer(secret)
	if err != nil {
		t.Fatal(err)
	}
	claimed := make(chan struct{}, 1)
	srv.Events, err = events.New(events.Config{Store: claimSignal{st, claimed}, Sealer: sealer, PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}

	arrived := make(chan string, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e struct {
			Type string `json:"type"`
		}
		_ = json.NewDecoder(r.Body).Decode(&e)
		arrived <- e.Type
	}))
	t.Cleanup(hook.Close)
	if _, _, err := srv.Engine.CreateEventSubscription(ctx, srv.DefaultService.ID, hook.URL, nil); err != nil {
		t.Fatal(err)
	}

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- srv.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	select { // Run's first look; past it, only a wake makes the workers look again
	case <-claimed:
	case <-time.After(20 * time.Second):
		t.Fatal("the event workers never claimed")
	}
	expect := func(want string) {
		t.Helper()
		select {
		case got := <-arrived:
			if got != want {
				t.Fatalf("got %s, want %s", got, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no %s within 20s: the event workers were not woken", want)
		}
	}
	v, err := srv.Engine.Start(ctx, verify.StartRequest{ServiceID: srv.DefaultService.ID, To: "+15005550006"})
	if err != nil {
		t.Fatal(err)
	}
	expect("verification.pending")
	if _, err := srv.Engine.Check(ctx, verify.CheckRequest{ServiceID: srv.DefaultService.ID, ID: v.ID, Code: "123456"}); err != nil {
		t.Fatal(err)
	}
	expect("verification.approved")
}
