// Package storetest is the conformance suite of [phoneverify.Store]: every
// implementation must pass [Run].
//
// A store package runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) phoneverify.Store {
//			return openFreshMigratedStore(t) // closed by t.Cleanup
//		}, storetest.WithPair(openTwoStoresOnOneFreshDatabase))
//	}
package storetest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phoneverify/phoneverify"
)

// OpenFunc returns a store on a fresh, empty, migrated database of its own,
// and closes it (and drops the database, if it wants) in t.Cleanup. It must
// be safe to call from parallel tests.
type OpenFunc func(t *testing.T) phoneverify.Store

// OpenPairFunc returns two stores on one fresh, empty, migrated database,
// each with its own connections, as two nodes of one deployment would have.
// Like [OpenFunc] it cleans up in t.Cleanup and must be safe to call from
// parallel tests.
type OpenPairFunc func(t *testing.T) (a, b phoneverify.Store)

// Option configures [Run].
type Option func(*config)

type config struct {
	openPair OpenPairFunc
}

// WithPair makes [Run] repeat its concurrency tests with the calls spread
// over two stores on one database (see [OpenPairFunc]): the tests then check
// that the store's locking holds across nodes, not just within one
// connection pool.
func WithPair(open OpenPairFunc) Option {
	return func(c *config) { c.openPair = open }
}

// Run runs the conformance suite, each test on a store of its own from open.
// The tests run in parallel with each other.
func Run(t *testing.T, open OpenFunc, opts ...Option) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	// The concurrency tests run on one store passed twice, and with
	// WithPair on two stores on one database as well.
	pairs := []struct {
		name string
		open OpenPairFunc
	}{{
		name: "OneStore",
		open: func(t *testing.T) (a, b phoneverify.Store) {
			s := open(t)
			return s, s
		},
	}}
	if cfg.openPair != nil {
		pairs = append(pairs, struct {
			name string
			open OpenPairFunc
		}{name: "TwoStores", open: cfg.openPair})
	}

	tests := []struct {
		name string
		fn   func(t *testing.T, s phoneverify.Store)
	}{
		{"Ping", testPing},
		{"Services", testServices},
		{"DefaultService", testDefaultService},
		{"UpdateService", testUpdateService},
		{"UpdateServiceStaleRead", testUpdateServiceStaleRead},
		{"UpdateServiceWithFeaturesStaleRead", testUpdateServiceWithFeaturesStaleRead},
		{"UpdateServiceLimits", testUpdateServiceLimits},
		{"VerificationNotFound", testVerificationNotFound},
		{"StartInsert", testStartInsert},
		{"StartResend", testStartResend},
		{"StartCloseAndInsert", testStartCloseAndInsert},
		{"StartDecideError", testStartDecideError},
		{"StartSecondPendingConflicts", testStartSecondPendingConflicts},
		{"StartNumbersArePerService", testStartNumbersArePerService},
		{"StartUnknownService", testStartUnknownService},
		{"UpdateByID", testUpdateByID},
		{"UpdateByPhone", testUpdateByPhone},
		{"UpdateNotFound", testUpdateNotFound},
		{"UpdateApplyError", testUpdateApplyError},
		{"UpdateWithoutSave", testUpdateWithoutSave},
		{"Registry", testRegistry},
		{"ExpireVerifications", testExpireVerifications},
		{"APIKeys", testAPIKeys},
		{"SigningKeys", testSigningKeys},
		{"OutboxStart", testOutboxStart},
		{"OutboxClaims", testOutboxClaims},
		{"OutboxReceipts", testOutboxReceipts},
		{"OutboxBacklog", testOutboxBacklog},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}

	concurrent := []struct {
		name string
		fn   func(t *testing.T, a, b phoneverify.Store)
	}{
		{"ConcurrentChecks", testConcurrentChecks},
		{"ConcurrentStarts", testConcurrentStarts},
		{"ConcurrentEnsureSigningKey", testConcurrentEnsureSigningKey},
		{"ConcurrentApprovalCountsConversionOnce", testConcurrentApprovalCountsConversionOnce},
	}
	for _, tt := range concurrent {
		for _, p := range pairs {
			t.Run(tt.name+"/"+p.name, func(t *testing.T) {
				t.Parallel()
				a, b := p.open(t)
				tt.fn(t, a, b)
			})
		}
	}
}

// errRefused is what the tests' callbacks return to refuse a change.
var errRefused = errors.New("storetest: refused")

// baseTime is the tests' clock: whole milliseconds, UTC, as the store keeps
// times.
func baseTime() time.Time { return time.Date(2025, 3, 4, 5, 6, 7, 890_000_000, time.UTC) }

// newID returns a random id.
func newID() string { return strings.ToLower(rand.Text()) }

// newHash returns a random code hash.
func newHash() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

// mustService creates a service named name.
func mustService(t *testing.T, s phoneverify.Store, name string, isDefault bool) *phoneverify.Service {
	t.Helper()
	svc := phoneverify.NewService(name)
	svc.ID = newID()
	svc.IsDefault = isDefault
	svc.CreatedAt = baseTime()
	svc.UpdatedAt = baseTime()
	if err := s.CreateService(t.Context(), svc); err != nil {
		t.Fatalf("CreateService(%q) = %v", name, err)
	}
	return svc
}

// newVerification returns a pending verification of phone, sent once at now.
func newVerification(svc *phoneverify.Service, phone, subject string, now time.Time) *phoneverify.Verification {
	return &phoneverify.Verification{
		ID:          newID(),
		ServiceID:   svc.ID,
		To:          phone,
		Country:     "NP",
		Channel:     phoneverify.ChannelSMS,
		Status:      phoneverify.StatusPending,
		Subject:     subject,
		Locale:      "en",
		SendCount:   1,
		MaxAttempts: svc.MaxAttempts,
		CodeHash:    newHash(),
		ExpiresAt:   now.Add(svc.CodeTTL),
		CreatedAt:   now,
		UpdatedAt:   now,
	}
}

// mustStart starts v as a new verification of its number and returns it as
// saved.
func mustStart(t *testing.T, s phoneverify.Store, v *phoneverify.Verification) *phoneverify.Verification {
	t.Helper()
	key := phoneverify.NumberKey{ServiceID: v.ServiceID, Phone: v.To, Subject: v.Subject}
	got, err := s.StartVerification(t.Context(), key, func(st *phoneverify.StartState) (*phoneverify.StartResult, error) {
		return &phoneverify.StartResult{Save: v, Sends: append(st.Sends, v.CreatedAt)}, nil
	})
	if err != nil {
		t.Fatalf("StartVerification = %v", err)
	}
	return got
}

// peekState returns the StartState of key without writing anything: its
// decide refuses.
func peekState(t *testing.T, s phoneverify.Store, key phoneverify.NumberKey) *phoneverify.StartState {
	t.Helper()
	var state *phoneverify.StartState
	_, err := s.StartVerification(t.Context(), key, func(st *phoneverify.StartState) (*phoneverify.StartResult, error) {
		state = st
		return nil, errRefused
	})
	if !errors.Is(err, errRefused) {
		t.Fatalf("StartVerification with a refusing decide = %v, want the refusal", err)
	}
	return state
}

// mustVerification reads a verification.
func mustVerification(t *testing.T, s phoneverify.Store, serviceID, id string) *phoneverify.Verification {
	t.Helper()
	v, err := s.Verification(t.Context(), serviceID, id)
	if err != nil {
		t.Fatalf("Verification = %v", err)
	}
	return v
}

// wantCode fails t unless err carries the given error code.
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := phoneverify.ErrorCode(err); got != code {
		t.Errorf("%s: error code = %q (%v), want %q", what, got, err, code)
	}
}

