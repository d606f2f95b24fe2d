package memory_test

import (
	"testing"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/ratelimit/limitertest"
	"github.com/phoneverify/phoneverify/ratelimit/memory"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	limitertest.Run(t, func(t *testing.T, clock *limitertest.Clock) pv.Limiter {
		return memory.New(memory.Options{Now: clock.Now})
	})
}

func TestIdleKeysAreSwept(t *testing.T) {
	t.Parallel()
	clock := limitertest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	l := memory.New(memory.Options{Now: clock.Now})
	limit := pv.Limit{Max: 1, Window: time.Minute}
	for i := range 5000 {
		if _, err := l.Allow(t.Context(), "k"+string(rune('a'+i%26))+time.Duration(i).String(), limit); err != nil {
			t.Fatal(err)
		}
		if i == 100 {
			clock.Advance(time.Minute)
		}
	}
	// The sweep at call 4096 dropped the 101 keys whose window had passed.
	if got, want := l.Len(), 5000-101; got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
}
