// Package limitertest is the conformance suite every [phoneverify.Limiter]
// passes: the in-process, SQL and Redis limiters run the same tests, on a
// clock the suite moves (no sleeps).
//
//	func TestConformance(t *testing.T) {
//		limitertest.Run(t, func(t *testing.T, clock *limitertest.Clock) phoneverify.Limiter {
//			return memory.New(memory.Options{Now: clock.Now})
//		})
//	}
//
// Windows in the suite are a minute or more, so that a backend that also
// expires keys by its own (real) clock, as Redis does, cannot drop events
// while a test runs.
package limitertest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/internal/testenv"
)

// Clock is a fake clock for the limiter under test, safe for concurrent
// use: the project's one settable test clock.
type Clock = testenv.Clock

// NewClock returns a clock reading t.
func NewClock(t time.Time) *Clock { return testenv.NewClock(t) }

// NewFunc returns a limiter reading clock, released in t.Cleanup.
type NewFunc func(t *testing.T, clock *Clock) pv.Limiter

// PairFunc returns two limiters on one backend (two connection pools or
// clients, standing for two nodes), both reading clock.
type PairFunc func(t *testing.T, clock *Clock) (a, b pv.Limiter)

type config struct{ pair PairFunc }

// Option tunes [Run].
type Option func(*config)

// WithPair runs the concurrency test through two limiters on one backend,
// proving that the limit holds across nodes.
func WithPair(open PairFunc) Option { return func(c *config) { c.pair = open } }

// start is the suite's clock origin: far from the real time, with a
// sub-millisecond part that every limiter must truncate the same way.
func start() time.Time { return time.Date(2031, 5, 6, 7, 8, 9, 123_456_789, time.UTC) }

// Run runs the suite, its tests in parallel, each on a limiter of its own
// from newLimiter. Every test uses keys of its own, so a shared backend (one
// Redis database) may hold other data.
func Run(t *testing.T, newLimiter NewFunc, opts ...Option) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, l pv.Limiter, clock *Clock, prefix string)
	}{
		{"AllowsMaxThenRefuses", testAllowsMaxThenRefuses},
		{"SlidingWindow", testSlidingWindow},
		{"WindowBoundary", testWindowBoundary},
		{"RefusalsDoNotCount", testRefusalsDoNotCount},
		{"KeysAreIndependent", testKeysAreIndependent},
		{"ExactAgainstModel", testExactAgainstModel},
		{"NeverMoreThanMaxPerWindow", testNeverMoreThanMaxPerWindow},
		{"InvalidLimit", testInvalidLimit},
		{"CanceledContext", testCanceledContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := NewClock(start())
			tt.fn(t, newLimiter(t, clock), clock, keyPrefix())
		})
	}
	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		clock := NewClock(start())
		l := newLimiter(t, clock)
		testConcurrent(t, l, l, clock, keyPrefix())
	})
	if cfg.pair != nil {
		t.Run("ConcurrentTwoNodes", func(t *testing.T) {
			t.Parallel()
			clock := NewClock(start())
			a, b := cfg.pair(t, clock)
			testConcurrent(t, a, b, clock, keyPrefix())
		})
	}
}

func keyPrefix() string { return "limitertest:" + rand.Text()[:12] + ":" }

func mustAllow(t *testing.T, l pv.Limiter, key string, limit pv.Limit) pv.Decision {
	t.Helper()
	d, err := l.Allow(t.Context(), key, limit)
	if err != nil {
		t.Fatalf("Allow(%q, %s) = %v", key, limit, err)
	}
	return d
}

// want checks a decision against what it must be.
func want(t *testing.T, what string, got, want pv.Decision) {
	t.Helper()
	if got != want {
		t.Errorf("%s: got %+v, want %+v", what, got, want)
	}
}

func allowed(remaining int) pv.Decision { return pv.Decision{Allowed: true, Remaining: remaining} }

func refused(retry time.Duration) pv.Decision { return pv.Decision{RetryAfter: retry} }

func testAllowsMaxThenRefuses(t *testing.T, l pv.Limiter, clock *Clock, p string) {
	limit := pv.Limit{Max: 3, Window: time.Minute}
	for i, rem := range []int{2, 1, 0} {
		want(t, fmt.Sprintf("event %d", i+1), mustAllow(t, l, p+"k", limit), allowed(rem))
	}
	want(t, "event 4 at the same time", mustAllow(t, l, p+"k", limit), refused(time.Minute))
	clock.Advance(time.Minute - time.Millisecond)
	want(t, "event 5, 1ms before the first leaves", mustAllow(t, l, p+"k", limit), refused(time.Millisecond))
	clock.Advance(time.Millisecond)
	// All three left at once: room for three again.
	want(t, "event 6, when the first three left", mustAllow(t, l, p+"k", limit), allowed(2))
}