// diffVerification describes how got differs from want, or returns "".
func diffVerification(got, want *phoneverify.Verification) string {
	if got == nil || want == nil {
		if got == want {
			return ""
		}
		return fmt.Sprintf("got %v, want %v", got, want)
	}
	var d []string
	field := func(name string, g, w any) {
		if g != w {
			d = append(d, fmt.Sprintf("%s: got %v, want %v", name, g, w))
		}
	}
	field("ID", got.ID, want.ID)
	field("ServiceID", got.ServiceID, want.ServiceID)
	field("To", got.To, want.To)
	field("Country", got.Country, want.Country)
	field("Channel", got.Channel, want.Channel)
	field("Status", got.Status, want.Status)
	field("Subject", got.Subject, want.Subject)
	field("Amount", got.Amount, want.Amount)
	field("Payee", got.Payee, want.Payee)
	field("Locale", got.Locale, want.Locale)
	field("SendCount", got.SendCount, want.SendCount)
	field("Attempts", got.Attempts, want.Attempts)
	field("MaxAttempts", got.MaxAttempts, want.MaxAttempts)
	if !bytes.Equal(got.CodeHash, want.CodeHash) {
		d = append(d, fmt.Sprintf("CodeHash: got %x, want %x", got.CodeHash, want.CodeHash))
	}
	for _, tf := range []struct {
		name      string
		got, want time.Time
	}{
		{"ExpiresAt", got.ExpiresAt, want.ExpiresAt},
		{"CreatedAt", got.CreatedAt, want.CreatedAt},
		{"UpdatedAt", got.UpdatedAt, want.UpdatedAt},
	} {
		if !tf.got.Equal(tf.want) {
			d = append(d, fmt.Sprintf("%s: got %v, want %v", tf.name, tf.got, tf.want))
		}
	}
	return strings.Join(d, "; ")
}

func diffService(got, want *phoneverify.Service) string {
	g, w := *got, *want
	if !g.CreatedAt.Equal(w.CreatedAt) || !g.UpdatedAt.Equal(w.UpdatedAt) {
		return fmt.Sprintf("times: got %v/%v, want %v/%v", g.CreatedAt, g.UpdatedAt, w.CreatedAt, w.UpdatedAt)
	}
	g.CreatedAt, g.UpdatedAt, w.CreatedAt, w.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(g, w) {
		return fmt.Sprintf("got %+v, want %+v", g, w)
	}
	return ""
}

func testPing(t *testing.T, s phoneverify.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping = %v, want nil", err)
	}
}

func testServices(t *testing.T, s phoneverify.Store) {
	ctx := t.Context()
	got, err := s.Services(ctx)
	if err != nil || len(got) != 0 {
		t.Fatalf("Services on an empty store = %v, %v; want none", got, err)
	}

	// Every setting round-trips, durations to the millisecond.
	want := phoneverify.NewService("shop")
	want.ID = newID()
	want.CodeLength = 8
	want.CodeTTL = 90*time.Second + 500*time.Millisecond
	want.MaxSends = 3
	want.SendWindow = time.Hour
	want.MaxAttempts = 7
	want.Template = "Code {code} for {app}"
	want.WebOTPDomain = "shop.example"
	want.OneSubjectPerPhone = false
	want.RejectAlreadyVerified = false
	want.TokenTTL = 2 * time.Minute
	want.CreatedAt = baseTime()
	want.UpdatedAt = baseTime().Add(time.Second)
	if err := s.CreateService(ctx, want); err != nil {
		t.Fatalf("CreateService = %v", err)
	}
	gotSvc, err := s.Service(ctx, want.ID)
	if err != nil {
		t.Fatalf("Service = %v", err)
	}
	if d := diffService(gotSvc, want); d != "" {
		t.Errorf("Service after CreateService: %s", d)
	}

	_, err = s.Service(ctx, "nope")
	wantCode(t, "Service(unknown)", err, phoneverify.ENotFound)

	dup := phoneverify.NewService("again")
	dup.ID = want.ID
	wantCode(t, "CreateService(same id)", s.CreateService(ctx, dup), phoneverify.EConflict)

	// Oldest first, whatever the insertion order.
	older := mustServiceAt(t, s, "older", baseTime().Add(-time.Hour))
	newer := mustServiceAt(t, s, "newer", baseTime().Add(time.Hour))
	list, err := s.Services(ctx)
	if err != nil {
		t.Fatalf("Services = %v", err)
	}
	var ids []string
	for _, svc := range list {
		ids = append(ids, svc.ID)
	}
	if wantIDs := []string{older.ID, want.ID, newer.ID}; !slices.Equal(ids, wantIDs) {
		t.Errorf("Services ids = %v, want %v (oldest first)", ids, wantIDs)
	}
}

func mustServiceAt(t *testing.T, s phoneverify.Store, name string, at time.Time) *phoneverify.Service {
	t.Helper()
	svc := phoneverify.NewService(name)
	svc.ID = newID()
	svc.CreatedAt, svc.UpdatedAt = at, at
	if err := s.CreateService(t.Context(), svc); err != nil {
		t.Fatalf("CreateService(%q) = %v", name, err)
	}
	return svc
}

func testDefaultService(t *testing.T, s phoneverify.Store) {
	ctx := t.Context()
	_, err := s.DefaultService(ctx)
	wantCode(t, "DefaultService with none", err, phoneverify.ENotFound)

	mustService(t, s, "other", false)
	def := mustService(t, s, "default", true)
	got, err := s.DefaultService(ctx)
	if err != nil {
		t.Fatalf("DefaultService = %v", err)
	}
	if got.ID != def.ID || !got.IsDefault {
		t.Errorf("DefaultService = %s (default %v), want %s", got.ID, got.IsDefault, def.ID)
	}

	second := phoneverify.NewService("second default")
	second.ID = newID()
	second.IsDefault = true
	wantCode(t, "CreateService(second default)", s.CreateService(ctx, second), phoneverify.EConflict)
	if _, err := s.Service(ctx, second.ID); phoneverify.ErrorCode(err) != phoneverify.ENotFound {
		t.Errorf("Service(refused second default) = %v, want not_found", err)
	}
}

func testUpdateService(t *testing.T, s phoneverify.Store) {
	ctx := t.Context()
	svc := mustService(t, s, "before", false)
	svc.Name = "after"
	svc.MaxAttempts = 9
	svc.Template = "{code}"
	svc.OneSubjectPerPhone = false
	// Limits round-trip: set ones (including off), absent ones stay nil.
	day := phoneverify.Limit{Max: 10, Window: 24 * time.Hour}
	svc.Limits = phoneverify.ServiceLimits{PerNumberDay: &day, PerIP: &phoneverify.Limit{},
		BudgetHour: &phoneverify.Limit{Max: 500, Window: time.Hour}, DenyCountries: []string{"CU", "KP"}}
	readAt := svc.UpdatedAt
	svc.UpdatedAt = baseTime().Add(time.Minute)
	if err := s.UpdateService(ctx, svc, readAt); err != nil {
		t.Fatalf("UpdateService = %v", err)
	}
	got, err := s.Service(ctx, svc.ID)
	if err != nil {
		t.Fatalf("Service = %v", err)
	}
	if d := diffService(got, svc); d != "" {
		t.Errorf("Service after UpdateService: %s", d)
	}

	unknown := phoneverify.NewService("ghost")
	unknown.ID = "nope"
	wantCode(t, "UpdateService(unknown)", s.UpdateService(ctx, unknown, unknown.UpdatedAt), phoneverify.ENotFound)

	mustService(t, s, "default", true)
	svc.IsDefault = true
	wantCode(t, "UpdateService(second default)", s.UpdateService(ctx, svc, svc.UpdatedAt), phoneverify.EConflict)
}

// testUpdateServiceStaleRead: an update written from a read older than the
// service's last change is refused with EConflict and writes nothing, so
// that it cannot undo that change; every change moves UpdatedAt on, even
// one stamped with a time that is not later.
func testUpdateServiceStaleRead(t *testing.T, s phoneverify.Store) {
	ctx := t.Context()
	svc := mustService(t, s, "shared", false)
	first, second := *svc, *svc // two readers of the same version

	first.Name = "first"
	if err := s.UpdateService(ctx, &first, svc.UpdatedAt); err != nil {
		t.Fatalf("UpdateService(first) = %v", err)
	}
	if !first.UpdatedAt.After(svc.UpdatedAt) {
		t.Errorf("UpdatedAt after an update stamped with the same time = %v, want after %v", first.UpdatedAt, svc.UpdatedAt)
	}
	second.MaxAttempts = 2
	second.UpdatedAt = baseTime().Add(time.Hour)
	wantCode(t, "UpdateService(stale read)", s.UpdateService(ctx, &second, svc.UpdatedAt), phoneverify.EConflict)
	got, err := s.Service(ctx, svc.ID)
	if err != nil {
		t.Fatalf("Service = %v", err)
	}
	if d := diffService(got, &first); d != "" {
		t.Errorf("Service after a refused stale update (want the first update kept): %s", d)
	}

	// A limits change is a change too: an update read before it is refused.
	ls, ok := s.(phoneverify.ServiceLimitsStore)
	if !ok {
		return
	}
	before := *got
	if err := ls.UpdateServiceLimits(ctx, svc.ID, &phoneverify.ServiceLimits{DenyCountries: []string{"CU"}}, got.UpdatedAt); err != nil {
		t.Fatalf("UpdateServiceLimits = %v", err)
	}
	afterLimits, err := s.Service(ctx, svc.ID)
	if err != nil {
		t.Fatalf("Service = %v", err)
	}
	if !afterLimits.UpdatedAt.After(before.UpdatedAt) {
		t.Errorf("UpdatedAt after a limits change stamped with the same time = %v, want after %v", afterLimits.UpdatedAt, before.UpdatedAt)
	}
	before.Name = "undoes the limits"
	wantCode(t, "UpdateService(read before a limits change)", s.UpdateService(ctx, &before, got.UpdatedAt), phoneverify.EConflict)
	if got, _ := s.Service(ctx, svc.ID); got == nil || len(got.Limits.DenyCountries) != 1 || got.Name != "first" {
		t.Errorf("Service after a refused update = %+v, want the limits change kept and the name unchanged", got)
	}
}

