package verify

import "time"

// SubscriptionCacheTTL is subscriptionCacheTTL, for tests.
const SubscriptionCacheTTL = subscriptionCacheTTL

// SetCacheClock replaces the clock that e's subscription cache runs on;
// call it before e is used.
func SetCacheClock(e *Engine, now func() time.Time) { e.cacheClock = now }
