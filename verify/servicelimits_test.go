package verify_test

import (
	"context"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/internal/testenv"
	"github.com/phoneverify/phoneverify/store"
	"github.com/phoneverify/phoneverify/verify"
)

// TestSetServiceLimits: the limits are replaced as a whole, read back as
// saved, and in force at once; a bad change is refused naming the field and
// writes nothing.
func TestSetServiceLimits(t *testing.T) { forEachStore(t, testSetServiceLimits) }

func testSetServiceLimits(t *testing.T, dbURL string) {
	defaults := verify.StartLimits{PerIP: pv.Limit{Max: 30, Window: time.Hour}, PerNumberDay: pv.Limit{Max: 10, Window: 24 * time.Hour}}
	// A long service cache: the node that saves must not wait for it.
	h := newHarnessOn(t, dbURL, nil, withLimits(defaults), func(c *verify.Config, _ *testenv.Clock) { c.ServiceCacheTTL = time.Hour })
	ctx := context.Background()
	if _, err := h.e.Service(ctx, h.svc.ID); err != nil { // cached now
		t.Fatal(err)
	}

	h.clock.Advance(time.Minute)
	svc, eff, err := h.e.SetServiceLimits(ctx, h.svc.ID, pv.ServiceLimits{
		PerIP: lim(1, time.Hour), PerSubject: &pv.Limit{}, BudgetDay: lim(100, 24*time.Hour),
		DenyCountries: []string{" np", "IN", "NP"},
	})
	if err != nil {
		t.Fatalf("SetServiceLimits = %v", err)
	}
	want := pv.ServiceLimits{PerIP: lim(1, time.Hour), PerSubject: &pv.Limit{}, BudgetDay: lim(100, 24*time.Hour), DenyCountries: []string{"NP", "IN"}}
	if !reflect.DeepEqual(svc.Limits, want) {
		t.Errorf("saved limits %+v, want %+v", svc.Limits, want)
	}
	if !svc.UpdatedAt.Equal(h.clock.Now()) || svc.Name != h.svc.Name || svc.MaxSends != h.svc.MaxSends {
		t.Errorf("service after SetServiceLimits: %+v", svc)
	}
	wantEff := defaults
	wantEff.PerIP, wantEff.BudgetDay = pv.Limit{Max: 1, Window: time.Hour}, pv.Limit{Max: 100, Window: 24 * time.Hour}
	if eff != wantEff {
		t.Errorf("effective limits %+v, want %+v", eff, wantEff)
	}
	read, readEff, err := h.e.ServiceLimits(ctx, h.svc.ID)
	if err != nil || !reflect.DeepEqual(read.Limits, want) || readEff != wantEff {
		t.Errorf("ServiceLimits = %+v, %+v, %v", read, readEff, err)
	}

	// In force on this node at once, despite its cache, and on another
	// node sharing the database and the limiter (whose cache holds nothing
	// yet; one that does follows within its ServiceCacheTTL).
	other, err := verify.New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, e := range map[string]*verify.Engine{"this node": h.e, "another node": other} {
		_, err := e.Start(ctx, verify.StartRequest{ServiceID: h.svc.ID, To: "+9779812345678"})
		if pv.ErrorCode(err) != pv.ECountryNotAllowed {
			t.Errorf("%s: start to a denied country = %v, want country_not_allowed", name, err)
		}
	}
	if _, err := h.e.Start(ctx, verify.StartRequest{ServiceID: h.svc.ID, To: "+12015550123", ClientIP: "198.51.100.1"}); err != nil {
		t.Fatalf("first start from an address: %v", err)
	}
	_, err = other.Start(ctx, verify.StartRequest{ServiceID: h.svc.ID, To: "+12015550124", ClientIP: "198.51.100.1"})
	if pv.ErrorCode(err) != pv.ETooManyRequests {
		t.Errorf("second start from the address = %v, want too_many_requests (per_ip 1/1h)", err)
	}

	bad := []struct {
		name  string
		l     pv.ServiceLimits
		param string
	}{
		{"zero count", pv.ServiceLimits{PerIP: lim(0, time.Hour)}, "per_ip"},
		{"count too large", pv.ServiceLimits{FailedChecks: lim(pv.MaxLimitEvents+1, time.Hour)}, "failed_checks"},
		{"window too short", pv.ServiceLimits{PerCountry: lim(5, time.Microsecond)}, "per_country"},
		{"hourly budget over a day", pv.ServiceLimits{BudgetHour: lim(5, 24*time.Hour)}, "budget_hour"},
		{"both lists", pv.ServiceLimits{AllowCountries: []string{"NP"}, DenyCountries: []string{"IN"}}, "allow_countries"},
		{"not a code", pv.ServiceLimits{AllowCountries: []string{"Nepal"}}, "allow_countries"},
		{"unknown country", pv.ServiceLimits{DenyCountries: []string{"UK"}}, "deny_countries"},
		{"good limit, bad list", pv.ServiceLimits{PerIP: &pv.Limit{}, DenyCountries: []string{"ZZ"}}, "deny_countries"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := h.e.SetServiceLimits(ctx, h.svc.ID, tt.l)
			if e := wantCode(t, err, pv.EInvalidRequest); e.Param != tt.param {
				t.Errorf("param %q, want %q", e.Param, tt.param)
			}
			if got, _, _ := h.e.ServiceLimits(ctx, h.svc.ID); !reflect.DeepEqual(got.Limits, want) {
				t.Errorf("limits after a refused change: %+v, want %+v", got.Limits, want)
			}
		})
	}

	// The zero ServiceLimits puts every limit back to the default.
	svc, eff, err = h.e.SetServiceLimits(ctx, h.svc.ID, pv.ServiceLimits{})
	if err != nil || !reflect.DeepEqual(svc.Limits, pv.ServiceLimits{}) || eff != defaults {
		t.Errorf("SetServiceLimits(zero) = %+v, %+v, %v", svc.Limits, eff, err)
	}

	for _, id := range []string{"VA" + "0123456789abcdef0123456789abcdef", "nonsense", ""} {
		_, _, err := h.e.SetServiceLimits(ctx, id, pv.ServiceLimits{})
		if e := wantCode(t, err, pv.ENotFound); e.Param != "id" {
			t.Errorf("SetServiceLimits(%q): param %q, want id", id, e.Param)
		}
		_, _, err = h.e.ServiceLimits(ctx, id)
		wantCode(t, err, pv.ENotFound)
	}
	gone := pv.NewService("Gone")
	if err := h.e.CreateService(ctx, gone, &pv.ServiceFeatures{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.e.ServiceLimits(ctx, gone.ID); err != nil {
		t.Fatalf("ServiceLimits(another service) = %v", err)
	}
	if err := h.e.DeleteService(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	_, _, err = h.e.SetServiceLimits(ctx, gone.ID, pv.ServiceLimits{})
	wantCode(t, err, pv.ENotFound)
}

// plainStore hides every optional interface of the store it wraps.
type plainStore struct{ pv.Store }

// TestSetServiceLimitsWithoutLimitsStore: a store that cannot replace the
// limits alone gets them through UpdateService, other settings kept.
func TestSetServiceLimitsWithoutLimitsStore(t *testing.T) {
	h := newHarness(t, func(s *pv.Service) { s.MaxAttempts = 7 })
	cfg := h.cfg
	cfg.Store = plainStore{h.store}
	e, err := verify.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	svc, _, err := e.SetServiceLimits(context.Background(), h.svc.ID, pv.ServiceLimits{AllowCountries: []string{"gb"}})
	if err != nil {
		t.Fatalf("SetServiceLimits = %v", err)
	}
	if !slices.Equal(svc.Limits.AllowCountries, []string{"GB"}) || svc.MaxAttempts != 7 || svc.Name != h.svc.Name {
		t.Errorf("service after SetServiceLimits: %+v", svc)
	}
}

// pausingServiceStore holds the first armed service read, after it has
// read the store, until released: a start in flight across a change.
type pausingServiceStore struct {
	*store.Store
	armed   atomic.Bool
	read    chan struct{}
	release chan struct{}
}

func (p *pausingServiceStore) Service(ctx context.Context, id string) (*pv.Service, error) {
	svc, err := p.Store.Service(ctx, id)
	if p.armed.CompareAndSwap(true, false) {
		p.read <- struct{}{}
		<-p.release
	}
	return svc, err
}

// TestServiceReadAcrossLimitsChange: a service read that began before a
// limits change made here must not put the old limits back in the cache,
// or this node would keep applying them for the cache's lifetime.
func TestServiceReadAcrossLimitsChange(t *testing.T) {
	p := &pausingServiceStore{read: make(chan struct{}), release: make(chan struct{})}
	h := newHarness(t, nil, func(c *verify.Config, _ *testenv.Clock) {
		p.Store = c.Store.(*store.Store)
		c.Store = p
		c.ServiceCacheTTL = time.Hour
	})
	ctx := context.Background()
	p.armed.Store(true)
	done := make(chan error)
	go func() { _, err := h.e.Service(ctx, h.svc.ID); done <- err }()
	<-p.read // the old settings are read, not yet cached
	if _, _, err := h.e.SetServiceLimits(ctx, h.svc.ID, pv.ServiceLimits{DenyCountries: []string{"NP"}}); err != nil {
		t.Fatal(err)
	}
	close(p.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	svc, err := h.e.Service(ctx, h.svc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(svc.Limits.DenyCountries, []string{"NP"}) {
		t.Errorf("deny list after the change = %v, want [NP]: the read in flight cached the old settings", svc.Limits.DenyCountries)
	}
}