// testUpdateServiceLimits runs where the store is a
// [phoneverify.ServiceLimitsStore]: the limits are replaced as a whole,
// the service's other settings are left as they are.
func testUpdateServiceLimits(t *testing.T, s phoneverify.Store) {
	ls, ok := s.(phoneverify.ServiceLimitsStore)
	if !ok {
		t.Skip("the store is not a ServiceLimitsStore")
	}
	ctx := t.Context()
	svc := mustService(t, s, "limited", false)
	svc.Limits = phoneverify.ServiceLimits{PerIP: &phoneverify.Limit{Max: 3, Window: time.Minute}, AllowCountries: []string{"NP"}}
	if err := s.UpdateService(ctx, svc, svc.UpdatedAt); err != nil {
		t.Fatalf("UpdateService = %v", err)
	}
	for i, l := range []phoneverify.ServiceLimits{
		{PerSubject: &phoneverify.Limit{}, BudgetDay: &phoneverify.Limit{Max: 900, Window: 24 * time.Hour}, DenyCountries: []string{"CU", "KP"}},
		{}, // every limit back to the default, no country list
	} {
		at := baseTime().Add(time.Duration(i+1) * time.Hour)
		if err := ls.UpdateServiceLimits(ctx, svc.ID, &l, at); err != nil {
			t.Fatalf("UpdateServiceLimits #%d = %v", i, err)
		}
		want := *svc
		want.Limits, want.UpdatedAt = l, at
		got, err := s.Service(ctx, svc.ID)
		if err != nil {
			t.Fatalf("Service = %v", err)
		}
		if d := diffService(got, &want); d != "" {
			t.Errorf("Service after UpdateServiceLimits #%d: %s", i, d)
		}
	}
	wantCode(t, "UpdateServiceLimits(unknown)", ls.UpdateServiceLimits(ctx, "nope", &phoneverify.ServiceLimits{}, baseTime()), phoneverify.ENotFound)
}

func testVerificationNotFound(t *testing.T, s phoneverify.Store) {
	svc := mustService(t, s, "a", false)
	other := mustService(t, s, "b", false)
	v := mustStart(t, s, newVerification(svc, "+9779800000001", "", baseTime()))
	tests := []struct {
		name, serviceID, id string
	}{
		{"unknown id", svc.ID, "nope"},
		{"other service", other.ID, v.ID},
		{"unknown service", "nope", v.ID},
	}
	for _, tt := range tests {
		_, err := s.Verification(t.Context(), tt.serviceID, tt.id)
		wantCode(t, "Verification("+tt.name+")", err, phoneverify.ENotFound)
	}
}

func testStartInsert(t *testing.T, s phoneverify.Store) {
	svc := mustService(t, s, "a", false)
	now := baseTime()
	want := newVerification(svc, "+9779800000001", "user-1", now)
	want.Amount, want.Payee = "12.50 EUR", "Shop Ltd"
	key := phoneverify.NumberKey{ServiceID: svc.ID, Phone: want.To, Subject: want.Subject}

	var seen *phoneverify.StartState
	got, err := s.StartVerification(t.Context(), key, func(st *phoneverify.StartState) (*phoneverify.StartResult, error) {
		seen = st
		return &phoneverify.StartResult{Save: want, Sends: []time.Time{now}}, nil
	})
	if err != nil {
		t.Fatalf("StartVerification = %v", err)
	}
	if seen.Latest != nil || len(seen.Sends) != 0 || seen.SubjectPhone != nil || len(seen.PhoneSubjects) != 0 {
		t.Errorf("first StartState = %+v, want empty", seen)
	}
	if d := diffVerification(got, want); d != "" {
		t.Errorf("StartVerification returned: %s", d)
	}
	if d := diffVerification(mustVerification(t, s, svc.ID, want.ID), want); d != "" {
		t.Errorf("Verification after start: %s", d)
	}

	st := peekState(t, s, key)
	if d := diffVerification(st.Latest, want); d != "" {
		t.Errorf("next StartState.Latest: %s", d)
	}
	if !slices.EqualFunc(st.Sends, []time.Time{now}, time.Time.Equal) {
		t.Errorf("next StartState.Sends = %v, want [%v]", st.Sends, now)
	}
}

func testStartResend(t *testing.T, s phoneverify.Store) {
	svc := mustService(t, s, "a", false)
	t0 := baseTime()
	first := mustStart(t, s, newVerification(svc, "+9779800000001", "", t0))
	key := phoneverify.NumberKey{ServiceID: svc.ID, Phone: first.To}

	t1 := t0.Add(30 * time.Second)
	var resent phoneverify.Verification
	got, err := s.StartVerification(t.Context(), key, func(st *phoneverify.StartState) (*phoneverify.StartResult, error) {
		if st.Latest == nil || st.Latest.ID != first.ID {
			return nil, fmt.Errorf("latest = %v, want %s", st.Latest, first.ID)
		}
		resent = *st.Latest
		resent.SendCount++
		resent.CodeHash = newHash()
		resent.ExpiresAt = t1.Add(svc.CodeTTL)
		resent.UpdatedAt = t1
		return &phoneverify.StartResult{Save: &resent, Sends: append(st.Sends, t1)}, nil
	})
	if err != nil {
		t.Fatalf("resend StartVerification = %v", err)
	}
	if d := diffVerification(got, &resent); d != "" {
		t.Errorf("resend returned: %s", d)
	}
	if d := diffVerification(mustVerification(t, s, svc.ID, first.ID), &resent); d != "" {
		t.Errorf("Verification after resend: %s", d)
	}
	st := peekState(t, s, key)
	if st.Latest == nil || st.Latest.SendCount != 2 {
		t.Errorf("StartState.Latest after resend = %+v, want send count 2", st.Latest)
	}
	if want := []time.Time{t0, t1}; !slices.EqualFunc(st.Sends, want, time.Time.Equal) {
		t.Errorf("StartState.Sends after resend = %v, want %v", st.Sends, want)
	}
}

func testStartCloseAndInsert(t *testing.T, s phoneverify.Store) {
	svc := mustService(t, s, "a", false)
	t0 := baseTime()
	first := mustStart(t, s, newVerification(svc, "+9779800000001", "", t0))
	key := phoneverify.NumberKey{ServiceID: svc.ID, Phone: first.To}

	t1 := t0.Add(time.Minute)
	second := newVerification(svc, first.To, "", t1)
	got, err := s.StartVerification(t.Context(), key, func(st *phoneverify.StartState) (*phoneverify.StartResult, error) {
		closed := *st.Latest
		closed.Status = phoneverify.StatusCanceled
		closed.UpdatedAt = t1
		// Sends may also be trimmed to the send window.
		return &phoneverify.StartResult{Close: &closed, Save: second, Sends: []time.Time{t1}}, nil
	})
	if err != nil {
		t.Fatalf("StartVerification = %v", err)
	}
	if d := diffVerification(got, second); d != "" {
		t.Errorf("StartVerification returned: %s", d)
	}
	old := mustVerification(t, s, svc.ID, first.ID)
	if old.Status != phoneverify.StatusCanceled || !old.UpdatedAt.Equal(t1) {
		t.Errorf("closed verification: status %s updated %v, want canceled at %v", old.Status, old.UpdatedAt, t1)
	}
	st := peekState(t, s, key)
	if st.Latest == nil || st.Latest.ID != second.ID {
		t.Errorf("StartState.Latest = %v, want the new verification %s", st.Latest, second.ID)
	}
	if want := []time.Time{t1}; !slices.EqualFunc(st.Sends, want, time.Time.Equal) {
		t.Errorf("StartState.Sends = %v, want %v", st.Sends, want)
	}
}

