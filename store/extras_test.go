package store_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/store"
)

// extrasFixture is a migrated store with one service and two
// verifications, one approved.
type extrasFixture struct {
	s        *store.Store
	svc      *phoneverify.Service
	approved *phoneverify.Verification
	pending  *phoneverify.Verification
	now      time.Time
}

func hexID(prefix string, n int) string { return fmt.Sprintf("%s%032x", prefix, n) }

func newExtrasFixture(t *testing.T, url string) *extrasFixture {
	t.Helper()
	ctx := t.Context()
	s := MustOpenMigrated(t, url, testOptions)
	now := time.UnixMilli(1_700_000_000_000).UTC()
	svc := phoneverify.NewService("Extras")
	svc.ID, svc.CreatedAt, svc.UpdatedAt = hexID("VA", 1), now, now
	if err := s.CreateService(ctx, svc); err != nil {
		t.Fatal(err)
	}
	f := &extrasFixture{s: s, svc: svc, now: now}
	for i, phone := range []string{"+9779812345601", "+9779812345602"} {
		v, err := s.StartVerification(ctx, phoneverify.NumberKey{ServiceID: svc.ID, Phone: phone},
			func(*phoneverify.StartState) (*phoneverify.StartResult, error) {
				return &phoneverify.StartResult{Save: &phoneverify.Verification{ID: hexID("VE", i+1), ServiceID: svc.ID, To: phone,
					Country: "NP", Channel: phoneverify.ChannelSMS, Status: phoneverify.StatusPending, SendCount: 1, MaxAttempts: 5,
					CodeHash: []byte{1}, ExpiresAt: now.Add(time.Minute), CreatedAt: now, UpdatedAt: now}}, nil
			})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RecordSendAttempt(ctx, &phoneverify.SendAttempt{ID: hexID("VL", i+1), VerificationID: v.ID, ServiceID: svc.ID,
			Channel: phoneverify.ChannelSMS, Phone: phone, Country: "NP", CreatedAt: now.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			v, err = s.UpdateVerification(ctx, phoneverify.VerificationRef{ServiceID: svc.ID, ID: v.ID},
				func(v *phoneverify.Verification) (*phoneverify.Update, error) {
					v.Status = phoneverify.StatusApproved
					return &phoneverify.Update{Save: true}, nil
				})
			if err != nil {
				t.Fatal(err)
			}
			f.approved = v
		} else {
			f.pending = v
		}
	}
	return f
}

func TestExtras(t *testing.T) {
	t.Parallel()
	for _, d := range dialects() {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			t.Run("Features", func(t *testing.T) { t.Parallel(); testFeatures(t, newExtrasFixture(t, d.url(t))) })
			t.Run("RateLimits", func(t *testing.T) { t.Parallel(); testRateLimits(t, newExtrasFixture(t, d.url(t))) })
			t.Run("Attempts", func(t *testing.T) { t.Parallel(); testAttempts(t, newExtrasFixture(t, d.url(t))) })
			t.Run("SafeList", func(t *testing.T) { t.Parallel(); testSafeList(t, newExtrasFixture(t, d.url(t))) })
		})
	}
}

func testFeatures(t *testing.T, f *extrasFixture) {
	ctx := t.Context()
	got, err := f.s.ServiceFeatures(ctx, f.svc.ID)
	if err != nil || got.ServiceID != f.svc.ID || got.PSD2Enabled || got.DeletedAt != nil {
		t.Fatalf("features of a new service = %+v, %v; want the zero value", got, err)
	}
	if _, err := f.s.ServiceFeatures(ctx, hexID("VA", 99)); phoneverify.ErrorCode(err) != phoneverify.ENotFound {
		t.Errorf("features of an unknown service: got %v, want not_found", err)
	}
	want := &phoneverify.ServiceFeatures{ServiceID: f.svc.ID, LookupEnabled: true, PSD2Enabled: true, CustomCodeEnabled: true,
		DoNotShareWarning: true, SkipSMSToLandlines: true, Echo: map[string]string{"TtsName": "alice"}}
	if err := f.s.SaveServiceFeatures(ctx, want); err != nil {
		t.Fatal(err)
	}
	got, err = f.s.ServiceFeatures(ctx, f.svc.ID)
	if err != nil || !got.LookupEnabled || !got.PSD2Enabled || !got.CustomCodeEnabled || !got.DoNotShareWarning ||
		!got.SkipSMSToLandlines || got.Echo["TtsName"] != "alice" {
		t.Fatalf("got %+v, %v; want %+v", got, err, want)
	}
	if err := f.s.SaveServiceFeatures(ctx, &phoneverify.ServiceFeatures{ServiceID: hexID("VA", 99)}); phoneverify.ErrorCode(err) != phoneverify.ENotFound {
		t.Errorf("save for an unknown service: got %v, want not_found", err)
	}
	key := &phoneverify.APIKey{ID: hexID("KY", 1), ServiceID: f.svc.ID, Hash: []byte("h"), CreatedAt: f.now}
	if err := f.s.CreateAPIKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := f.s.DeleteService(ctx, f.svc.ID, f.now); err != nil {
		t.Fatal(err)
	}
	got, err = f.s.ServiceFeatures(ctx, f.svc.ID)
	if err != nil || got.DeletedAt == nil || !got.DeletedAt.Equal(f.now) || !got.PSD2Enabled {
		t.Errorf("after delete: %+v, %v; want deleted_at set and settings kept", got, err)
	}
	if k, err := f.s.APIKeyByHash(ctx, []byte("h")); err != nil || k.RevokedAt == nil {
		t.Errorf("the deleted service's key: %+v, %v; want revoked", k, err)
	}
}

