package ratelimit_test

import (
	"context"
	"fmt"
	"time"

	pv "github.com/phoneverify/phoneverify"
	"github.com/phoneverify/phoneverify/ratelimit/memory"
)

// Example shows the contract every limiter keeps: at most Max events per key
// in any Window, and a refusal that says when the next event will fit.
func Example() {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	var l pv.Limiter = memory.New(memory.Options{Now: func() time.Time { return now }})
	limit, err := pv.ParseLimit("2/10m")
	if err != nil {
		panic(err)
	}
	for i := 1; i <= 3; i++ {
		d, err := l.Allow(context.Background(), "start:ip:203.0.113.7", limit)
		if err != nil {
			panic(err)
		}
		fmt.Printf("event %d: allowed=%v remaining=%d retry_after=%s\n", i, d.Allowed, d.Remaining, d.RetryAfter)
		now = now.Add(time.Minute)
	}
	// Output:
	// event 1: allowed=true remaining=1 retry_after=0s
	// event 2: allowed=true remaining=0 retry_after=0s
	// event 3: allowed=false remaining=0 retry_after=8m0s
}