func testStartDecideError(t *testing.T, s phoneverify.Store) {
	svc := mustService(t, s, "a", false)
	first := mustStart(t, s, newVerification(svc, "+9779800000001", "", baseTime()))
	key := phoneverify.NumberKey{ServiceID: svc.ID, Phone: first.To}
	refusal := phoneverify.Errorf(phoneverify.ETooManyRequests, "Too many codes.")
	fresh := newVerification(svc, "+9779800000002", "", baseTime())

	tests := []struct {
		name string
		key  phoneverify.NumberKey
	}{
		{"known number", key},
		{"new number", phoneverify.NumberKey{ServiceID: svc.ID, Phone: fresh.To}},
	}
	for _, tt := range tests {
		_, err := s.StartVerification(t.Context(), tt.key, func(*phoneverify.StartState) (*phoneverify.StartResult, error) {
			return nil, refusal
		})
		if err != refusal { //nolint:errorlint // the very error must come back
			t.Errorf("%s: StartVerification = %v, want decide's error unchanged", tt.name, err)
		}
	}
	if got := mustVerification(t, s, svc.ID, first.ID); got.Status != phoneverify.StatusPending || got.SendCount != 1 {
		t.Errorf("verification after refused start: status %s, send count %d; want unchanged", got.Status, got.SendCount)
	}
	if st := peekState(t, s, key); len(st.Sends) != 1 {
		t.Errorf("sends after refused start = %v, want the one send", st.Sends)
	}
	if st := peekState(t, s, phoneverify.NumberKey{ServiceID: svc.ID, Phone: fresh.To}); st.Latest != nil || len(st.Sends) != 0 {
		t.Errorf("state of a number only refused = %+v, want empty", st)
	}
	_, err := s.UpdateVerification(t.Context(), phoneverify.VerificationRef{ServiceID: svc.ID, Phone: fresh.To},
		func(*phoneverify.Verification) (*phoneverify.Update, error) { return nil, nil })
	wantCode(t, "UpdateVerification(phone only refused)", err, phoneverify.ENotFound)

	// A decide that returns no result is an error, and writes nothing.
	_, err = s.StartVerification(t.Context(), key, func(*phoneverify.StartState) (*phoneverify.StartResult, error) {
		return nil, nil
	})
	if err == nil {
		t.Errorf("StartVerification with a nil result = nil error, want an error")
	}
	if got := mustVerification(t, s, svc.ID, first.ID); got.SendCount != 1 {
		t.Errorf("verification after a nil result: send count %d, want 1", got.SendCount)
	}
}

func testStartSecondPendingConflicts(t *testing.T, s phoneverify.Store) {
	svc := mustService(t, s, "a", false)
	first := mustStart(t, s, newVerification(svc, "+9779800000001", "", baseTime()))
	key := phoneverify.NumberKey{ServiceID: svc.ID, Phone: first.To}
	second := newVerification(svc, first.To, "", baseTime().Add(time.Second))
	_, err := s.StartVerification(t.Context(), key, func(st *phoneverify.StartState) (*phoneverify.StartResult, error) {
		// Forgets to close the pending one.
		return &phoneverify.StartResult{Save: second, Sends: st.Sends}, nil
	})
	wantCode(t, "StartVerification(second pending)", err, phoneverify.EConflict)
	_, err = s.Verification(t.Context(), svc.ID, second.ID)
	wantCode(t, "Verification(refused second pending)", err, phoneverify.ENotFound)
}

func testStartNumbersArePerService(t *testing.T, s phoneverify.Store) {
	a := mustService(t, s, "a", false)
	b := mustService(t, s, "b", false)
	const phone = "+9779800000001"
	va := mustStart(t, s, newVerification(a, phone, "", baseTime()))
	vb := mustStart(t, s, newVerification(b, phone, "", baseTime()))
	for _, tt := range []struct {
		svc *phoneverify.Service
		id  string
	}{{a, va.ID}, {b, vb.ID}} {
		st := peekState(t, s, phoneverify.NumberKey{ServiceID: tt.svc.ID, Phone: phone})
		if st.Latest == nil || st.Latest.ID != tt.id || len(st.Sends) != 1 {
			t.Errorf("service %s: StartState = %+v, want latest %s and one send", tt.svc.Name, st, tt.id)
		}
	}
}

func testStartUnknownService(t *testing.T, s phoneverify.Store) {
	svc := &phoneverify.Service{ID: "nope", MaxAttempts: 5, CodeTTL: time.Minute}
	v := newVerification(svc, "+9779800000001", "", baseTime())
	_, err := s.StartVerification(t.Context(), phoneverify.NumberKey{ServiceID: svc.ID, Phone: v.To},
		func(st *phoneverify.StartState) (*phoneverify.StartResult, error) {
			return &phoneverify.StartResult{Save: v}, nil
		})
	wantCode(t, "StartVerification(unknown service)", err, phoneverify.ENotFound)
}

func testUpdateByID(t *testing.T, s phoneverify.Store) {
	svc := mustService(t, s, "a", false)
	v := mustStart(t, s, newVerification(svc, "+9779800000001", "", baseTime()))
	later := baseTime().Add(10 * time.Second)

	var want phoneverify.Verification
	got, err := s.UpdateVerification(t.Context(), phoneverify.VerificationRef{ServiceID: svc.ID, ID: v.ID},
		func(cur *phoneverify.Verification) (*phoneverify.Update, error) {
			if d := diffVerification(cur, v); d != "" {
				return nil, fmt.Errorf("apply saw: %s", d)
			}
			// Every mutable field changes.
			cur.Status = phoneverify.StatusApproved
			cur.Attempts = 2
			cur.SendCount = 3
			cur.MaxAttempts = 4
			cur.CodeHash = newHash()
			cur.ExpiresAt = later.Add(time.Minute)
			cur.UpdatedAt = later
			cur.Subject = "user-9"
			cur.Amount = "1 EUR"
			cur.Payee = "Payee"
			cur.Locale = "ne"
			cur.Country = "IN"
			want = *cur
			return &phoneverify.Update{Save: true}, nil
		})
	if err != nil {
		t.Fatalf("UpdateVerification = %v", err)
	}
	if d := diffVerification(got, &want); d != "" {
		t.Errorf("UpdateVerification returned: %s", d)
	}
	if d := diffVerification(mustVerification(t, s, svc.ID, v.ID), &want); d != "" {
		t.Errorf("Verification after update: %s", d)
	}
}

func testUpdateByPhone(t *testing.T, s phoneverify.Store) {
	svc := mustService(t, s, "a", false)
	const phone = "+9779800000001"
	first := mustStart(t, s, newVerification(svc, phone, "", baseTime()))
	// Replace it: by phone now names the second.
	second := newVerification(svc, phone, "", baseTime().Add(time.Minute))
	_, err := s.StartVerification(t.Context(), phoneverify.NumberKey{ServiceID: svc.ID, Phone: phone},
		func(st *phoneverify.StartState) (*phoneverify.StartResult, error) {
			closed := *st.Latest
			closed.Status = phoneverify.StatusCanceled
			return &phoneverify.StartResult{Close: &closed, Save: second, Sends: st.Sends}, nil
		})
	if err != nil {
		t.Fatalf("StartVerification = %v", err)
	}

	got, err := s.UpdateVerification(t.Context(), phoneverify.VerificationRef{ServiceID: svc.ID, Phone: phone},
		func(v *phoneverify.Verification) (*phoneverify.Update, error) {
			if v.ID != second.ID {
				return nil, fmt.Errorf("apply got %s, want the newest %s", v.ID, second.ID)
			}
			v.Attempts++
			return &phoneverify.Update{Save: true}, nil
		})
	if err != nil {
		t.Fatalf("UpdateVerification by phone = %v", err)
	}
	if got.ID != second.ID || got.Attempts != 1 {
		t.Errorf("UpdateVerification by phone = %s with %d attempts, want %s with 1", got.ID, got.Attempts, second.ID)
	}
	if v := mustVerification(t, s, svc.ID, first.ID); v.Attempts != 0 {
		t.Errorf("older verification has %d attempts, want 0", v.Attempts)
	}

	// By id and phone: both must match.
	_, err = s.UpdateVerification(t.Context(), phoneverify.VerificationRef{ServiceID: svc.ID, ID: second.ID, Phone: "+9779800000009"},
		func(*phoneverify.Verification) (*phoneverify.Update, error) { return nil, errRefused })
	wantCode(t, "UpdateVerification(id with another phone)", err, phoneverify.ENotFound)
}

