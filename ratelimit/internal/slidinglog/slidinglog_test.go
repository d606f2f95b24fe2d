package slidinglog

import (
	"slices"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
)

func TestDecide(t *testing.T) {
	limit := pv.Limit{Max: 2, Window: 10 * time.Second}
	tests := []struct {
		name      string
		log       []int64
		now       int64
		wantLog   []int64
		allowed   bool
		remaining int
		retry     time.Duration
	}{
		{"empty", nil, 1000, []int64{1000}, true, 1, 0},
		{"one in window", []int64{1000}, 2000, []int64{1000, 2000}, true, 0, 0},
		{"full", []int64{1000, 2000}, 3000, []int64{1000, 2000}, false, 0, 8 * time.Second},
		{"oldest just left", []int64{1000, 2000}, 11000, []int64{2000, 11000}, true, 0, 0},
		{"all left", []int64{1000, 2000}, 30000, []int64{30000}, true, 1, 0},
		{"clock behind another node", []int64{5000}, 4000, []int64{4000, 5000}, true, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, d := Decide(slices.Clone(tt.log), tt.now, limit)
			if !slices.Equal(got, tt.wantLog) {
				t.Errorf("log = %v, want %v", got, tt.wantLog)
			}
			if d.Allowed != tt.allowed || d.Remaining != tt.remaining || d.RetryAfter != tt.retry {
				t.Errorf("decision = %+v, want allowed %v remaining %d retry %v", d, tt.allowed, tt.remaining, tt.retry)
			}
		})
	}
}

// TestNeverMoreThanMax: whatever the arrival times, no window holds more
// than Max allowed events.
func TestNeverMoreThanMax(t *testing.T) {
	limit := pv.Limit{Max: 3, Window: time.Second}
	var log, allowed []int64
	for now := int64(0); now < 5000; now += 37 {
		var d pv.Decision
		log, d = Decide(log, now, limit)
		if d.Allowed {
			allowed = append(allowed, now)
		}
	}
	for i := range allowed {
		n := 0
		for _, t2 := range allowed[i:] {
			if t2 < allowed[i]+limit.Window.Milliseconds() {
				n++
			}
		}
		if n > limit.Max {
			t.Fatalf("%d events allowed within one window starting at %d", n, allowed[i])
		}
	}
}

func TestEncodeDecode(t *testing.T) {
	log := []int64{3, 1, 2}
	got, err := Decode(Encode(log))
	if err != nil || !slices.Equal(got, []int64{1, 2, 3}) {
		t.Fatalf("round trip = %v, %v", got, err)
	}
	if got, err := Decode(""); err != nil || len(got) != 0 {
		t.Errorf("empty: %v, %v", got, err)
	}
	if _, err := Decode("1 x"); err == nil {
		t.Error("malformed log accepted")
	}
}
