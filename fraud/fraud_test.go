package fraud_test

import (
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/fraud"
)

func TestPrefix(t *testing.T) {
	tests := []struct{ in, want string }{
		{"+998901234567", "+998901"},
		{"+14155552671", "+1415"},
		{"+9779812345678", "+977981"},
		{"+4915112345678", "+49151"},
		{"+99", ""}, // no known calling code
		{"998901234567", ""},
		{"", ""},
		{"+9a8", ""},
	}
	for _, tt := range tests {
		if got := fraud.Prefix(tt.in); got != tt.want {
			t.Errorf("Prefix(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestBudget(t *testing.T) {
	tests := []struct {
		name            string
		floor           int
		ratio           float64
		window, history pv.FraudCounts
		want            int64
	}{
		{"new destination gets the floor", 20, 1, pv.FraudCounts{}, pv.FraudCounts{}, 20},
		{"conversions in the window", 20, 1, pv.FraudCounts{Sends: 100, Conversions: 80}, pv.FraudCounts{Conversions: 80}, 80},
		{"history per window", 20, 1, pv.FraudCounts{}, pv.FraudCounts{Conversions: 3000}, 100},
		{"ratio scales", 20, 0.5, pv.FraudCounts{Conversions: 100}, pv.FraudCounts{}, 50},
		{"never under the floor", 20, 0.1, pv.FraudCounts{Conversions: 100}, pv.FraudCounts{}, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fraud.Budget(tt.floor, tt.ratio, tt.window, tt.history, 24*time.Hour); got != tt.want {
				t.Errorf("Budget = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestJudge(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	s := fraud.Resolve(nil, "")
	start := fraud.Start{Prefix: "+998901", Country: "UZ", IP: "10.0.0.1"}
	tests := []struct {
		name       string
		st         pv.FraudState
		wantReason string
		inForce    bool
	}{
		{"nothing sent", pv.FraudState{}, "", false},
		{"19 unconverted: the 20th passes", pv.FraudState{Prefix: pv.FraudCounts{Sends: 19}, Country: pv.FraudCounts{Sends: 19}}, "", false},
		{"20 unconverted: the 21st is refused", pv.FraudState{Prefix: pv.FraudCounts{Sends: 20}, Country: pv.FraudCounts{Sends: 20}}, pv.FraudReasonPrefix, false},
		{"converting prefix has room", pv.FraudState{Prefix: pv.FraudCounts{Sends: 150, Conversions: 100}, Country: pv.FraudCounts{Sends: 150, Conversions: 100}}, "", false},
		{"country over its floor", pv.FraudState{Prefix: pv.FraudCounts{Sends: 1}, Country: pv.FraudCounts{Sends: 100}}, pv.FraudReasonCountry, false},
		{"address in many countries", pv.FraudState{IPCountries: 5}, pv.FraudReasonIP, false},
		{"address in many countries that converts", pv.FraudState{IPCountries: 5, IPConversions: 1}, "", false},
		{"block in force", pv.FraudState{Blocks: map[string]time.Time{pv.FraudScopePrefix: now.Add(time.Minute)}}, pv.FraudReasonPrefix, true},
		{"block ended", pv.FraudState{Blocks: map[string]time.Time{pv.FraudScopePrefix: now}}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := fraud.Judge(s, &tt.st, start, now)
			switch {
			case tt.wantReason == "" && v != nil:
				t.Fatalf("refused: %+v", v)
			case tt.wantReason != "" && v == nil:
				t.Fatalf("allowed, want %s", tt.wantReason)
			case v != nil && (v.Reason != tt.wantReason || v.InForce != tt.inForce):
				t.Fatalf("verdict %+v, want %s (in force %v)", v, tt.wantReason, tt.inForce)
			case v != nil && !v.InForce && !v.Until.Equal(now.Add(s.Cooldown)):
				t.Errorf("until %v, want now + cool-down", v.Until)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		s     pv.FraudSettings
		param string
	}{
		{"zero is all defaults", pv.FraudSettings{}, ""},
		{"all set", pv.FraudSettings{Mode: pv.FraudMonitor, PrefixFloor: 5, CountryFloor: 50, BudgetRatio: 2, Window: 48 * time.Hour, Cooldown: 10 * time.Minute, IPCountries: 3}, ""},
		{"bad mode", pv.FraudSettings{Mode: "strict"}, "mode"},
		{"negative floor", pv.FraudSettings{PrefixFloor: -1}, "prefix_floor"},
		{"window not whole hours", pv.FraudSettings{Window: 90 * time.Minute}, "window"},
		{"window too long", pv.FraudSettings{Window: 30 * 24 * time.Hour}, "window"},
		{"negative cool-down", pv.FraudSettings{Cooldown: -time.Second}, "cooldown"},
		{"ratio too high", pv.FraudSettings{BudgetRatio: 1000}, "budget_ratio"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := fraud.Validate(&tt.s)
			if got := pv.AsError(err); tt.param == "" && err != nil || tt.param != "" && (got == nil || got.Param != tt.param) {
				t.Errorf("Validate = %v, want param %q", err, tt.param)
			}
		})
	}
}