func testUpdateNotFound(t *testing.T, s phoneverify.Store) {
	svc := mustService(t, s, "a", false)
	other := mustService(t, s, "b", false)
	v := mustStart(t, s, newVerification(svc, "+9779800000001", "", baseTime()))
	tests := []struct {
		name string
		ref  phoneverify.VerificationRef
	}{
		{"unknown id", phoneverify.VerificationRef{ServiceID: svc.ID, ID: "nope"}},
		{"id in another service", phoneverify.VerificationRef{ServiceID: other.ID, ID: v.ID}},
		{"unknown phone", phoneverify.VerificationRef{ServiceID: svc.ID, Phone: "+9779800000002"}},
		{"phone in another service", phoneverify.VerificationRef{ServiceID: other.ID, Phone: v.To}},
		{"empty reference", phoneverify.VerificationRef{ServiceID: svc.ID}},
	}
	for _, tt := range tests {
		called := false
		_, err := s.UpdateVerification(t.Context(), tt.ref, func(*phoneverify.Verification) (*phoneverify.Update, error) {
			called = true
			return &phoneverify.Update{Save: true}, nil
		})
		wantCode(t, "UpdateVerification("+tt.name+")", err, phoneverify.ENotFound)
		if called {
			t.Errorf("UpdateVerification(%s) called apply", tt.name)
		}
	}
}

func testUpdateApplyError(t *testing.T, s phoneverify.Store) {
	svc := mustService(t, s, "a", false)
	v := mustStart(t, s, newVerification(svc, "+9779800000001", "user-1", baseTime()))
	refusal := phoneverify.Errorf(phoneverify.EIncorrectCode, "Wrong code.")
	_, err := s.UpdateVerification(t.Context(), phoneverify.VerificationRef{ServiceID: svc.ID, ID: v.ID},
		func(cur *phoneverify.Verification) (*phoneverify.Update, error) {
			cur.Attempts = 99
			cur.Status = phoneverify.StatusFailed
			return &phoneverify.Update{Save: true, Register: &phoneverify.VerifiedPhone{
				ServiceID: svc.ID, Subject: "user-1", Phone: v.To, VerificationID: v.ID, VerifiedAt: baseTime(),
			}}, refusal
		})
	if err != refusal { //nolint:errorlint // the very error must come back
		t.Errorf("UpdateVerification = %v, want apply's error unchanged", err)
	}
	if d := diffVerification(mustVerification(t, s, svc.ID, v.ID), v); d != "" {
		t.Errorf("verification after refused update changed: %s", d)
	}
	_, err = s.VerifiedPhone(t.Context(), svc.ID, "user-1")
	wantCode(t, "VerifiedPhone after refused update", err, phoneverify.ENotFound)
}

func testUpdateWithoutSave(t *testing.T, s phoneverify.Store) {
	svc := mustService(t, s, "a", false)
	v := mustStart(t, s, newVerification(svc, "+9779800000001", "", baseTime()))
	for _, u := range []*phoneverify.Update{nil, {}} {
		got, err := s.UpdateVerification(t.Context(), phoneverify.VerificationRef{ServiceID: svc.ID, ID: v.ID},
			func(cur *phoneverify.Verification) (*phoneverify.Update, error) {
				cur.Attempts = 3
				return u, nil
			})
		if err != nil {
			t.Fatalf("UpdateVerification(%+v) = %v", u, err)
		}
		if got.Attempts != 3 {
			t.Errorf("UpdateVerification(%+v) returned %d attempts, want apply's 3", u, got.Attempts)
		}
		if stored := mustVerification(t, s, svc.ID, v.ID); stored.Attempts != 0 {
			t.Errorf("UpdateVerification(%+v) without Save stored %d attempts, want 0", u, stored.Attempts)
		}
	}
}

// register approves v and records subject's verified phone.
func register(t *testing.T, s phoneverify.Store, v *phoneverify.Verification, subject string, at time.Time) {
	t.Helper()
	_, err := s.UpdateVerification(t.Context(), phoneverify.VerificationRef{ServiceID: v.ServiceID, ID: v.ID},
		func(cur *phoneverify.Verification) (*phoneverify.Update, error) {
			cur.Status = phoneverify.StatusApproved
			cur.UpdatedAt = at
			return &phoneverify.Update{Save: true, Register: &phoneverify.VerifiedPhone{
				ServiceID: cur.ServiceID, Subject: subject, Phone: cur.To, VerificationID: cur.ID, VerifiedAt: at,
			}}, nil
		})
	if err != nil {
		t.Fatalf("UpdateVerification with Register = %v", err)
	}
}

func testRegistry(t *testing.T, s phoneverify.Store) {
	ctx := t.Context()
	svc := mustService(t, s, "a", false)
	other := mustService(t, s, "b", false)
	const phone1, phone2 = "+9779800000001", "+9779800000002"
	t0 := baseTime()

	_, err := s.VerifiedPhone(ctx, svc.ID, "alice")
	wantCode(t, "VerifiedPhone(none yet)", err, phoneverify.ENotFound)

	v1 := mustStart(t, s, newVerification(svc, phone1, "alice", t0))
	register(t, s, v1, "alice", t0.Add(time.Second))
	got, err := s.VerifiedPhone(ctx, svc.ID, "alice")
	if err != nil {
		t.Fatalf("VerifiedPhone = %v", err)
	}
	want := phoneverify.VerifiedPhone{ServiceID: svc.ID, Subject: "alice", Phone: phone1, VerificationID: v1.ID, VerifiedAt: t0.Add(time.Second)}
	if *got != want {
		t.Errorf("VerifiedPhone = %+v, want %+v", *got, want)
	}
	_, err = s.VerifiedPhone(ctx, other.ID, "alice")
	wantCode(t, "VerifiedPhone(other service)", err, phoneverify.ENotFound)

	// bob also holds phone1 (a service that allows it).
	vb := mustStart(t, s, newVerification(svc, phone1, "bob", t0.Add(2*time.Second)))
	register(t, s, vb, "bob", t0.Add(3*time.Second))

	states := []struct {
		name         string
		key          phoneverify.NumberKey
		subjectPhone string // "" for none
		phoneSubject []string
	}{
		{"carol on phone1", phoneverify.NumberKey{ServiceID: svc.ID, Phone: phone1, Subject: "carol"}, "", []string{"alice", "bob"}},
		{"alice on phone2", phoneverify.NumberKey{ServiceID: svc.ID, Phone: phone2, Subject: "alice"}, phone1, nil},
		{"alice on phone1", phoneverify.NumberKey{ServiceID: svc.ID, Phone: phone1, Subject: "alice"}, phone1, []string{"alice", "bob"}},
		{"no subject on phone1", phoneverify.NumberKey{ServiceID: svc.ID, Phone: phone1}, "", []string{"alice", "bob"}},
		{"alice in other service", phoneverify.NumberKey{ServiceID: other.ID, Phone: phone1, Subject: "alice"}, "", nil},
	}
	checkStates := func(when string) {
		t.Helper()
		for _, tt := range states {
			st := peekState(t, s, tt.key)
			var gotPhone string
			if st.SubjectPhone != nil {
				gotPhone = st.SubjectPhone.Phone
			}
			if gotPhone != tt.subjectPhone {
				t.Errorf("%s, %s: SubjectPhone = %q, want %q", when, tt.name, gotPhone, tt.subjectPhone)
			}
			gotSubjects := slices.Sorted(slices.Values(st.PhoneSubjects))
			if !slices.Equal(gotSubjects, tt.phoneSubject) {
				t.Errorf("%s, %s: PhoneSubjects = %q, want %q", when, tt.name, gotSubjects, tt.phoneSubject)
			}
		}
	}
	checkStates("before alice moves")

	// alice proves phone2: her entry is replaced, and phone1 is bob's alone.
	v2 := mustStart(t, s, newVerification(svc, phone2, "alice", t0.Add(4*time.Second)))
	register(t, s, v2, "alice", t0.Add(5*time.Second))
	got, err = s.VerifiedPhone(ctx, svc.ID, "alice")
	if err != nil || got.Phone != phone2 || got.VerificationID != v2.ID {
		t.Fatalf("VerifiedPhone after re-registering = %+v, %v; want phone2 by %s", got, err, v2.ID)
	}
	states[0].phoneSubject = []string{"bob"}
	states[1].subjectPhone, states[1].phoneSubject = phone2, []string{"alice"}
	states[2].subjectPhone, states[2].phoneSubject = phone2, []string{"bob"}
	states[3].phoneSubject = []string{"bob"}
	checkStates("after alice moves")
}

