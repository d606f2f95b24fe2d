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

func (s *racingStore) UpdateService(ctx context.Context, svc *pv.Service, readAt time.Time) error {
	s.once.Do(func() { s.between(ctx) })
	return s.Store.UpdateService(ctx, svc, readAt)
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
