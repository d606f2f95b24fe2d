package store

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/phoneverify/phoneverify"
)

// TestFraudCounters counts sends and conversions as starts and approvals
// do — concurrently, so that PostgreSQL's single-statement upserts and its
// counter shards are exercised — and reads them back as a start is judged:
// every increment is there, and a conversion is credited to the address the
// verification was started from.
func TestFraudCounters(t *testing.T) {
	t.Parallel()
	stores := map[string]func(t *testing.T) *Store{
		"SQLite": func(t *testing.T) *Store {
			s, err := Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "fraud.db"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			if err := s.Migrate(t.Context()); err != nil {
				t.Fatal(err)
			}
			return s
		},
		"Postgres": mustPostgres,
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			svc := batchTestService(t, s)
			ctx := t.Context()
			at := time.Date(2026, 11, 22, 12, 30, 0, 0, time.UTC)
			const n = 40
			keys := []phoneverify.FraudKey{
				{Scope: phoneverify.FraudScopePrefix, Key: "+977981"},
				{Scope: phoneverify.FraudScopeCountry, Key: "NP"},
				{Scope: phoneverify.FraudScopeIP, Key: "203.0.113.7"},
				{Scope: phoneverify.FraudScopeIPCountry, Key: "203.0.113.7|NP"},
			}
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					id := "VE" + string(rune('a'+i%26)) + time.Duration(i).String()
					if err := s.CountFraud(ctx, svc.ID, keys, phoneverify.FraudCounts{Sends: 1}, at, id, "203.0.113.7"); err != nil {
						t.Errorf("CountFraud: %v", err)
						return
					}
					if i%2 == 0 { // half of them convert
						if err := s.CountConversion(ctx, svc.ID, id, "+977981", "NP", at); err != nil {
							t.Errorf("CountConversion: %v", err)
						}
					}
				})
			}
			wg.Wait()
			st, err := s.FraudState(ctx, phoneverify.FraudQuery{ServiceID: svc.ID, Prefix: "+977981", Country: "NP",
				IP: "203.0.113.7", Since: at.Add(-time.Hour), HistorySince: at.Add(-24 * time.Hour), Now: at})
			if err != nil {
				t.Fatal(err)
			}
			want := phoneverify.FraudCounts{Sends: n, Conversions: n / 2}
			if st.Prefix != want || st.Country != want {
				t.Errorf("prefix %+v, country %+v; want %+v each", st.Prefix, st.Country, want)
			}
			if st.IPConversions != n/2 {
				t.Errorf("conversions credited to the address = %d, want %d", st.IPConversions, n/2)
			}
		})
	}
}
