package web

import (
	"sync"
	"time"
)

// attemptLimiter counts failed sign-ins per client address over a sliding
// window, and refuses any sign-in, right or wrong, from an address that
// reached the limit, so that a password cannot be guessed at speed.
type attemptLimiter struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu    sync.Mutex
	fails map[string][]time.Time
}

// maxLimiterKeys bounds the addresses remembered at once.
const maxLimiterKeys = 10_000

func newAttemptLimiter(max int, window time.Duration, now func() time.Time) *attemptLimiter {
	return &attemptLimiter{max: max, window: window, now: now, fails: map[string][]time.Time{}}
}

// recent returns key's failures within the window; l.mu must be held.
func (l *attemptLimiter) recent(key string, now time.Time) []time.Time {
	ts := l.fails[key]
	i := 0
	for i < len(ts) && !ts[i].After(now.Add(-l.window)) {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(l.fails, key)
	} else {
		l.fails[key] = ts
	}
	return ts
}

// wait returns how long key must wait before its next attempt: 0 if it may
// try now.
func (l *attemptLimiter) wait(key string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	ts := l.recent(key, now)
	if len(ts) < l.max {
		return 0
	}
	return ts[len(ts)-l.max].Add(l.window).Sub(now)
}

// fail records a failed attempt of key.
func (l *attemptLimiter) fail(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.fails) >= maxLimiterKeys {
		for k := range l.fails {
			l.recent(k, now)
		}
	}
	if len(l.fails) >= maxLimiterKeys {
		// Still full of live entries: forget one rather than grow.
		for k := range l.fails {
			delete(l.fails, k)
			break
		}
	}
	l.fails[key] = append(l.recent(key, now), now)
}

// reset forgets key's failures after it signed in.
func (l *attemptLimiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, key)
}
