package verify

import "time"

// SubscriptionCacheTTL is subscriptionCacheTTL, for tests.
const SubscriptionCacheTTL = subscriptionCacheTTL

// SetCacheClock replaces the clock that e's subscription cache runs on;
// call it before e is used.
func SetCacheClock(e *Engine, now func() time.Time) { e.cacheClock = now }

// SlotsInCheck reports whether checks take the failed-check cap's slot in
// their own transaction.
func (e *Engine) SlotsInCheck() bool { return e.slots != nil }
