// Package memory is an in-process [phoneverify.Limiter]: exact, fast, and
// private to one process, so a limit holds per node. Use it for a single
// node or in tests; several nodes need sqllimit or redislimit.
package memory

import (
	"context"
	"fmt"
	"sync"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/ratelimit/internal/slidinglog"
)

// sweepEvery is how many calls pass between sweeps of idle keys.
const sweepEvery = 4096

// Options configures a [Limiter].
type Options struct {
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Limiter is an in-process sliding-log limiter. It is safe for concurrent
// use. Keys whose window has passed are dropped now and then, so memory
// follows the number of keys active within their window.
type Limiter struct {
	now func() time.Time

	mu    sync.Mutex
	keys  map[string]*entry
	calls int
}

type entry struct {
	log    []int64
	window time.Duration
}

var _ pv.Limiter = (*Limiter)(nil)

// New returns an empty Limiter.
func New(opts Options) *Limiter {
	l := &Limiter{now: opts.Now, keys: map[string]*entry{}}
	if l.now == nil {
		l.now = time.Now
	}
	return l
}

// Allow implements [phoneverify.Limiter]. It never returns EUnavailable.
func (l *Limiter) Allow(ctx context.Context, key string, limit pv.Limit) (pv.Decision, error) {
	if err := pv.CheckLimit(limit); err != nil {
		return pv.Decision{}, fmt.Errorf("memory limiter: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return pv.Decision{}, fmt.Errorf("memory limiter: %w", err)
	}
	now := slidinglog.Millis(l.now())
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.keys[key]
	if e == nil {
		e = &entry{}
		l.keys[key] = e
	}
	var d pv.Decision
	e.log, d = slidinglog.Decide(e.log, now, limit)
	e.window = limit.Window
	if l.calls++; l.calls >= sweepEvery {
		l.calls = 0
		l.sweep(now)
	}
	return d, nil
}

// sweep drops the keys with no event left in their window.
func (l *Limiter) sweep(now int64) {
	for k, e := range l.keys {
		if len(e.log) == 0 || e.log[len(e.log)-1] <= now-e.window.Milliseconds() {
			delete(l.keys, k)
		}
	}
}

// Len returns how many keys the limiter holds.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}