func testRateLimits(t *testing.T, f *extrasFixture) {
	ctx := t.Context()
	rl := &phoneverify.RateLimit{ID: hexID("RK", 1), ServiceID: f.svc.ID, UniqueName: "ip", Description: "d", CreatedAt: f.now, UpdatedAt: f.now}
	if err := f.s.CreateRateLimit(ctx, rl); err != nil {
		t.Fatal(err)
	}
	dup := *rl
	dup.ID = hexID("RK", 2)
	if err := f.s.CreateRateLimit(ctx, &dup); phoneverify.ErrorCode(err) != phoneverify.EConflict {
		t.Errorf("duplicate unique name: got %v, want conflict", err)
	}
	rl.Description = "per IP"
	if err := f.s.UpdateRateLimit(ctx, rl); err != nil {
		t.Fatal(err)
	}
	if got, err := f.s.RateLimit(ctx, f.svc.ID, rl.ID); err != nil || got.Description != "per IP" {
		t.Errorf("rate limit = %+v, %v", got, err)
	}
	b := &phoneverify.Bucket{ID: hexID("BL", 1), RateLimitID: rl.ID, ServiceID: f.svc.ID, Max: 2, Interval: time.Minute, CreatedAt: f.now, UpdatedAt: f.now}
	if err := f.s.CreateBucket(ctx, b); err != nil {
		t.Fatal(err)
	}
	orphan := *b
	orphan.ID, orphan.RateLimitID = hexID("BL", 2), hexID("RK", 9)
	if err := f.s.CreateBucket(ctx, &orphan); phoneverify.ErrorCode(err) != phoneverify.ENotFound {
		t.Errorf("bucket of an unknown rate limit: got %v, want not_found", err)
	}
	tests := []struct {
		name     string
		key      string
		at       time.Duration
		wantFull bool
		wantWait time.Duration
	}{
		{"first", "a", 0, false, 0},
		{"second", "a", 10 * time.Second, false, 0},
		{"third is refused", "a", 20 * time.Second, true, 40 * time.Second},
		{"other key", "b", 20 * time.Second, false, 0},
		{"first leaves the window", "a", 61 * time.Second, false, 0},
		{"full again", "a", 62 * time.Second, true, 8 * time.Second},
	}
	for _, tt := range tests {
		full, wait, err := f.s.HitBuckets(ctx, []phoneverify.BucketHit{{Bucket: b, Key: tt.key}}, f.now.Add(tt.at))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if (full != nil) != tt.wantFull || wait != tt.wantWait {
			t.Errorf("%s: got full %v wait %s, want full %v wait %s", tt.name, full != nil, wait, tt.wantFull, tt.wantWait)
		}
	}

	// Concurrent hits never exceed Max.
	b.Max, b.Interval = 5, time.Hour
	if err := f.s.UpdateBucket(ctx, b); err != nil {
		t.Fatal(err)
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		allowed int
	)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			full, _, err := f.s.HitBuckets(ctx, []phoneverify.BucketHit{{Bucket: b, Key: "c"}}, f.now)
			if err != nil {
				t.Error(err)
				return
			}
			if full == nil {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if allowed != b.Max {
		t.Errorf("concurrent hits allowed %d, want %d", allowed, b.Max)
	}

	if list, err := f.s.Buckets(ctx, f.svc.ID, rl.ID); err != nil || len(list) != 1 || list[0].Max != 5 {
		t.Errorf("buckets = %v, %v", list, err)
	}
	if err := f.s.DeleteRateLimit(ctx, f.svc.ID, rl.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Bucket(ctx, f.svc.ID, rl.ID, b.ID); phoneverify.ErrorCode(err) != phoneverify.ENotFound {
		t.Errorf("bucket after its rate limit was deleted: got %v, want not_found", err)
	}
	if err := f.s.DeleteBucket(ctx, f.svc.ID, rl.ID, b.ID); phoneverify.ErrorCode(err) != phoneverify.ENotFound {
		t.Errorf("delete a deleted bucket: got %v, want not_found", err)
	}
}

func testAttempts(t *testing.T, f *extrasFixture) {
	ctx := t.Context()
	yes, no := true, false
	tests := []struct {
		name   string
		filter phoneverify.AttemptFilter
		want   []string
	}{
		{"all", phoneverify.AttemptFilter{}, []string{hexID("VL", 1), hexID("VL", 2)}},
		{"service", phoneverify.AttemptFilter{ServiceID: f.svc.ID}, []string{hexID("VL", 1), hexID("VL", 2)}},
		{"other service", phoneverify.AttemptFilter{ServiceID: hexID("VA", 9)}, nil},
		{"verification", phoneverify.AttemptFilter{VerificationID: f.pending.ID}, []string{hexID("VL", 2)}},
		{"phone", phoneverify.AttemptFilter{Phone: "+9779812345601"}, []string{hexID("VL", 1)}},
		{"prefix", phoneverify.AttemptFilter{PhonePrefix: "+97798123456"}, []string{hexID("VL", 1), hexID("VL", 2)}},
		{"other prefix", phoneverify.AttemptFilter{PhonePrefix: "+1"}, nil},
		{"country", phoneverify.AttemptFilter{Country: "np"}, []string{hexID("VL", 1), hexID("VL", 2)}},
		{"channel", phoneverify.AttemptFilter{Channel: "call"}, nil},
		{"converted", phoneverify.AttemptFilter{Converted: &yes}, []string{hexID("VL", 1)}},
		{"unconverted", phoneverify.AttemptFilter{Converted: &no}, []string{hexID("VL", 2)}},
		{"after", phoneverify.AttemptFilter{After: f.now}, []string{hexID("VL", 2)}},
		{"before", phoneverify.AttemptFilter{Before: f.now.Add(time.Second)}, []string{hexID("VL", 1)}},
		{"limit", phoneverify.AttemptFilter{Limit: 1}, []string{hexID("VL", 1)}},
		{"offset", phoneverify.AttemptFilter{Limit: 1, Offset: 1}, []string{hexID("VL", 2)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list, err := f.s.SendAttempts(ctx, tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range list {
				got = append(got, a.ID)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	total, converted, err := f.s.CountSendAttempts(ctx, phoneverify.AttemptFilter{ServiceID: f.svc.ID, Limit: 1})
	if err != nil || total != 2 || converted != 1 {
		t.Errorf("count = %d, %d, %v; want 2, 1", total, converted, err)
	}
	a, err := f.s.SendAttempt(ctx, hexID("VL", 1))
	if err != nil || !a.Converted || a.VerificationID != f.approved.ID || a.Phone != "+9779812345601" || !a.CreatedAt.Equal(f.now) {
		t.Errorf("attempt = %+v, %v", a, err)
	}
	if _, err := f.s.SendAttempt(ctx, hexID("VL", 9)); phoneverify.ErrorCode(err) != phoneverify.ENotFound {
		t.Errorf("unknown attempt: got %v, want not_found", err)
	}
}

func testSafeList(t *testing.T, f *extrasFixture) {
	ctx := t.Context()
	n, err := f.s.AddSafeListNumber(ctx, &phoneverify.SafeListNumber{ID: hexID("GN", 1), Phone: "+9779812345601", CreatedAt: f.now})
	if err != nil || n.ID != hexID("GN", 1) {
		t.Fatalf("add = %+v, %v", n, err)
	}
	again, err := f.s.AddSafeListNumber(ctx, &phoneverify.SafeListNumber{ID: hexID("GN", 2), Phone: "+9779812345601", CreatedAt: f.now})
	if err != nil || again.ID != n.ID {
		t.Errorf("adding again = %+v, %v; want the first entry", again, err)
	}
	if got, err := f.s.SafeListNumber(ctx, "+9779812345601"); err != nil || got.ID != n.ID {
		t.Errorf("read = %+v, %v", got, err)
	}
	if err := f.s.RemoveSafeListNumber(ctx, "+9779812345601"); err != nil {
		t.Fatal(err)
	}
	if err := f.s.RemoveSafeListNumber(ctx, "+9779812345601"); phoneverify.ErrorCode(err) != phoneverify.ENotFound {
		t.Errorf("remove twice: got %v, want not_found", err)
	}
}
