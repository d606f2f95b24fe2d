package phoneverify_test

import (
	"errors"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
)

func TestParseLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    pv.Limit
		wantErr bool
	}{
		{"30/10m", pv.Limit{Max: 30, Window: 10 * time.Minute}, false},
		{" 1000 / 1h ", pv.Limit{Max: 1000, Window: time.Hour}, false},
		{"5/1m30s", pv.Limit{Max: 5, Window: 90 * time.Second}, false},
		{"off", pv.Limit{}, false},
		{"OFF", pv.Limit{}, false},
		{"0", pv.Limit{}, false},
		{"", pv.Limit{}, false},
		{"30", pv.Limit{}, true},
		{"30/", pv.Limit{}, true},
		{"x/10m", pv.Limit{}, true},
		{"30/10", pv.Limit{}, true},
		{"0/10m", pv.Limit{}, true},
		{"-1/10m", pv.Limit{}, true},
		{"10001/1h", pv.Limit{}, true},
		{"5/0s", pv.Limit{}, true},
		{"5/100us", pv.Limit{}, true},
	}
	for _, tt := range tests {
		got, err := pv.ParseLimit(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseLimit(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestLimitString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		limit pv.Limit
		want  string
	}{
		{pv.Limit{}, "off"},
		{pv.Limit{Max: 30, Window: 10 * time.Minute}, "30/10m0s"},
	}
	for _, tt := range tests {
		if got := tt.limit.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.limit, got, tt.want)
		}
		// What String writes, ParseLimit reads back.
		if back, err := pv.ParseLimit(tt.limit.String()); err != nil || back != tt.limit {
			t.Errorf("ParseLimit(%q) = %+v, %v; want %+v", tt.want, back, err, tt.limit)
		}
	}
}

func TestCheckLimit(t *testing.T) {
	t.Parallel()
	if err := pv.CheckLimit(pv.Limit{Max: 1, Window: time.Second}); err != nil {
		t.Errorf("CheckLimit(valid) = %v, want nil", err)
	}
	if err := pv.CheckLimit(pv.Limit{}); !errors.Is(err, pv.ErrInvalidLimit) {
		t.Errorf("CheckLimit(zero) = %v, want ErrInvalidLimit", err)
	}
}