func testExpireVerifications(t *testing.T, s phoneverify.Store) {
	ctx := t.Context()
	svc := mustService(t, s, "a", false)
	now := baseTime()
	type fixture struct {
		name    string
		status  phoneverify.Status
		expires time.Time
		want    phoneverify.Status
	}
	fixtures := []fixture{
		{"pending, expired before now", phoneverify.StatusPending, now.Add(-time.Second), phoneverify.StatusExpired},
		{"pending, expiring at now", phoneverify.StatusPending, now, phoneverify.StatusExpired},
		{"pending, still valid", phoneverify.StatusPending, now.Add(time.Millisecond), phoneverify.StatusPending},
		{"approved, expired", phoneverify.StatusApproved, now.Add(-time.Hour), phoneverify.StatusApproved},
		{"canceled, expired", phoneverify.StatusCanceled, now.Add(-time.Hour), phoneverify.StatusCanceled},
	}
	ids := make([]string, len(fixtures))
	for i, f := range fixtures {
		v := newVerification(svc, fmt.Sprintf("+97798000000%02d", i), "", now.Add(-time.Hour))
		v.Status = f.status
		v.ExpiresAt = f.expires
		ids[i] = mustStart(t, s, v).ID
	}

	n, err := s.ExpireVerifications(ctx, now)
	if err != nil {
		t.Fatalf("ExpireVerifications = %v", err)
	}
	if n != 2 {
		t.Errorf("ExpireVerifications = %d, want 2", n)
	}
	for i, f := range fixtures {
		v := mustVerification(t, s, svc.ID, ids[i])
		if v.Status != f.want {
			t.Errorf("%s: status = %s, want %s", f.name, v.Status, f.want)
		}
		wantUpdated := now.Add(-time.Hour)
		if f.want != f.status {
			wantUpdated = now
		}
		if !v.UpdatedAt.Equal(wantUpdated) {
			t.Errorf("%s: updated at %v, want %v", f.name, v.UpdatedAt, wantUpdated)
		}
	}
	if n, err := s.ExpireVerifications(ctx, now); err != nil || n != 0 {
		t.Errorf("second ExpireVerifications = %d, %v; want 0, nil", n, err)
	}
}