func testSlidingWindow(t *testing.T, l pv.Limiter, clock *Clock, p string) {
	limit := pv.Limit{Max: 3, Window: time.Minute}
	steps := []struct {
		advance time.Duration
		want    pv.Decision
	}{
		{0, allowed(2)},                               // 0s
		{20 * time.Second, allowed(1)},                // 20s
		{20 * time.Second, allowed(0)},                // 40s
		{10 * time.Second, refused(10 * time.Second)}, // 50s: 0s leaves at 60s
		{10 * time.Second, allowed(0)},                // 60s: 0s has left
		{time.Second, refused(19 * time.Second)},      // 61s: 20s leaves at 80s
		{19 * time.Second, allowed(0)},                // 80s
		{50 * time.Second, allowed(1)},                // 130s: only 80s is in (70s, 130s]
	}
	at := time.Duration(0)
	for _, s := range steps {
		clock.Advance(s.advance)
		at += s.advance
		want(t, "event at "+at.String(), mustAllow(t, l, p+"k", limit), s.want)
	}
}

func testWindowBoundary(t *testing.T, l pv.Limiter, clock *Clock, p string) {
	limit := pv.Limit{Max: 1, Window: time.Hour}
	want(t, "first", mustAllow(t, l, p+"k", limit), allowed(0))
	// Sub-millisecond steps do not count: times are kept to the millisecond.
	clock.Advance(time.Hour - time.Millisecond)
	want(t, "window minus 1ms", mustAllow(t, l, p+"k", limit), refused(time.Millisecond))
	clock.Advance(time.Millisecond)
	want(t, "exactly one window later", mustAllow(t, l, p+"k", limit), allowed(0))
}

func testRefusalsDoNotCount(t *testing.T, l pv.Limiter, clock *Clock, p string) {
	limit := pv.Limit{Max: 2, Window: 10 * time.Minute}
	mustAllow(t, l, p+"k", limit)
	mustAllow(t, l, p+"k", limit)
	for i := range 20 {
		clock.Advance(time.Second)
		want(t, fmt.Sprintf("refusal %d", i+1), mustAllow(t, l, p+"k", limit), refused(10*time.Minute-time.Duration(i+1)*time.Second))
	}
	clock.Advance(10*time.Minute - 20*time.Second)
	want(t, "after the window", mustAllow(t, l, p+"k", limit), allowed(1))
}

func testKeysAreIndependent(t *testing.T, l pv.Limiter, clock *Clock, p string) {
	small := pv.Limit{Max: 1, Window: time.Minute}
	big := pv.Limit{Max: 5, Window: time.Hour}
	want(t, "a", mustAllow(t, l, p+"a", small), allowed(0))
	want(t, "b", mustAllow(t, l, p+"b", small), allowed(0))
	want(t, "c with another limit", mustAllow(t, l, p+"c", big), allowed(4))
	want(t, "a again", mustAllow(t, l, p+"a", small), refused(time.Minute))
	// A key that differs only in case or by a suffix is another key.
	want(t, "A", mustAllow(t, l, p+"A", small), allowed(0))
	want(t, "a:", mustAllow(t, l, p+"a:", small), allowed(0))
}

// model is the reference sliding log the limiters must match exactly.
type model struct{ events []time.Time }

func (m *model) allow(now time.Time, limit pv.Limit) pv.Decision {
	now = now.Truncate(time.Millisecond)
	var in []time.Time
	for _, e := range m.events {
		if e.After(now.Add(-limit.Window)) {
			in = append(in, e)
		}
	}
	m.events = in
	if len(in) >= limit.Max {
		return refused(in[len(in)-limit.Max].Add(limit.Window).Sub(now))
	}
	m.events = append(m.events, now)
	return allowed(limit.Max - len(m.events))
}

func testExactAgainstModel(t *testing.T, l pv.Limiter, clock *Clock, p string) {
	tests := []struct {
		name  string
		limit pv.Limit
		step  time.Duration // the largest random step between events
	}{
		{"5 per minute, busy", pv.Limit{Max: 5, Window: time.Minute}, 15 * time.Second},
		{"1 per minute", pv.Limit{Max: 1, Window: time.Minute}, 40 * time.Second},
		{"30 per 10 minutes, bursts", pv.Limit{Max: 30, Window: 10 * time.Minute}, 40 * time.Second},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := mrand.New(mrand.NewPCG(uint64(i), 42))
			var m model
			key := p + fmt.Sprint(i)
			for n := range 300 {
				// Bursts: a third of the events come at the same instant.
				if rng.IntN(3) > 0 {
					clock.Advance(time.Duration(rng.Int64N(int64(tt.step))))
				}
				now := clock.Now()
				got := mustAllow(t, l, key, tt.limit)
				if w := m.allow(now, tt.limit); got != w {
					t.Fatalf("event %d at +%s: got %+v, want %+v", n+1, now.Sub(start()), got, w)
				}
			}
		})
	}
}

