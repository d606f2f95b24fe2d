package twilioapi_test

import (
	"context"
	"sync"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/store"
	"github.com/phoneverify/phoneverify/verify"
)

// racingStore runs between, once, just before the first service update it
// is asked to write: a change that lands between an update's read and its
// write.
type racingStore struct {
	*store.Store
	once    sync.Once
	between func(context.Context)
}

func (s *racingStore) UpdateServiceWithFeatures(ctx context.Context, svc *pv.Service, f *pv.ServiceFeatures, readAt time.Time) error {
	s.once.Do(func() { s.between(ctx) })
	return s.Store.UpdateServiceWithFeatures(ctx, svc, f, readAt)
}

// TestUpdateServiceKeepsConcurrentLimits: a Twilio service update (POST
// /v2/Services/{sid}) that read the service before a limits change landed
// keeps that change, and still makes its own.
func TestUpdateServiceKeepsConcurrentLimits(t *testing.T) {
	var rs *racingStore
	e := newEnv(t, func(c *verify.Config) {
		rs = &racingStore{Store: c.Store.(*store.Store)}
		c.Store = rs
	})
	sid := e.engine.DefaultServiceID()
	limits := pv.ServiceLimits{DenyCountries: []string{"CU"}, PerIP: &pv.Limit{Max: 7, Window: time.Minute}}
	rs.between = func(ctx context.Context) {
		if err := rs.Store.UpdateServiceLimits(ctx, sid, &limits, time.Now()); err != nil {
			t.Errorf("UpdateServiceLimits = %v", err)
		}
	}

	r := e.do(t, "POST", "/v2/Services/"+sid, "FriendlyName=Renamed&CodeLength=8")
	if r.status != 200 {
		t.Fatalf("update: %d %s", r.status, r.raw)
	}
	got, err := e.store.Service(t.Context(), sid)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "Renamed" || got.CodeLength != 8 {
		t.Errorf("after the update: name %q, code length %d; want Renamed, 8", got.Name, got.CodeLength)
	}
	if len(got.Limits.DenyCountries) != 1 || got.Limits.PerIP == nil || got.Limits.PerIP.Max != 7 {
		t.Errorf("after the update: limits %+v; want the concurrent limits change kept", got.Limits)
	}
}

// TestUpdateServiceKeepsConcurrentChanges: a Twilio service update that read
// the service before another change of its features, or before its
// deletion, keeps that change: the features set in between stay set, and a
// deleted service stays deleted (the update answers 404).
func TestUpdateServiceKeepsConcurrentChanges(t *testing.T) {
	t.Run("features", func(t *testing.T) {
		var rs *racingStore
		e := newEnv(t, func(c *verify.Config) {
			rs = &racingStore{Store: c.Store.(*store.Store)}
			c.Store = rs
		})
		sid := e.engine.DefaultServiceID()
		rs.between = func(ctx context.Context) {
			f, err := rs.Store.ServiceFeatures(ctx, sid)
			if err != nil {
				t.Error(err)
				return
			}
			f.LookupEnabled = true
			svc, err := rs.Store.Service(ctx, sid)
			if err != nil {
				t.Error(err)
				return
			}
			if err := rs.Store.UpdateServiceWithFeatures(ctx, svc, f, svc.UpdatedAt); err != nil {
				t.Errorf("concurrent update = %v", err)
			}
		}
		if r := e.do(t, "POST", "/v2/Services/"+sid, "Psd2Enabled=true"); r.status != 200 {
			t.Fatalf("update: %d %s", r.status, r.raw)
		}
		f, err := e.store.ServiceFeatures(t.Context(), sid)
		if err != nil {
			t.Fatal(err)
		}
		if !f.LookupEnabled || !f.PSD2Enabled {
			t.Errorf("features = %+v; want both the concurrent change (lookup) and the update's own (PSD2)", f)
		}
	})
	t.Run("deletion", func(t *testing.T) {
		var rs *racingStore
		e := newEnv(t, func(c *verify.Config) {
			rs = &racingStore{Store: c.Store.(*store.Store)}
			c.Store = rs
		})
		r := e.do(t, "POST", "/v2/Services", "FriendlyName=Doomed")
		if r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.raw)
		}
		sid := r.str("sid")
		rs.between = func(ctx context.Context) {
			if err := rs.Store.DeleteService(ctx, sid, time.Now()); err != nil {
				t.Errorf("DeleteService = %v", err)
			}
		}
		if r := e.do(t, "POST", "/v2/Services/"+sid, "FriendlyName=Revived"); r.status != 404 {
			t.Errorf("update of a service deleted since its read: %d %s, want 404", r.status, r.raw)
		}
		if _, _, err := e.engine.ServiceWithFeatures(t.Context(), sid); pv.ErrorCode(err) != pv.ENotFound {
			t.Errorf("after the update, ServiceWithFeatures = %v; want the service still deleted (not_found)", err)
		}
	})
}
