package verify_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/store"
	"github.com/phoneverify/phoneverify/verify"
)

// placeholders turns the ? of query into $1, $2… on PostgreSQL.
func placeholders(st *store.Store, query string) string {
	if st.Dialect() != store.DialectPostgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// TestHammerOneNumber is the concurrency proof for one number: hundreds of
// checks (right and wrong codes, by id and by number) race resends and
// replacing starts while the outbox delivers, on both stores. It asserts
// what a person guessing codes must never get: more compared guesses than
// the attempt limit of a verification (a resend grants none), a second
// approval of one verification, or two pending verifications for the
// number, watched in the database while the hammering runs and after it.
func TestHammerOneNumber(t *testing.T) { forEachStore(t, testHammerOneNumber) }

func testHammerOneNumber(t *testing.T, dbURL string) {
	h := newHarnessOn(t, dbURL, func(s *pv.Service) { s.MaxSends = 1000 })
	ctx := context.Background()
	h.start(t, verify.StartRequest{To: nepal})
	pendingNow := func() int {
		var n int
		err := h.store.DB().QueryRowContext(ctx, placeholders(h.store,
			"SELECT COUNT(*) FROM verifications WHERE service_id = ? AND phone = ? AND status = 'pending'"),
			h.svc.ID, nepal).Scan(&n)
		if err != nil {
			t.Errorf("counting pending verifications: %v", err)
		}
		return n
	}

	var (
		stop       = make(chan struct{})
		background sync.WaitGroup
		maxPending atomic.Int32
		// polls counts the pending-count queries made while hammering.
		polls atomic.Int32
	)
	background.Go(func() { // the outbox's workers: deliver each new code
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond): // a poll, not a wait for luck
			}
			if _, err := h.outbox.Drain(ctx); err != nil {
				t.Errorf("Drain: %v", err)
				return
			}
		}
	})
	background.Go(func() { // the invariant, watched while it is under attack
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond): // a poll, not a wait for luck
			}
			if n := int32(pendingNow()); n > maxPending.Load() {
				maxPending.Store(n)
			}
			polls.Add(1)
		}
	})

	// Rounds of concurrent requests: each round's checks guess with the
	// code and verification the phone last received before it (a third
	// right, the rest wrong), by id and by number, while a tenth of the
	// requests are resends that kill that code; the last round also
	// replaces the verification by a start with other bindings.
	const rounds, perRound = 4, 100
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		outcomes  = map[string]int{} // error code ("" = approved) of each check
		starts    = map[string]int{} // error code ("" = accepted) of each start
		approvals = map[string]int{} // verification id → approving checks
	)
	for round := range rounds {
		h.drain(t)
		last := h.phone.last(t)
		for i := range perRound {
			wg.Go(func() {
				switch {
				case i%10 == 0: // a resend (or, once closed, a new verification)
					req := verify.StartRequest{ServiceID: h.svc.ID, To: nepal}
					if round == rounds-1 && i%20 == 0 { // other bindings: replaces the pending one
						req.Amount = "10.00 EUR"
					}
					_, err := h.e.Start(ctx, req)
					mu.Lock()
					starts[pv.ErrorCode(err)]++
					mu.Unlock()
				default:
					req := verify.CheckRequest{ServiceID: h.svc.ID, Code: wrong(last.Code)}
					if i%3 == 0 {
						req.Code = last.Code
					}
					if i%2 == 0 {
						req.ID = last.VerificationID
					} else {
						req.To = nepal
					}
					res, err := h.e.Check(ctx, req)
					mu.Lock()
					outcomes[pv.ErrorCode(err)]++
					if err == nil {
						approvals[res.Verification.ID]++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	close(stop)
	background.Wait()

	for _, code := range []string{pv.EInternal, pv.EUnavailable} {
		if outcomes[code]+starts[code] > 0 {
			t.Errorf("%d checks and %d starts failed with %s", outcomes[code], starts[code], code)
		}
	}
	rows, err := h.store.DB().QueryContext(ctx, placeholders(h.store,
		"SELECT id, status, attempts, max_attempts FROM verifications WHERE service_id = ? AND phone = ?"),
		h.svc.ID, nepal)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	totalAttempts, verifications, pending := 0, 0, 0
	for rows.Next() {
		var id, status string
		var attempts, maxAttempts int
		if err := rows.Scan(&id, &status, &attempts, &maxAttempts); err != nil {
			t.Fatal(err)
		}
		verifications++
		totalAttempts += attempts
		if attempts > maxAttempts {
			t.Errorf("verification %s: %d attempts recorded, limit %d", id, attempts, maxAttempts)
		}
		if status == string(pv.StatusPending) {
			pending++
		}
		switch n := approvals[id]; {
		case n > 1:
			t.Errorf("verification %s approved by %d checks", id, n)
		case n == 1 && status != string(pv.StatusApproved):
			t.Errorf("verification %s approved by a check but %s in the database", id, status)
		case n == 0 && status == string(pv.StatusApproved):
			t.Errorf("verification %s approved in the database but no check was told so", id)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// Every guess compared against a code is an attempt recorded on the
	// verification it was compared with; no other check compared anything.
	compared := outcomes[""] + outcomes[pv.EIncorrectCode] + outcomes[pv.EForbidden]
	if compared != totalAttempts {
		t.Errorf("%d guesses compared (%v) but %d attempts recorded", compared, outcomes, totalAttempts)
	}
	if compared > verifications*h.svc.MaxAttempts {
		t.Errorf("%d guesses compared over %d verifications of at most %d attempts each", compared, verifications, h.svc.MaxAttempts)
	}
	if pending > 1 || maxPending.Load() > 1 {
		t.Errorf("pending verifications for the number: %d at the end, up to %d while hammering; want at most 1", pending, maxPending.Load())
	}
	if starts[""] == 0 {
		t.Errorf("no start was accepted (%v): the test exercised no resend", starts)
	}
	t.Logf("%d verifications; checks %v; starts %v; %d attempts recorded; pending watched %d times, max %d",
		verifications, outcomes, starts, totalAttempts, polls.Load(), maxPending.Load())
}
