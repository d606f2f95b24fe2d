package store

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/internal/testenv"
)

// mustPostgres opens and migrates a fresh PostgreSQL database.
func mustPostgres(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), testenv.NewPostgresDatabase(t), Options{MaxOpenConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

func batchTestService(t *testing.T, s *Store) *phoneverify.Service {
	t.Helper()
	svc := phoneverify.NewService("batch")
	svc.ID = "VA" + rand.Text()
	svc.CreatedAt, svc.UpdatedAt = time.Now(), time.Now()
	if err := s.CreateService(t.Context(), svc); err != nil {
		t.Fatal(err)
	}
	return svc
}

func batchTestVerification(svc *phoneverify.Service, serviceID, phone string) *phoneverify.Verification {
	now := time.Now()
	return &phoneverify.Verification{ID: "VE" + rand.Text(), ServiceID: serviceID, To: phone, Country: "NP",
		Channel: phoneverify.ChannelSMS, Status: phoneverify.StatusPending, SendCount: 1, MaxAttempts: svc.MaxAttempts,
		CodeHash: []byte{1, 2, 3}, ExpiresAt: now.Add(time.Minute), CreatedAt: now, UpdatedAt: now}
}

// TestPGBatchIsolatesFailures runs a batch in which one write fails (a start
// for a service that does not exist): the batch's implicit transaction
// rolls back, every operation in it is retried, and each ends as it would
// alone.
func TestPGBatchIsolatesFailures(t *testing.T) {
	t.Parallel()
	s := mustPostgres(t)
	svc := batchTestService(t, s)
	ops := make([]*startOp, 0, 9)
	for i := range cap(ops) {
		serviceID := svc.ID
		if i == 4 {
			serviceID = "VAnosuchservice"
		}
		v := batchTestVerification(svc, serviceID, fmt.Sprintf("+97798000001%02d", i))
		ops = append(ops, &startOp{
			optimistic: optimistic{op: "start verification"},
			key:        phoneverify.NumberKey{ServiceID: serviceID, Phone: v.To},
			decide: func(st *phoneverify.StartState) (*phoneverify.StartResult, error) {
				return &phoneverify.StartResult{Save: v, Sends: []time.Time{v.CreatedAt}}, nil
			},
		})
	}
	// One batch, run directly.
	batch := make([]*pgReq, len(ops))
	for i, op := range ops {
		batch[i] = &pgReq{op: op, result: make(chan any, 1)}
	}
	s.batch.run(batch)
	for i, op := range ops {
		if got, want := op.outcome, outcomeRetry; got != want || !op.done {
			t.Errorf("op %d in the aborted batch: outcome %d (done %v), want %d", i, got, op.done, want)
		}
	}
	// Through the store, each ends as alone: saved, or not found.
	var wg sync.WaitGroup
	errs := make([]error, len(ops))
	for i, op := range ops {
		wg.Go(func() {
			_, errs[i] = s.StartVerification(context.Background(), op.key, op.decide)
		})
	}
	wg.Wait()
	for i, err := range errs {
		want := ""
		if i == 4 {
			want = phoneverify.ENotFound
		}
		if got := phoneverify.ErrorCode(err); got != want {
			t.Errorf("start %d: code %q (%v), want %q", i, got, err, want)
		}
	}
}

// TestPGBatchSharesRoundTrips runs many starts and checks at once and
// checks every outcome: what batching changes is only how many round trips
// they take.
func TestPGBatchSharesRoundTrips(t *testing.T) {
	t.Parallel()
	s := mustPostgres(t)
	svc := batchTestService(t, s)
	const n = 64
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Go(func() {
			v := batchTestVerification(svc, svc.ID, fmt.Sprintf("+97798000002%02d", i))
			got, err := s.StartVerification(context.Background(), phoneverify.NumberKey{ServiceID: svc.ID, Phone: v.To},
				func(st *phoneverify.StartState) (*phoneverify.StartResult, error) {
					if st.Latest != nil {
						return nil, fmt.Errorf("start %d: a fresh number has a latest verification", i)
					}
					return &phoneverify.StartResult{Save: v, Sends: []time.Time{v.CreatedAt}}, nil
				})
			if err != nil {
				errs <- err
				return
			}
			ids[i] = got.ID
		})
	}
	wg.Wait()
	for i := range n {
		wg.Go(func() {
			got, err := s.UpdateVerification(context.Background(), phoneverify.VerificationRef{ServiceID: svc.ID, ID: ids[i]},
				func(v *phoneverify.Verification) (*phoneverify.Update, error) {
					v.Attempts++
					if i%2 == 0 {
						v.Status = phoneverify.StatusApproved
						return &phoneverify.Update{Save: true, Register: &phoneverify.VerifiedPhone{ServiceID: svc.ID,
							Subject: fmt.Sprint("user-", i), Phone: v.To, VerificationID: v.ID, VerifiedAt: time.Now()}}, nil
					}
					return &phoneverify.Update{Save: true}, nil
				})
			if err != nil {
				errs <- err
			} else if got.Attempts != 1 {
				errs <- fmt.Errorf("check %d: %d attempts, want 1", i, got.Attempts)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for i := range n {
		v, err := s.Verification(t.Context(), svc.ID, ids[i])
		if err != nil {
			t.Fatal(err)
		}
		want := phoneverify.StatusPending
		if i%2 == 0 {
			want = phoneverify.StatusApproved
			if _, err := s.VerifiedPhone(t.Context(), svc.ID, fmt.Sprint("user-", i)); err != nil {
				t.Errorf("registry entry %d: %v", i, err)
			}
		}
		if v.Status != want || v.Attempts != 1 {
			t.Errorf("verification %d: status %s, %d attempts; want %s, 1", i, v.Status, v.Attempts, want)
		}
	}
}

// TestPGBatchTimeout stalls the connection to PostgreSQL without closing
// it, as a network partition does: operations fail EUnavailable within the
// batch deadline instead of hanging, and succeed again once it flows.
func TestPGBatchTimeout(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(testenv.NewPostgresDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewProxy(t, u.Host)
	u.Host = proxy.Addr()
	s, err := Open(t.Context(), u.String(), Options{MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	s.batch.timeout = 300 * time.Millisecond
	svc := batchTestService(t, s)
	start := func(phone string) error {
		v := batchTestVerification(svc, svc.ID, phone)
		_, err := s.StartVerification(context.Background(), phoneverify.NumberKey{ServiceID: svc.ID, Phone: phone},
			func(st *phoneverify.StartState) (*phoneverify.StartResult, error) {
				return &phoneverify.StartResult{Save: v, Sends: []time.Time{v.CreatedAt}}, nil
			})
		return err
	}
	if err := start("+9779800000301"); err != nil {
		t.Fatalf("before the stall: %v", err)
	}
	proxy.Stall()
	began := time.Now()
	err = start("+9779800000302")
	if got, want := phoneverify.ErrorCode(err), phoneverify.EUnavailable; got != want {
		t.Errorf("during the stall: code %q (%v), want %q", got, err, want)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("during the stall: answered after %s, want about the batch deadline", d)
	}
	proxy.Restore()
	// The stalled connection was dropped: the next batch dials a new one,
	// which on a loaded machine can take longer than the short deadline.
	s.batch.timeout = pgBatchTimeout
	if err := start("+9779800000303"); err != nil {
		t.Errorf("after the stall: %v", err)
	}
}

// TestPGOptimisticStartQueuesMessage checks that the optimistic start
// writes a start's outbox message and send-attempt record in its own
// statement — with no fall-back to the locking path — and that concurrent
// resends that lose their swap write neither: every message and attempt
// left belongs to a resend that was saved.
func TestPGOptimisticStartQueuesMessage(t *testing.T) {
	t.Parallel()
	s := mustPostgres(t)
	svc := batchTestService(t, s)
	ctx := t.Context()
	const phone = "+9779800000200"
	key := phoneverify.NumberKey{ServiceID: svc.ID, Phone: phone}
	decide := func(st *phoneverify.StartState) (*phoneverify.StartResult, error) {
		next := batchTestVerification(svc, svc.ID, phone)
		if st.Latest != nil {
			next = st.Latest
			next.SendCount++
		}
		now := time.Now()
		m := &phoneverify.OutboxMessage{ID: "MS" + rand.Text(), VerificationID: next.ID, ServiceID: svc.ID,
			To: phone, Country: "NP", SendCount: next.SendCount, Sealed: []byte{9}, Status: phoneverify.MessageQueued,
			DueAt: now, ExpiresAt: next.ExpiresAt, CreatedAt: now, UpdatedAt: now}
		a := &phoneverify.SendAttempt{ID: "VL" + rand.Text(), VerificationID: next.ID, ServiceID: svc.ID,
			Channel: phoneverify.ChannelSMS, Phone: phone, Country: "NP", CreatedAt: now}
		return &phoneverify.StartResult{Save: next, Sends: []time.Time{now}, Message: m, Attempt: a}, nil
	}

	// First, one start alone, on the optimistic path itself.
	op := &startOp{optimistic: optimistic{op: "start verification"}, key: key, decide: decide}
	s.batch.run([]*pgReq{{op: op, result: make(chan any, 1)}})
	if op.outcome != outcomeDone || op.err != nil {
		t.Fatalf("optimistic start: outcome %d, err %v; want done without error", op.outcome, op.err)
	}
	if got := countRows(t, s, "outbox", op.out.ID); got != 1 {
		t.Fatalf("outbox rows after the optimistic start = %d, want 1", got)
	}

	// Then many concurrent resends of it.
	const resends = 64
	var wg sync.WaitGroup
	for range resends {
		wg.Go(func() {
			if _, err := s.StartVerification(ctx, key, decide); err != nil {
				t.Errorf("StartVerification: %v", err)
			}
		})
	}
	wg.Wait()
	v, err := s.Verification(ctx, svc.ID, op.out.ID)
	if err != nil {
		t.Fatal(err)
	}
	if v.SendCount != resends+1 {
		t.Errorf("send_count = %d, want %d", v.SendCount, resends+1)
	}
	if got := countRows(t, s, "outbox", v.ID); got != v.SendCount {
		t.Errorf("outbox rows = %d, want one per saved send (%d)", got, v.SendCount)
	}
	if got := countRows(t, s, "send_attempts", v.ID); got != v.SendCount {
		t.Errorf("send_attempts rows = %d, want one per saved send (%d)", got, v.SendCount)
	}
	var distinct int
	if err := s.db.QueryRowContext(ctx, `SELECT count(DISTINCT send_count) FROM outbox WHERE verification_id = $1`, v.ID).Scan(&distinct); err != nil {
		t.Fatal(err)
	}
	if distinct != v.SendCount {
		t.Errorf("distinct send counts in the outbox = %d, want %d", distinct, v.SendCount)
	}
}

func countRows(t *testing.T, s *Store, table, verificationID string) int {
	t.Helper()
	var n int
	if err := s.db.QueryRowContext(t.Context(), `SELECT count(*) FROM `+table+` WHERE verification_id = $1`, verificationID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
