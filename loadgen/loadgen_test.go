package loadgen_test

import (
	"testing"
	"time"

	"github.com/phoneverify/phoneverify/loadgen"
	"github.com/phoneverify/phoneverify/phone"
)

// Every generated number must be a distinct valid mobile number, or the
// bench measures refusals instead of verifications.
func TestNumbers(t *testing.T) {
	for _, seed := range []uint64{0, 1, 69_999_999, 1 << 63} {
		seen := map[string]bool{}
		for i := range 3_000 {
			n := loadgen.Number(seed, i)
			if seen[n] {
				t.Fatalf("seed %d: flow %d repeats %s", seed, i, n)
			}
			seen[n] = true
			p, err := phone.Parse(n, "")
			if err != nil || p.E164 != n {
				t.Fatalf("seed %d flow %d: %s does not parse as itself: %+v %v", seed, i, n, p, err)
			}
		}
	}
}

func TestPercentile(t *testing.T) {
	var l []time.Duration
	for i := 1; i <= 1000; i++ {
		l = append(l, time.Duration(i)*time.Millisecond)
	}
	tests := []struct {
		p    float64
		want time.Duration
	}{{50, 500 * time.Millisecond}, {90, 900 * time.Millisecond}, {99, 990 * time.Millisecond}, {99.9, 999 * time.Millisecond}, {100, time.Second}}
	for _, tt := range tests {
		if got := loadgen.Percentile(l, tt.p); got != tt.want {
			t.Errorf("p%g = %v, want %v", tt.p, got, tt.want)
		}
	}
	if got := loadgen.Percentile(nil, 50); got != 0 {
		t.Errorf("p50 of nothing = %v", got)
	}
}
