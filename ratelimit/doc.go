// Package ratelimit documents phoneverify's rate limiters; the
// implementations of [phoneverify.Limiter] live in its subpackages:
//
//   - memory: in-process, for a single node and tests;
//   - sqllimit: counters in the store's database (SQLite or PostgreSQL),
//     shared by every node on that database without Redis;
//   - redislimit: counters in Redis, one atomic Lua script per event.
//
// All three are sliding logs with millisecond resolution: each key keeps the
// times of the events allowed in the last window, and an event is allowed
// only if fewer than Max are there. Unlike a fixed window (up to 2×Max across
// a boundary) or GCRA (which either allows Max+1 in a window when its burst
// is Max, or spaces events evenly when its burst is 1), a sliding log is
// exact: at most Max events in any interval of length Window, and never a
// refusal while there is room. Its cost is O(Max) space per active key,
// hence [phoneverify.MaxLimitEvents]. ratelimit/limitertest holds the one
// conformance suite every implementation passes.
//
// When the backend is down (Redis, or the database) a limiter returns
// EUnavailable and the engine refuses the start with 503 unavailable: it
// fails closed, since a start sends a message that costs money and an
// outage must not lift the limits. Checks, lookups and everything else
// that does not consult the limiter keep working. The alternative, falling
// back to the SQL limiter when Redis is down, was not taken: each node
// would then count part of the traffic in a second place, and the limit
// would no longer be exact across the switch. The Redis limiter needs
// Redis 5 or later (its script reads TIME before writing).
package ratelimit
