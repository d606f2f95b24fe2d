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
package ratelimit
