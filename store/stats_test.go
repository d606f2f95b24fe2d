package store_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/store"
)

// seedStats inserts verifications as the engine would leave them, in two
// services and three countries, and returns the window that holds them all.
func seedStats(t *testing.T, s *store.Store) (base time.Time) {
	t.Helper()
	base = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for _, id := range []string{"svc-a", "svc-b"} {
		svc := phoneverify.NewService(id)
		svc.ID, svc.CreatedAt, svc.UpdatedAt = id, base, base
		if err := s.CreateService(t.Context(), svc); err != nil {
			t.Fatalf("CreateService = %v", err)
		}
	}
	rows := []struct {
		service, country string
		status           phoneverify.Status
		at               time.Duration // after base
		ttl              time.Duration
	}{
		{"svc-a", "NP", phoneverify.StatusApproved, 5 * time.Minute, 10 * time.Minute},
		{"svc-a", "NP", phoneverify.StatusApproved, 20 * time.Minute, 10 * time.Minute},
		{"svc-a", "NP", phoneverify.StatusFailed, 30 * time.Minute, 10 * time.Minute},
		{"svc-a", "US", phoneverify.StatusApproved, 70 * time.Minute, 10 * time.Minute},
		{"svc-a", "US", phoneverify.StatusCanceled, 75 * time.Minute, 10 * time.Minute},
		{"svc-b", "US", phoneverify.StatusMaxAttemptsReached, 80 * time.Minute, 10 * time.Minute},
		// Pending, its code lapsed before the window's end: counts as expired.
		{"svc-b", "GB", phoneverify.StatusPending, 130 * time.Minute, time.Minute},
		// Pending and still live at the window's end.
		{"svc-b", "GB", phoneverify.StatusPending, 170 * time.Minute, time.Hour},
		{"svc-b", "GB", phoneverify.StatusExpired, 171 * time.Minute, time.Minute},
		// Outside the window.
		{"svc-a", "NP", phoneverify.StatusApproved, -time.Minute, time.Minute},
		{"svc-a", "NP", phoneverify.StatusApproved, 3 * time.Hour, time.Minute},
	}
	for i, r := range rows {
		at := base.Add(r.at)
		v := &phoneverify.Verification{
			ID: fmt.Sprintf("VE%032x", i), ServiceID: r.service, To: fmt.Sprintf("+1415555%04d", i), Country: r.country,
			Channel: phoneverify.ChannelSMS, Status: r.status, SendCount: 1, MaxAttempts: 5, CodeHash: make([]byte, 32),
			ExpiresAt: at.Add(r.ttl), CreatedAt: at, UpdatedAt: at,
		}
		key := phoneverify.NumberKey{ServiceID: v.ServiceID, Phone: v.To}
		_, err := s.StartVerification(t.Context(), key, func(*phoneverify.StartState) (*phoneverify.StartResult, error) {
			return &phoneverify.StartResult{Save: v}, nil
		})
		if err != nil {
			t.Fatalf("StartVerification(%d) = %v", i, err)
		}
	}
	return base
}