func testAPIKeys(t *testing.T, s phoneverify.Store) {
	ctx := t.Context()
	svc := mustService(t, s, "a", false)
	if keys, err := s.APIKeys(ctx); err != nil || len(keys) != 0 {
		t.Fatalf("APIKeys on an empty store = %v, %v; want none", keys, err)
	}
	used := baseTime().Add(time.Minute)
	newer := &phoneverify.APIKey{
		ID: newID(), ServiceID: svc.ID, Name: "ci", Prefix: "pv_abc", Hash: newHash(),
		Scopes: []string{"verifications:write", "tokens:read"}, CreatedAt: baseTime(), LastUsedAt: &used,
	}
	older := &phoneverify.APIKey{ID: newID(), ServiceID: svc.ID, Name: "old", Prefix: "pv_old", Hash: newHash(), CreatedAt: baseTime().Add(-time.Hour),
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/32")}}
	for _, k := range []*phoneverify.APIKey{newer, older} {
		if err := s.CreateAPIKey(ctx, k); err != nil {
			t.Fatalf("CreateAPIKey(%s) = %v", k.Name, err)
		}
	}
	got, err := s.APIKeyByHash(ctx, newer.Hash)
	if err != nil {
		t.Fatalf("APIKeyByHash = %v", err)
	}
	if d := diffAPIKey(got, newer); d != "" {
		t.Errorf("APIKeyByHash: %s", d)
	}
	_, err = s.APIKeyByHash(ctx, newHash())
	wantCode(t, "APIKeyByHash(unknown)", err, phoneverify.ENotFound)

	keys, err := s.APIKeys(ctx)
	if err != nil || len(keys) != 2 {
		t.Fatalf("APIKeys = %d keys, %v; want 2", len(keys), err)
	}
	if d := diffAPIKey(keys[0], older) + diffAPIKey(keys[1], newer); d != "" {
		t.Errorf("APIKeys (oldest first): %s", d)
	}

	at := baseTime().Add(time.Hour)
	if err := s.RevokeAPIKey(ctx, newer.ID, at); err != nil {
		t.Fatalf("RevokeAPIKey = %v", err)
	}
	got, err = s.APIKeyByHash(ctx, newer.Hash)
	if err != nil {
		t.Fatalf("APIKeyByHash after revoking = %v", err)
	}
	if got.RevokedAt == nil || !got.RevokedAt.Equal(at) {
		t.Errorf("RevokedAt = %v, want %v", got.RevokedAt, at)
	}
	wantCode(t, "RevokeAPIKey(unknown)", s.RevokeAPIKey(ctx, "nope", at), phoneverify.ENotFound)

	// TouchAPIKey writes only a stale last use: once per interval.
	touches := []struct {
		name            string
		at, staleBefore time.Time
		want            time.Time
	}{
		{"first use", baseTime().Add(2 * time.Hour), baseTime().Add(2*time.Hour - time.Minute), baseTime().Add(2 * time.Hour)},
		{"within the interval", baseTime().Add(2*time.Hour + 30*time.Second), baseTime().Add(2*time.Hour - 30*time.Second), baseTime().Add(2 * time.Hour)},
		{"after the interval", baseTime().Add(2*time.Hour + 61*time.Second), baseTime().Add(2*time.Hour + time.Second), baseTime().Add(2*time.Hour + 61*time.Second)},
	}
	for _, tc := range touches {
		if err := s.TouchAPIKey(ctx, older.ID, tc.at, tc.staleBefore); err != nil {
			t.Fatalf("TouchAPIKey(%s) = %v", tc.name, err)
		}
		got, err := s.APIKeyByHash(ctx, older.Hash)
		if err != nil {
			t.Fatal(err)
		}
		if got.LastUsedAt == nil || !got.LastUsedAt.Equal(tc.want) {
			t.Errorf("%s: LastUsedAt = %v, want %v", tc.name, got.LastUsedAt, tc.want)
		}
	}
	if err := s.TouchAPIKey(ctx, "nope", at, at); err != nil {
		t.Errorf("TouchAPIKey(unknown) = %v, want nil", err)
	}

	dup := *older
	dup.ID = newID()
	wantCode(t, "CreateAPIKey(same hash)", s.CreateAPIKey(ctx, &dup), phoneverify.EConflict)
	orphan := &phoneverify.APIKey{ID: newID(), ServiceID: "nope", Hash: newHash(), CreatedAt: baseTime()}
	wantCode(t, "CreateAPIKey(unknown service)", s.CreateAPIKey(ctx, orphan), phoneverify.ENotFound)
}

func diffAPIKey(got, want *phoneverify.APIKey) string {
	var d []string
	if got.ID != want.ID || got.ServiceID != want.ServiceID || got.Name != want.Name || got.Prefix != want.Prefix {
		d = append(d, fmt.Sprintf("got %s/%s/%s/%s, want %s/%s/%s/%s", got.ID, got.ServiceID, got.Name, got.Prefix,
			want.ID, want.ServiceID, want.Name, want.Prefix))
	}
	if !bytes.Equal(got.Hash, want.Hash) {
		d = append(d, "hash differs")
	}
	if !slices.Equal(got.AllowedIPs, want.AllowedIPs) {
		d = append(d, fmt.Sprintf("allowed IPs: got %v, want %v", got.AllowedIPs, want.AllowedIPs))
	}
	if !slices.Equal(got.Scopes, want.Scopes) {
		d = append(d, fmt.Sprintf("scopes: got %q, want %q", got.Scopes, want.Scopes))
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		d = append(d, fmt.Sprintf("created: got %v, want %v", got.CreatedAt, want.CreatedAt))
	}
	if !equalTimePtr(got.LastUsedAt, want.LastUsedAt) {
		d = append(d, fmt.Sprintf("last used: got %v, want %v", got.LastUsedAt, want.LastUsedAt))
	}
	if !equalTimePtr(got.RevokedAt, want.RevokedAt) {
		d = append(d, fmt.Sprintf("revoked: got %v, want %v", got.RevokedAt, want.RevokedAt))
	}
	return strings.Join(d, "; ")
}

func equalTimePtr(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func newSigningKey(at time.Time) *phoneverify.SigningKey {
	return &phoneverify.SigningKey{ID: newID(), Sealed: newHash(), CreatedAt: at}
}

func signingKeyIDs(keys []*phoneverify.SigningKey) []string {
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	return ids
}

func testSigningKeys(t *testing.T, s phoneverify.Store) {
	ctx := t.Context()
	if keys, err := s.SigningKeys(ctx); err != nil || len(keys) != 0 {
		t.Fatalf("SigningKeys on an empty store = %v, %v; want none", keys, err)
	}
	k1 := newSigningKey(baseTime())
	keys, err := s.EnsureSigningKey(ctx, k1)
	if err != nil {
		t.Fatalf("EnsureSigningKey = %v", err)
	}
	if len(keys) != 1 || keys[0].ID != k1.ID || !bytes.Equal(keys[0].Sealed, k1.Sealed) ||
		!keys[0].CreatedAt.Equal(k1.CreatedAt) || keys[0].RetiredAt != nil {
		t.Errorf("EnsureSigningKey on an empty store = %+v, want just %+v", keys, k1)
	}
	keys, err = s.EnsureSigningKey(ctx, newSigningKey(baseTime().Add(time.Second)))
	if err != nil {
		t.Fatalf("second EnsureSigningKey = %v", err)
	}
	if got, want := signingKeyIDs(keys), []string{k1.ID}; !slices.Equal(got, want) {
		t.Errorf("second EnsureSigningKey = %v, want %v (no new key)", got, want)
	}

	k2 := newSigningKey(baseTime().Add(time.Hour))
	if err := s.AddSigningKey(ctx, k2); err != nil {
		t.Fatalf("AddSigningKey = %v", err)
	}
	k3 := newSigningKey(baseTime().Add(2 * time.Hour))
	if err := s.AddSigningKey(ctx, k3); err != nil {
		t.Fatalf("AddSigningKey = %v", err)
	}
	keys, err = s.SigningKeys(ctx)
	if err != nil {
		t.Fatalf("SigningKeys = %v", err)
	}
	if got, want := signingKeyIDs(keys), []string{k1.ID, k2.ID, k3.ID}; !slices.Equal(got, want) {
		t.Fatalf("SigningKeys = %v, want %v (oldest first)", got, want)
	}
	// Each key retired when the next one came; k1 keeps its first
	// retirement.
	wantRetired := []*time.Time{&k2.CreatedAt, &k3.CreatedAt, nil}
	for i, k := range keys {
		if !equalTimePtr(k.RetiredAt, wantRetired[i]) {
			t.Errorf("key %d RetiredAt = %v, want %v", i, k.RetiredAt, wantRetired[i])
		}
	}
	wantCode(t, "AddSigningKey(same id)", s.AddSigningKey(ctx, k3), phoneverify.EConflict)
}

// testConcurrentChecks hammers one verification with 200 checks at once:
// the attempt count never passes the limit and at most one check approves.
func testConcurrentChecks(t *testing.T, a, b phoneverify.Store) {
	tests := []struct {
		name        string
		maxAttempts int
		correct     func(i int) bool
	}{
		{"all wrong", 5, func(int) bool { return false }},
		{"half correct", 5, func(i int) bool { return (i/2)%2 == 1 }},
		{"half correct, many attempts", 100, func(i int) bool { return (i/3)%2 == 1 }},
	}
	svc := mustService(t, a, "a", false)
	for n, tt := range tests {
		v := newVerification(svc, fmt.Sprintf("+97798000000%02d", n), "", baseTime())
		v.MaxAttempts = tt.maxAttempts
		mustStart(t, a, v)

		const checks = 200
		var (
			wg                   sync.WaitGroup
			successes, approvals atomic.Int32
			errs                 = make(chan error, checks)
		)
		for i := range checks {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Go(func() {
				got, err := s.UpdateVerification(t.Context(), phoneverify.VerificationRef{ServiceID: svc.ID, ID: v.ID},
					func(cur *phoneverify.Verification) (*phoneverify.Update, error) {
						if cur.Attempts >= cur.MaxAttempts || cur.Status != phoneverify.StatusPending {
							return nil, errRefused
						}
						cur.Attempts++
						if tt.correct(i) {
							cur.Status = phoneverify.StatusApproved
						}
						return &phoneverify.Update{Save: true}, nil
					})
				switch {
				case errors.Is(err, errRefused):
				case err != nil:
					errs <- err
				default:
					successes.Add(1)
					if got.Status == phoneverify.StatusApproved {
						approvals.Add(1)
					}
					if got.Attempts > got.MaxAttempts {
						errs <- fmt.Errorf("a check saved %d attempts of %d", got.Attempts, got.MaxAttempts)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("%s: %v", tt.name, err)
		}

		final := mustVerification(t, a, svc.ID, v.ID)
		if final.Attempts > final.MaxAttempts {
			t.Errorf("%s: %d attempts saved, want at most %d", tt.name, final.Attempts, final.MaxAttempts)
		}
		if got, want := int(successes.Load()), final.Attempts; got != want {
			t.Errorf("%s: %d checks counted, but %d attempts saved", tt.name, got, want)
		}
		wantApprovals := 0
		if final.Status == phoneverify.StatusApproved {
			wantApprovals = 1
		}
		if got := int(approvals.Load()); got != wantApprovals {
			t.Errorf("%s: %d checks approved, final status %s; want %d", tt.name, got, final.Status, wantApprovals)
		}
		if tt.name == "all wrong" && (final.Attempts != final.MaxAttempts || final.Status != phoneverify.StatusPending) {
			t.Errorf("%s: final %d attempts, status %s; want %d, pending", tt.name, final.Attempts, final.Status, final.MaxAttempts)
		}
	}
}

// testConcurrentApprovalCountsConversionOnce runs many checks of one
// verification at once, the one that reaches the approving attempt asking
// for its fraud conversion to be counted ([phoneverify.Update] Conversion).
// Checks that lose a race make a store run apply again (PostgreSQL's
// optimistic swaps), so more than one run may ask; only the run that is
// saved may count: the prefix, country and address counters each gain
// exactly one conversion. Stores that count no conversions in updates skip
// it.
func testConcurrentApprovalCountsConversionOnce(t *testing.T, a, b phoneverify.Store) {
	fs, ok := a.(phoneverify.FraudStore)
	cc, ok2 := a.(phoneverify.ConversionCounter)
	if !ok || !ok2 || !cc.CountsConversions() {
		t.Skip("the store counts no conversions in UpdateVerification")
	}
	tests := []struct {
		name    string
		subject string // registers the phone too: another write path
	}{
		{"no subject", ""},
		{"subject", "user-1"},
	}
	for n, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := mustService(t, a, "a", false)
			at := baseTime()
			v := newVerification(svc, fmt.Sprintf("+97798000000%02d", n), tt.subject, at)
			v.MaxAttempts = 100
			mustStart(t, a, v)
			const ip = "203.0.113.9"
			sendKeys := []phoneverify.FraudKey{
				{Scope: phoneverify.FraudScopePrefix, Key: "+977980"},
				{Scope: phoneverify.FraudScopeCountry, Key: "NP"},
			}
			if err := fs.CountFraud(t.Context(), svc.ID, sendKeys, phoneverify.FraudCounts{Sends: 1}, at, v.ID, ip); err != nil {
				t.Fatalf("CountFraud = %v", err)
			}

			const checks, approvingAttempt = 24, 12
			var (
				wg                      sync.WaitGroup
				approvingRuns, approved atomic.Int32
				errs                    = make(chan error, checks)
			)
			for i := range checks {
				s := a
				if i%2 == 1 {
					s = b
				}
				wg.Go(func() {
					got, err := s.UpdateVerification(t.Context(), phoneverify.VerificationRef{ServiceID: svc.ID, ID: v.ID},
						func(cur *phoneverify.Verification) (*phoneverify.Update, error) {
							if cur.Status != phoneverify.StatusPending {
								return nil, errRefused
							}
							cur.Attempts++
							cur.UpdatedAt = at.Add(time.Duration(cur.Attempts) * time.Millisecond)
							if cur.Attempts < approvingAttempt {
								return &phoneverify.Update{Save: true}, nil
							}
							approvingRuns.Add(1)
							cur.Status = phoneverify.StatusApproved
							up := &phoneverify.Update{Save: true,
								Conversion: &phoneverify.FraudConversion{Prefix: "+977980", Country: "NP", At: at}}
							if cur.Subject != "" {
								up.Register = &phoneverify.VerifiedPhone{ServiceID: svc.ID, Subject: cur.Subject,
									Phone: cur.To, VerificationID: cur.ID, VerifiedAt: at}
							}
							return up, nil
						})
					switch {
					case errors.Is(err, errRefused):
					case err != nil:
						errs <- err
					case got.Status == phoneverify.StatusApproved:
						approved.Add(1)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			t.Logf("%d runs of apply asked to count the conversion", approvingRuns.Load())
			if got := approved.Load(); got != 1 {
				t.Errorf("%d checks approved, want 1", got)
			}
			st, err := fs.FraudState(t.Context(), phoneverify.FraudQuery{ServiceID: svc.ID, Prefix: "+977980", Country: "NP",
				IP: ip, Since: at.Add(-time.Hour), HistorySince: at.Add(-24 * time.Hour), Now: at})
			if err != nil {
				t.Fatalf("FraudState = %v", err)
			}
			want := phoneverify.FraudCounts{Sends: 1, Conversions: 1}
			if st.Prefix != want || st.Country != want || st.IPConversions != 1 {
				t.Errorf("prefix %+v, country %+v, address conversions %d; want %+v each and 1",
					st.Prefix, st.Country, st.IPConversions, want)
			}
		})
	}
}

// testConcurrentStarts runs 20 starts for one number at once: they take
// turns, leaving exactly one pending verification and a consistent count.
func testConcurrentStarts(t *testing.T, a, b phoneverify.Store) {
	tests := []struct {
		name string
		// replace closes the pending verification and inserts a new one
		// instead of resending.
		replace bool
	}{
		{"resend", false},
		{"replace", true},
	}
	svc := mustService(t, a, "a", false)
	for n, tt := range tests {
		phone := fmt.Sprintf("+97798000000%02d", n)
		key := phoneverify.NumberKey{ServiceID: svc.ID, Phone: phone}
		now := baseTime()
		decide := func(st *phoneverify.StartState) (*phoneverify.StartResult, error) {
			sends := append(slices.Clone(st.Sends), now)
			if st.Latest == nil || st.Latest.Status != phoneverify.StatusPending {
				return &phoneverify.StartResult{Save: newVerification(svc, phone, "", now), Sends: sends}, nil
			}
			if tt.replace {
				closed := *st.Latest
				closed.Status = phoneverify.StatusCanceled
				next := newVerification(svc, phone, "", now)
				next.SendCount = st.Latest.SendCount + 1
				return &phoneverify.StartResult{Close: &closed, Save: next, Sends: sends}, nil
			}
			resent := *st.Latest
			resent.SendCount++
			resent.CodeHash = newHash()
			return &phoneverify.StartResult{Save: &resent, Sends: sends}, nil
		}

		const starts = 20
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			ids  = map[string]bool{}
			errs = make(chan error, starts)
		)
		for i := range starts {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Go(func() {
				v, err := s.StartVerification(t.Context(), key, decide)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				ids[v.ID] = true
				mu.Unlock()
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("%s: StartVerification = %v", tt.name, err)
		}

		wantIDs := 1
		if tt.replace {
			wantIDs = starts
		}
		if len(ids) != wantIDs {
			t.Errorf("%s: starts returned %d verifications, want %d", tt.name, len(ids), wantIDs)
		}
		pending := 0
		for id := range ids {
			if mustVerification(t, a, svc.ID, id).Status == phoneverify.StatusPending {
				pending++
			}
		}
		if pending != 1 {
			t.Errorf("%s: %d pending verifications, want 1", tt.name, pending)
		}
		st := peekState(t, b, key)
		if len(st.Sends) != starts {
			t.Errorf("%s: %d sends recorded, want %d", tt.name, len(st.Sends), starts)
		}
		if st.Latest == nil || st.Latest.Status != phoneverify.StatusPending || st.Latest.SendCount != starts {
			t.Errorf("%s: latest = %+v, want pending with send count %d", tt.name, st.Latest, starts)
		}
	}
}

// testConcurrentEnsureSigningKey races ten first starts: exactly one key
// wins and every caller sees it.
func testConcurrentEnsureSigningKey(t *testing.T, a, b phoneverify.Store) {
	const callers = 10
	var (
		wg      sync.WaitGroup
		results = make([][]*phoneverify.SigningKey, callers)
		errs    = make([]error, callers)
	)
	for i := range callers {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			results[i], errs[i] = s.EnsureSigningKey(t.Context(), newSigningKey(baseTime()))
		})
	}
	wg.Wait()
	keys, err := a.SigningKeys(t.Context())
	if err != nil {
		t.Fatalf("SigningKeys = %v", err)
	}
	if len(keys) != 1 {
		t.Fatalf("%d signing keys after concurrent EnsureSigningKey, want 1", len(keys))
	}
	for i := range callers {
		if errs[i] != nil {
			t.Errorf("caller %d: EnsureSigningKey = %v", i, errs[i])
			continue
		}
		if got, want := signingKeyIDs(results[i]), []string{keys[0].ID}; !slices.Equal(got, want) {
			t.Errorf("caller %d: EnsureSigningKey = %v, want %v", i, got, want)
		}
	}
}

// testUpdateServiceWithFeaturesStaleRead: where the store keeps features,
// the service and its features are written together under the same
// unchanged-since-read condition, so an update read before a change of
// features, or before the service's deletion, is refused and undoes
// neither; and saving features never clears a deletion.
func testUpdateServiceWithFeaturesStaleRead(t *testing.T, s phoneverify.Store) {
	x, ok := s.(phoneverify.ExtrasStore)
	if !ok {
		t.Skip("the store is not an ExtrasStore")
	}
	ctx := t.Context()
	svc := mustService(t, s, "featured", false)
	stale := *svc

	// One update (features included) lands; another read before it is refused.
	first := *svc
	first.Name = "first"
	if err := x.UpdateServiceWithFeatures(ctx, &first, &phoneverify.ServiceFeatures{ServiceID: svc.ID, LookupEnabled: true}, svc.UpdatedAt); err != nil {
		t.Fatalf("UpdateServiceWithFeatures = %v", err)
	}
	stale.Name = "stale"
	wantCode(t, "UpdateServiceWithFeatures(stale read)",
		x.UpdateServiceWithFeatures(ctx, &stale, &phoneverify.ServiceFeatures{ServiceID: svc.ID, PSD2Enabled: true}, svc.UpdatedAt), phoneverify.EConflict)
	f, err := x.ServiceFeatures(ctx, svc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !f.LookupEnabled || f.PSD2Enabled {
		t.Errorf("features after a refused stale update = %+v, want the first update's (lookup on, PSD2 off)", f)
	}
	if got, _ := s.Service(ctx, svc.ID); got == nil || got.Name != "first" {
		t.Errorf("service after a refused stale update = %+v, want the first update's name", got)
	}

	// A deletion is a change too: an update read before it is refused, and
	// saving features does not bring the service back.
	read, err := s.Service(ctx, svc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := x.DeleteService(ctx, svc.ID, read.UpdatedAt); err != nil {
		t.Fatalf("DeleteService = %v", err)
	}
	if after, _ := s.Service(ctx, svc.ID); after == nil || !after.UpdatedAt.After(read.UpdatedAt) {
		t.Errorf("UpdatedAt after DeleteService stamped with the same time: %+v, want after %v", after, read.UpdatedAt)
	}
	read.Name = "undeleted?"
	wantCode(t, "UpdateServiceWithFeatures(read before the deletion)",
		x.UpdateServiceWithFeatures(ctx, read, &phoneverify.ServiceFeatures{ServiceID: svc.ID}, read.UpdatedAt), phoneverify.EConflict)
	if err := x.SaveServiceFeatures(ctx, &phoneverify.ServiceFeatures{ServiceID: svc.ID, DoNotShareWarning: true}); err != nil {
		t.Fatalf("SaveServiceFeatures = %v", err)
	}
	if f, err := x.ServiceFeatures(ctx, svc.ID); err != nil || f.DeletedAt == nil {
		t.Errorf("features after saving them on a deleted service = %+v, %v; want it still deleted", f, err)
	}
}
