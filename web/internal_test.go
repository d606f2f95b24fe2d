package web

import (
	"strings"
	"testing"
	"time"

	"github.com/phoneverify/phoneverify/store"
)

func TestNiceMax(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want int64 }{{0, 1}, {1, 1}, {2, 2}, {3, 5}, {7, 10}, {11, 20}, {49, 50}, {51, 100}, {1001, 2000}}
	for _, tt := range tests {
		if got := niceMax(tt.in); got != tt.want {
			t.Errorf("niceMax(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestHourlyChart(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name         string
		hours        int
		started      map[int]int64
		approved     map[int]int64
		wantApproved int
		wantTicks    []string
	}{
		{"a day", 24, map[int]int64{3: 4, 10: 7}, map[int]int64{3: 2, 10: 7}, 2, []string{">00:00<", ">03:00<", ">21:00<"}},
		{"empty", 24, nil, nil, 0, []string{">00:00<"}},
		{"a week", 168, map[int]int64{30: 1}, nil, 0, []string{">Nov 22<", ">Nov 23<"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hs []store.HourCounts
			for i := range tt.hours {
				h := store.HourCounts{Hour: base.Add(time.Duration(i) * time.Hour)}
				h.Started, h.Approved = tt.started[i], tt.approved[i]
				hs = append(hs, h)
			}
			svg := string(hourlyChart(hs))
			if got, want := strings.Count(svg, `class="bar-started"`), tt.hours; got != want {
				t.Errorf("started bars = %d, want %d", got, want)
			}
			if got := strings.Count(svg, `class="bar-approved"`); got != tt.wantApproved {
				t.Errorf("approved bars = %d, want %d", got, tt.wantApproved)
			}
			for _, w := range append(tt.wantTicks, `role="img"`, "<title id=\"chart-title\">Verifications per hour</title>") {
				if !strings.Contains(svg, w) {
					t.Errorf("chart lacks %q", w)
				}
			}
			if strings.Contains(svg, "NaN") || strings.Contains(svg, "Inf") {
				t.Errorf("chart has a NaN or Inf coordinate")
			}
		})
	}
}

func TestParseAmount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"49.90", "49.90", true},
		{"49.9", "49.90", true},
		{"49,90", "49.90", true},
		{" 7 ", "7.00", true},
		{"10000", "10000.00", true},
		{"10000.01", "", false},
		{"0", "", false},
		{"0.00", "", false},
		{"-5", "", false},
		{"1e3", "", false},
		{"12.345", "", false},
		{"", "", false},
		{"€5", "", false},
	}
	for _, tt := range tests {
		got, ok := parseAmount(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseAmount(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestValidUsername(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want bool
	}{{"alice", true}, {"a.b-c_d9", true}, {"ab", false}, {"Alice", false}, {"al ice", false}, {strings.Repeat("a", 33), false}, {"ålice", false}}
	for _, tt := range tests {
		if got := validUsername(tt.in); got != tt.want {
			t.Errorf("validUsername(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestPasswordHash(t *testing.T) {
	t.Parallel()
	h, err := hashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		hash     []byte
		password string
		want     bool
	}{
		{"right", h, "correct horse", true},
		{"wrong", h, "correct horsE", false},
		{"dummy never matches", dummyHash(), "", false},
		{"garbage", []byte("pbkdf2-sha256$x$y$z"), "correct horse", false},
		{"empty", nil, "", false},
	}
	for _, tt := range tests {
		if got := checkPassword(tt.hash, tt.password); got != tt.want {
			t.Errorf("%s: checkPassword = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestAttemptLimiter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newAttemptLimiter(3, time.Minute, func() time.Time { return now })
	steps := []struct {
		advance  time.Duration
		fail     string
		reset    string
		key      string
		wantWait time.Duration
	}{
		{key: "a", wantWait: 0},
		{fail: "a", key: "a", wantWait: 0},
		{advance: 10 * time.Second, fail: "a", key: "a", wantWait: 0},
		{advance: 10 * time.Second, fail: "a", key: "a", wantWait: 40 * time.Second},
		{key: "b", wantWait: 0},
		{advance: 40 * time.Second, key: "a", wantWait: 0}, // the first failure left the window
		{fail: "a", key: "a", wantWait: 10 * time.Second},
		{reset: "a", key: "a", wantWait: 0},
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		if s.fail != "" {
			l.fail(s.fail)
		}
		if s.reset != "" {
			l.reset(s.reset)
		}
		if got := l.wait(s.key); got != s.wantWait {
			t.Errorf("step %d: wait(%s) = %v, want %v", i, s.key, got, s.wantWait)
		}
	}
}

func TestSafeNext(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"/admin/keys", "/admin/keys"},
		{"", "/admin/"},
		{"https://evil.example/admin/", "/admin/"},
		{"//evil.example/admin/", "/admin/"},
		{"/admin//evil.example", "/admin/"},
		{`/admin/\evil`, "/admin/"},
		{"/demo/", "/admin/"},
	}
	for _, tt := range tests {
		if got := safeNext(tt.in); got != tt.want {
			t.Errorf("safeNext(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
