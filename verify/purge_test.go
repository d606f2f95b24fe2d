package verify_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/fraud"
	"github.com/phoneverify/phoneverify/verify"
)

func (h *harness) rows(t *testing.T, table string) int {
	t.Helper()
	var n int
	if err := h.store.DB().QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPurge keeps what is younger than the retention and fraud
// protection's conversion counts, and deletes the rest.
func TestPurge(t *testing.T) { forEachStore(t, testPurge) }

func testPurge(t *testing.T, dbURL string) {
	h := newFraudHarness(t, dbURL, pv.FraudBlock)
	ctx := context.Background()
	// 40 days ago: 30 real users of +977981 convert, 10 do not; 25
	// unconverted sends to +998901 trip its block.
	var old []string
	for i := range 40 {
		v := h.start(t, verify.StartRequest{To: fmt.Sprintf("+97798100%05d", i), CustomCode: simCode, ClientIP: "192.0.2.1"})
		old = append(old, v.ID)
		if i < 30 {
			if _, err := h.check(verify.CheckRequest{ID: v.ID, Code: simCode}); err != nil {
				t.Fatal(err)
			}
		}
		h.clock.Advance(2 * time.Hour)
	}
	attack(h, "+998901", 25, rotatingIP)
	h.drain(t)
	h.clock.Advance(40 * 24 * time.Hour)
	recent := h.start(t, verify.StartRequest{To: "+9779811234567", CustomCode: simCode})
	before := historyOf(t, h, "+977981")

	res, err := h.store.Purge(ctx, h.clock.Now().Add(-30*24*time.Hour), h.clock.Now().Add(-fraud.MaxWindow-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if res.Verifications != 60 || res.Messages != 60 || res.Attempts != 60 || res.Decisions != 5 || res.IPCounters == 0 || res.CountersRolledUp == 0 {
		t.Errorf("purge result %+v: want 60 verifications, messages and attempts, 5 decisions, some address counters and rolled-up counters", res)
	}
	for _, id := range old[:3] {
		if _, err := h.e.Get(ctx, h.svc.ID, id); pv.ErrorCode(err) != pv.ENotFound {
			t.Errorf("old verification %s: %v, want not found", id, err)
		}
	}
	if _, err := h.e.Get(ctx, h.svc.ID, recent.ID); err != nil {
		t.Errorf("recent verification: %v", err)
	}
	if got := h.rows(t, "verifications"); got != 1 {
		t.Errorf("verifications left = %d, want 1", got)
	}
	if got := h.rows(t, "fraud_counts WHERE scope IN ('ip', 'ipc')"); got != 0 {
		t.Errorf("per-address counters left = %d, want 0", got)
	}
	// The conversion history survives, folded into daily rows.
	if after := historyOf(t, h, "+977981"); after != before || after.Conversions != 30 {
		t.Errorf("history of +977981 after the purge = %+v, before %+v, want 30 conversions kept", after, before)
	}
	// The purged number can start again, and a second purge finds nothing.
	h.start(t, verify.StartRequest{To: "+9779810000000", CustomCode: simCode})
	again, err := h.store.Purge(ctx, h.clock.Now().Add(-30*24*time.Hour), h.clock.Now().Add(-fraud.MaxWindow-24*time.Hour))
	if err != nil || *again != (pv.PurgeResult{}) {
		t.Errorf("second purge = %+v, %v; want nothing", again, err)
	}
}

// historyOf returns a prefix's counters over all time.
func historyOf(t *testing.T, h *harness, prefix string) pv.FraudCounts {
	t.Helper()
	st, err := h.store.FraudState(context.Background(), pv.FraudQuery{ServiceID: h.svc.ID, Prefix: prefix,
		Since: h.clock.Now(), HistorySince: time.Unix(0, 0), Now: h.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return st.PrefixHistory
}

// TestPurgeEvents deletes the events older than the cutoff with their
// deliveries, pending or not, in the purge's transaction, and keeps a
// recent event and its pending delivery, still deliverable.
func TestPurgeEvents(t *testing.T) { forEachStore(t, testPurgeEvents) }

func testPurgeEvents(t *testing.T, dbURL string) {
	h := newHarnessOn(t, dbURL, nil)
	ctx := context.Background()
	if _, _, err := h.e.CreateEventSubscription(ctx, h.svc.ID, "https://app.example/hooks", nil); err != nil {
		t.Fatal(err)
	}
	old := h.start(t, verify.StartRequest{To: nepal})
	if _, err := h.e.Cancel(ctx, h.svc.ID, old.ID); err != nil {
		t.Fatal(err)
	}
	// One old delivery was made, one is still pending: both go.
	delivered, err := h.store.ClaimEventDeliveries(ctx, h.clock.Now(), time.Minute, 1)
	if err != nil || len(delivered) != 1 {
		t.Fatalf("claim = %d, %v", len(delivered), err)
	}
	if err := h.store.FinishEventDelivery(ctx, delivered[0], pv.DeliveryOutcome{Delivered: true, At: h.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(31 * 24 * time.Hour)
	recent := h.start(t, verify.StartRequest{To: nepal2})
	if got := h.rows(t, "event_deliveries WHERE status = 'pending'"); got != 2 {
		t.Fatalf("pending deliveries before the purge = %d, want 2", got)
	}

	cutoff := h.clock.Now().Add(-30 * 24 * time.Hour)
	res, err := h.store.Purge(ctx, cutoff, h.clock.Now().Add(-fraud.MaxWindow-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != 2 || res.Verifications != 1 {
		t.Errorf("purge result %+v: want 2 events and 1 verification", res)
	}
	if got := h.rows(t, "events WHERE verification_id = '"+old.ID+"'"); got != 0 {
		t.Errorf("old events left = %d, want 0", got)
	}
	if got := h.rows(t, "event_deliveries WHERE verification_id = '"+old.ID+"'"); got != 0 {
		t.Errorf("old deliveries left = %d, want 0", got)
	}
	list, err := h.e.Events(ctx, pv.EventFilter{ServiceID: h.svc.ID})
	if err != nil || len(list) != 1 || list[0].VerificationID != recent.ID || list[0].Type != pv.EventVerificationPending {
		t.Fatalf("events after the purge = %v, %v; want the recent start's pending", list, err)
	}
	due, err := h.store.ClaimEventDeliveries(ctx, h.clock.Now(), time.Minute, 10)
	if err != nil || len(due) != 1 || due[0].Event.ID != list[0].ID {
		t.Fatalf("claim after the purge = %v, %v; want the recent event's delivery", due, err)
	}
	again, err := h.store.Purge(ctx, cutoff, h.clock.Now().Add(-fraud.MaxWindow-24*time.Hour))
	if err != nil || again.Events != 0 {
		t.Errorf("second purge = %+v, %v; want no event", again, err)
	}
}