// testNeverMoreThanMaxPerWindow checks the property itself: whatever the
// arrival pattern, no interval of length Window holds more than Max allowed
// events, and every refusal came when Max were already in the window.
func testNeverMoreThanMaxPerWindow(t *testing.T, l pv.Limiter, clock *Clock, p string) {
	limit := pv.Limit{Max: 4, Window: time.Minute}
	rng := mrand.New(mrand.NewPCG(7, 7))
	var ok []time.Time
	for range 400 {
		clock.Advance(time.Duration(rng.Int64N(int64(20 * time.Second))))
		now := clock.Now().Truncate(time.Millisecond)
		d := mustAllow(t, l, p+"k", limit)
		inWindow := 0
		for _, e := range ok {
			if e.After(now.Add(-limit.Window)) {
				inWindow++
			}
		}
		switch {
		case d.Allowed && inWindow >= limit.Max:
			t.Fatalf("at +%s: allowed with %d events already in the window, want at most %d per %s",
				now.Sub(start()), inWindow, limit.Max, limit.Window)
		case !d.Allowed && inWindow < limit.Max:
			t.Fatalf("at +%s: refused with only %d events in the window, want room for %d",
				now.Sub(start()), inWindow, limit.Max)
		}
		if d.Allowed {
			ok = append(ok, now)
		}
	}
	// Any interval of length Window starts just after some event; checking
	// the intervals that end at each allowed event covers them all.
	for i, end := range ok {
		n := 0
		for _, e := range ok[:i+1] {
			if e.After(end.Add(-limit.Window)) {
				n++
			}
		}
		if n > limit.Max {
			t.Fatalf("%d allowed events in the window ending at +%s, want at most %d", n, end.Sub(start()), limit.Max)
		}
	}
	if len(ok) < 100 {
		t.Fatalf("only %d events allowed; the test did not exercise the limit", len(ok))
	}
}

func testInvalidLimit(t *testing.T, l pv.Limiter, clock *Clock, p string) {
	tests := []struct {
		name  string
		limit pv.Limit
	}{
		{"zero", pv.Limit{}},
		{"no count", pv.Limit{Max: 0, Window: time.Minute}},
		{"negative count", pv.Limit{Max: -1, Window: time.Minute}},
		{"count too large", pv.Limit{Max: pv.MaxLimitEvents + 1, Window: time.Minute}},
		{"no window", pv.Limit{Max: 1}},
		{"window under 1ms", pv.Limit{Max: 1, Window: time.Microsecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := l.Allow(t.Context(), p+"k", tt.limit)
			if !errors.Is(err, pv.ErrInvalidLimit) {
				t.Errorf("Allow(%+v) error = %v, want one wrapping ErrInvalidLimit", tt.limit, err)
			}
			if d.Allowed {
				t.Errorf("Allow(%+v) allowed the event, want not", tt.limit)
			}
		})
	}
}

func testCanceledContext(t *testing.T, l pv.Limiter, clock *Clock, p string) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	d, err := l.Allow(ctx, p+"k", pv.Limit{Max: 1, Window: time.Minute})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Allow with a canceled context: error = %v, want context.Canceled", err)
	}
	if code := pv.ErrorCode(err); code == pv.EUnavailable {
		t.Errorf("Allow with a canceled context: code %s, want the caller's cancellation, not an outage", code)
	}
	if d.Allowed {
		t.Error("Allow with a canceled context allowed the event")
	}
	// The canceled call recorded nothing.
	want(t, "next call", mustAllow(t, l, p+"k", pv.Limit{Max: 1, Window: time.Minute}), allowed(0))
}

// testConcurrent sends many events for one key at one instant, through a and
// b at once: exactly Max are allowed.
func testConcurrent(t *testing.T, a, b pv.Limiter, clock *Clock, p string) {
	limit := pv.Limit{Max: 37, Window: time.Hour}
	const workers, each = 16, 8
	var (
		wg            sync.WaitGroup
		mu            sync.Mutex
		yes, no       int
		minRem, errs  = limit.Max, []error{}
		seenRemainder = map[int]bool{}
	)
	for w := range workers {
		l := a
		if w%2 == 1 {
			l = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				d, err := l.Allow(context.Background(), p+"hot", limit)
				mu.Lock()
				switch {
				case err != nil:
					errs = append(errs, err)
				case d.Allowed:
					yes++
					seenRemainder[d.Remaining] = true
					minRem = min(minRem, d.Remaining)
				default:
					no++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d calls failed; first: %v", len(errs), errs[0])
	}
	if yes != limit.Max || no != workers*each-limit.Max {
		t.Errorf("allowed %d and refused %d of %d concurrent events, want %d allowed", yes, no, workers*each, limit.Max)
	}
	// Serialised: each allowed event saw a distinct remainder, 36 down to 0.
	if len(seenRemainder) != limit.Max || minRem != 0 {
		t.Errorf("remainders of allowed events: %d distinct, lowest %d; want %d distinct down to 0", len(seenRemainder), minRem, limit.Max)
	}
	clock.Advance(time.Hour)
	want(t, "one window later", mustAllow(t, a, p+"hot", limit), allowed(limit.Max-1))
}
