// Package redislimit is a [phoneverify.Limiter] whose counters live in
// Redis, so a limit holds across every node using that Redis.
//
// Each key is a sorted set of its events (score: unix milliseconds). One Lua
// script, run atomically by Redis in one round trip, drops the events that
// left the window, counts the rest, and records the new event if there is
// room. The time is Redis's own clock (TIME), so nodes whose clocks differ
// still agree; tests pass an explicit clock instead.
//
// When Redis cannot be reached Allow returns EUnavailable and records
// nothing: the engine then refuses the request (fails closed) rather than
// sending messages, which cost money, with no limit.
package redislimit

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	pv "github.com/phoneverify/phoneverify"
)

// script is the sliding log. KEYS[1] is the key; ARGV: max, window (ms), now
// (ms, or -1 for Redis's clock), and a member unique to this event (several
// events may share a millisecond). It returns {allowed, remaining, retry
// after in ms}.
var script = redis.NewScript(`
local key = KEYS[1]
local max = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local n = redis.call('ZCARD', key)
if n >= max then
  local e = redis.call('ZRANGE', key, n - max, n - max, 'WITHSCORES')
  local retry = tonumber(e[2]) + window - now
  if retry < 1 then retry = 1 end
  return {0, 0, retry}
end
redis.call('ZADD', key, now, ARGV[4])
local newest = tonumber(redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2])
if newest < now then newest = now end
redis.call('PEXPIRE', key, newest - now + window)
return {1, max - n - 1, 0}
`)

// Options configures a [Limiter].
type Options struct {
	// Prefix is put before every key, to share a Redis database with other
	// applications; default "phoneverify:rl:".
	Prefix string
	// Now, if set, is the clock, sent with each event. By default the
	// script reads Redis's clock, one clock for every node.
	Now func() time.Time
}

// Limiter is a sliding-log limiter on Redis. It is safe for concurrent use.
type Limiter struct {
	rdb    redis.Scripter
	prefix string
	now    func() time.Time
}

var _ pv.Limiter = (*Limiter)(nil)

// New returns a Limiter on rdb (a client from [NewClient], or any go-redis
// client; exactness under network failures needs retries off, as NewClient
// sets: a retried script may record an event twice).
func New(rdb redis.Scripter, opts Options) *Limiter {
	l := &Limiter{rdb: rdb, prefix: opts.Prefix, now: opts.Now}
	if l.prefix == "" {
		l.prefix = "phoneverify:rl:"
	}
	return l
}

// ClientOptions tunes [NewClient]. A zero field selects its default.
type ClientOptions struct {
	// PoolSize caps the open connections (default: go-redis's, 10 per
	// CPU).
	PoolSize int
	// Timeout bounds a connection attempt and each read and write
	// (default 2s), so an unreachable Redis fails requests fast.
	Timeout time.Duration
}

// NewClient returns a client for a redis:// or rediss:// URL, with command
// retries off (see [New]) and short timeouts.
func NewClient(url string, opts ClientOptions) (*redis.Client, error) {
	o, err := redis.ParseURL(url)
	if err != nil {
		// The URL may hold a password: keep only the reason.
		return nil, errors.New("redislimit: invalid Redis URL (want redis://[user:password@]host:port/db)")
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	o.MaxRetries = -1
	// One dial per attempt: the pool's own dial retries would hold a
	// request for half a second when Redis is down.
	o.DialerRetries = 1
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout = timeout, timeout, timeout
	o.PoolTimeout = timeout
	if opts.PoolSize > 0 {
		o.PoolSize = opts.PoolSize
	}
	return redis.NewClient(o), nil
}

// Allow implements [phoneverify.Limiter]. It returns EUnavailable when Redis
// cannot be reached or is not ready to serve.
func (l *Limiter) Allow(ctx context.Context, key string, limit pv.Limit) (pv.Decision, error) {
	if err := pv.CheckLimit(limit); err != nil {
		return pv.Decision{}, fmt.Errorf("redis limiter: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return pv.Decision{}, fmt.Errorf("redis limiter: %w", err)
	}
	now := int64(-1)
	if l.now != nil {
		now = l.now().UnixMilli()
	}
	member := rand.Text()
	res, err := script.Run(ctx, l.rdb, []string{l.prefix + key}, limit.Max, limit.Window.Milliseconds(), now, member).Int64Slice()
	if err != nil {
		return pv.Decision{}, MapError(ctx, err)
	}
	if len(res) != 3 {
		return pv.Decision{}, fmt.Errorf("redis limiter: script returned %d values, want 3", len(res))
	}
	if res[0] == 1 {
		return pv.Decision{Allowed: true, Remaining: int(res[1])}, nil
	}
	return pv.Decision{RetryAfter: time.Duration(res[2]) * time.Millisecond}, nil
}

// MapError turns a go-redis error into the limiter's error contract: the
// caller's own cancellation stays as it is, a Redis that cannot be reached
// or is not ready (loading, read-only replica, cluster down) becomes
// EUnavailable, and anything else is internal.
func MapError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return fmt.Errorf("redis limiter: %w", err)
	}
	if unavailable(err) {
		return &pv.Error{Code: pv.EUnavailable, Message: "The rate limiter (Redis) is unavailable.", Err: fmt.Errorf("redis limiter: %w", err)}
	}
	return fmt.Errorf("redis limiter: %w", err)
}

func unavailable(err error) bool {
	var re redis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY"} {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
		return false
	}
	// Broken or refused connections, timeouts, an exhausted pool, a closed
	// client: none is the request's fault.
	return true
}

// Ping reports whether Redis answers; it returns EUnavailable if not. For
// readiness checks.
func Ping(ctx context.Context, rdb redis.Cmdable) error {
	if err := rdb.Ping(ctx).Err(); err != nil {
		return MapError(ctx, err)
	}
	return nil
}