func TestStats(t *testing.T) {
	t.Parallel()
	for _, d := range dialects() {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			s := MustOpenMigrated(t, d.url(t), testOptions)
			base := seedStats(t, s)
			w := store.Window{Since: base, Until: base.Add(3 * time.Hour)}

			t.Run("total", func(t *testing.T) {
				got, err := s.VerificationCounts(t.Context(), w)
				if err != nil {
					t.Fatal(err)
				}
				want := store.Counts{Started: 9, Approved: 3, Pending: 1, Expired: 2, Failed: 1, Canceled: 1, MaxAttempts: 1}
				if got != want {
					t.Errorf("VerificationCounts = %+v, want %+v", got, want)
				}
				if got, want := got.Conversion(), 3.0/9; got != want {
					t.Errorf("Conversion = %v, want %v", got, want)
				}
			})

			t.Run("empty window", func(t *testing.T) {
				got, err := s.VerificationCounts(t.Context(), store.Window{Since: base.Add(-48 * time.Hour), Until: base.Add(-24 * time.Hour)})
				if err != nil {
					t.Fatal(err)
				}
				if got != (store.Counts{}) || got.Conversion() != 0 {
					t.Errorf("VerificationCounts = %+v, want zero", got)
				}
			})

			groups := []struct {
				name  string
				by    store.Dimension
				limit int
				want  []store.GroupCounts
			}{
				{"by country", store.ByCountry, 10, []store.GroupCounts{
					{Key: "NP", Counts: store.Counts{Started: 3, Approved: 2, Failed: 1}},
					{Key: "US", Counts: store.Counts{Started: 3, Approved: 1, Canceled: 1, MaxAttempts: 1}},
					{Key: "GB", Counts: store.Counts{Started: 3, Pending: 1, Expired: 2}},
				}},
				{"by service, limited", store.ByService, 1, []store.GroupCounts{
					{Key: "svc-a", Counts: store.Counts{Started: 5, Approved: 3, Failed: 1, Canceled: 1}},
				}},
			}
			for _, tt := range groups {
				t.Run(tt.name, func(t *testing.T) {
					got, err := s.VerificationCountsBy(t.Context(), tt.by, w, tt.limit)
					if err != nil {
						t.Fatal(err)
					}
					// Equal counts order by key: GB, NP, US.
					if tt.by == store.ByCountry {
						tt.want = []store.GroupCounts{tt.want[2], tt.want[0], tt.want[1]}
					}
					if fmt.Sprint(got) != fmt.Sprint(tt.want) {
						t.Errorf("VerificationCountsBy(%s) =\n%+v, want\n%+v", tt.by, got, tt.want)
					}
				})
			}

			t.Run("unknown dimension", func(t *testing.T) {
				if _, err := s.VerificationCountsBy(t.Context(), "gateway", w, 10); err == nil {
					t.Error("VerificationCountsBy(gateway) = nil error, want one until a gateway column exists")
				}
			})

			t.Run("hourly", func(t *testing.T) {
				got, err := s.HourlyVerificationCounts(t.Context(), store.Window{Since: base.Add(-time.Hour), Until: base.Add(3 * time.Hour)})
				if err != nil {
					t.Fatal(err)
				}
				want := []struct {
					hour              time.Time
					started, approved int64
				}{
					{base.Add(-time.Hour), 1, 1}, {base, 3, 2}, {base.Add(time.Hour), 3, 1}, {base.Add(2 * time.Hour), 3, 0},
				}
				if len(got) != len(want) {
					t.Fatalf("HourlyVerificationCounts returned %d hours, want %d: %+v", len(got), len(want), got)
				}
				for i, w := range want {
					if !got[i].Hour.Equal(w.hour) || got[i].Started != w.started || got[i].Approved != w.approved {
						t.Errorf("hour %d = %v started %d approved %d, want %v %d %d", i, got[i].Hour, got[i].Started, got[i].Approved, w.hour, w.started, w.approved)
					}
				}
			})

			t.Run("recent", func(t *testing.T) {
				all, err := s.RecentVerifications(t.Context(), "", 3)
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, v := range all {
					ids = append(ids, v.ID)
				}
				if got, want := fmt.Sprint(ids), fmt.Sprintf("[VE%032x VE%032x VE%032x]", 10, 8, 7); got != want {
					t.Errorf("RecentVerifications ids = %s, want %s", got, want)
				}
				failed, err := s.RecentVerifications(t.Context(), phoneverify.StatusFailed, 10)
				if err != nil {
					t.Fatal(err)
				}
				if len(failed) != 1 || failed[0].Status != phoneverify.StatusFailed || failed[0].Country != "NP" {
					t.Errorf("RecentVerifications(failed) = %+v, want the one failed verification", failed)
				}
			})

			t.Run("by id", func(t *testing.T) {
				id := fmt.Sprintf("VE%032x", 5)
				v, err := s.VerificationByID(t.Context(), id)
				if err != nil {
					t.Fatal(err)
				}
				if v.ServiceID != "svc-b" || v.Status != phoneverify.StatusMaxAttemptsReached {
					t.Errorf("VerificationByID = %+v, want svc-b max_attempts_reached", v)
				}
				if _, err := s.VerificationByID(t.Context(), "VEnope"); phoneverify.ErrorCode(err) != phoneverify.ENotFound {
					t.Errorf("VerificationByID(unknown) = %v, want not_found", err)
				}
			})
		})
	}
}
