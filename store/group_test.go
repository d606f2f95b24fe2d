package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/store"
)

// TestGroupCommitIsolatesFailures runs many concurrent starts on SQLite, so
// that they share transactions, where every third decide refuses: exactly
// the accepted ones are written, each to its own number.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	s := MustOpenMigrated(t, SQLiteURL(t), store.Options{})
	svc := groupService(t, s)
	refused := errors.New("refused by the engine")
	const n = 300
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			phone := fmt.Sprintf("+97798%08d", i)
			_, errs[i] = s.StartVerification(context.Background(), phoneverify.NumberKey{ServiceID: svc.ID, Phone: phone},
				func(st *phoneverify.StartState) (*phoneverify.StartResult, error) {
					if i%3 == 0 {
						return nil, refused
					}
					return &phoneverify.StartResult{Save: newVerification(svc, fmt.Sprintf("VE%032x", i), phone), Sends: []time.Time{time.Now()}}, nil
				})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		_, getErr := s.Verification(context.Background(), svc.ID, fmt.Sprintf("VE%032x", i))
		if i%3 == 0 {
			if !errors.Is(err, refused) {
				t.Errorf("start %d: got %v, want the decide error", i, err)
			}
			if phoneverify.ErrorCode(getErr) != phoneverify.ENotFound {
				t.Errorf("refused start %d was written (%v)", i, getErr)
			}
			continue
		}
		if err != nil || getErr != nil {
			t.Errorf("start %d: %v, read back: %v", i, err, getErr)
		}
	}
}

// TestGroupCommitPanicReachesCaller: a panicking callback panics in its own
// caller's goroutine, and the store keeps serving others.
func TestGroupCommitPanicReachesCaller(t *testing.T) {
	s := MustOpenMigrated(t, SQLiteURL(t), store.Options{})
	svc := groupService(t, s)
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v, want boom", p)
			}
		}()
		_, _ = s.StartVerification(context.Background(), phoneverify.NumberKey{ServiceID: svc.ID, Phone: "+9779800000001"},
			func(*phoneverify.StartState) (*phoneverify.StartResult, error) { panic("boom") })
	}()
	v := newVerification(svc, "VE"+fmt.Sprintf("%032x", 7), "+9779800000002")
	if _, err := s.StartVerification(context.Background(), phoneverify.NumberKey{ServiceID: svc.ID, Phone: v.To},
		func(*phoneverify.StartState) (*phoneverify.StartResult, error) {
			return &phoneverify.StartResult{Save: v}, nil
		}); err != nil {
		t.Fatalf("store unusable after a panic: %v", err)
	}
}

// TestGroupCommitCanceledWhileQueued: a caller whose context ends before its
// turn gets an error and writes nothing.
func TestGroupCommitCanceledWhileQueued(t *testing.T) {
	s := MustOpenMigrated(t, SQLiteURL(t), store.Options{})
	svc := groupService(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.StartVerification(ctx, phoneverify.NumberKey{ServiceID: svc.ID, Phone: "+9779800000003"},
		func(*phoneverify.StartState) (*phoneverify.StartResult, error) {
			t.Error("decide ran for a canceled caller")
			return nil, errors.New("unreachable")
		})
	if err == nil {
		t.Fatal("a canceled start succeeded")
	}
}

func groupService(t *testing.T, s *store.Store) *phoneverify.Service {
	t.Helper()
	svc := phoneverify.NewService("group")
	svc.ID = "VA" + fmt.Sprintf("%032x", 1)
	svc.CreatedAt, svc.UpdatedAt = time.Now(), time.Now()
	if err := s.CreateService(context.Background(), svc); err != nil {
		t.Fatal(err)
	}
	return svc
}

func newVerification(svc *phoneverify.Service, id, phone string) *phoneverify.Verification {
	now := time.Now()
	return &phoneverify.Verification{ID: id, ServiceID: svc.ID, To: phone, Channel: phoneverify.ChannelSMS,
		Status: phoneverify.StatusPending, SendCount: 1, MaxAttempts: 5, CodeHash: make([]byte, 32),
		ExpiresAt: now.Add(time.Minute), CreatedAt: now, UpdatedAt: now}
}
